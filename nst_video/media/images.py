"""Reading and writing single RGB images (frames of a sequence, style and content images)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nst_video.errors import InputError, OptionError
from nst_video.media.files import atomic_write_bytes

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
WRITE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")

_SAVE_OPTIONS: dict[str, tuple[str, dict[str, object]]] = {
    ".png": ("PNG", {"compress_level": 1}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".webp": ("WEBP", {"quality": 95, "method": 4}),
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
}
_EXIF_ORIENTATION = 0x0112


def read_image(path: str | Path) -> np.ndarray:
    """Load ``path`` as an upright HxWx3 uint8 RGB array.

    EXIF orientation is applied, alpha is composited over white, grey is replicated to RGB
    and 16-bit samples are scaled to 8 bits (value / 257, rounded).
    """
    if not os.path.isfile(path):
        raise InputError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            deep = _read_16bit_color(path, image)
            if deep is not None:
                return deep
            return _to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(path) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _unreadable(path) from exc


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the image read_image returns, from the header alone (cheap)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(path) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _unreadable(path) from exc
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """An in-memory Pillow image as read_image returns a file holding it: upright (EXIF
    orientation applied), alpha over white, grey replicated, HxWx3 uint8 RGB."""
    return _to_rgb(ImageOps.exif_transpose(image))


def _too_many_pixels(path: str | Path) -> InputError:
    """Pillow refuses to decode images over twice Image.MAX_IMAGE_PIXELS (a small file can
    claim 20000x20000 and expand to gigabytes): one line, not a traceback."""
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return InputError(
        f"{path} has more than {limit:,} pixels, too many to decode (a decompression bomb?); "
        "resize it first"
    )


def _unreadable(path: str | Path) -> InputError:
    formats = " ".join(IMAGE_EXTENSIONS)
    return InputError(f"{path} is not a readable image; supported formats: {formats}")


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        return _gray16_to_rgb(np.asarray(image))
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        return _over_white(np.asarray(image.convert("RGBA")).astype(np.float32) / 255.0)
    return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def _gray16_to_rgb(values: np.ndarray) -> np.ndarray:
    gray = _scale16(values.astype(np.float64))
    return np.repeat(gray[:, :, None], 3, axis=2)


def _scale16(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)


def _over_white(rgba: np.ndarray) -> np.ndarray:
    """Composite float RGBA in [0, 1] over white and return uint8 RGB."""
    alpha = rgba[:, :, 3:4]
    rgb = rgba[:, :, :3] * alpha + (1.0 - alpha)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _read_16bit_color(path: str | Path, image: Image.Image) -> np.ndarray | None:
    """16-bit colour PNG/TIFF via OpenCV: Pillow keeps only the high byte of those samples."""
    if image.mode not in ("RGB", "RGBA") or not _is_16bit_color(path, image):
        return None
    data = np.fromfile(path, dtype=np.uint8)
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.dtype != np.uint16 or decoded.ndim != 3:
        return None
    if decoded.shape[2] == 4:
        rgba = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA).astype(np.float64) / 65535.0
        rgb = _over_white(rgba)
    else:
        rgb = _scale16(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(np.float64))
    return _orient(rgb, image.getexif().get(_EXIF_ORIENTATION, 1))


def _is_16bit_color(path: str | Path, image: Image.Image) -> bool:
    if image.format == "PNG":
        with open(path, "rb") as handle:
            header = handle.read(25)
        return len(header) == 25 and header[24] == 16
    if image.format == "TIFF":
        bits = getattr(image, "tag_v2", {}).get(258, (8,))
        return tuple(bits)[0] == 16
    return False


def _orient(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (same meaning as ImageOps.exif_transpose) to an array."""
    transposed = rgb.transpose(1, 0, 2)
    result = {
        2: rgb[:, ::-1],
        3: rgb[::-1, ::-1],
        4: rgb[::-1],
        5: transposed,
        6: np.rot90(rgb, k=-1),
        7: transposed[::-1, ::-1],
        8: np.rot90(rgb, k=1),
    }.get(orientation, rgb)
    return np.ascontiguousarray(result)


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write an HxWx3 uint8 RGB array atomically; the format follows the extension."""
    path = Path(path)
    atomic_write_bytes(path, encode_image(rgb, path))


def encode_image(rgb: np.ndarray, path: str | Path) -> bytes:
    """The bytes write_image writes for `rgb` at `path` (deterministic: equal arrays, equal
    bytes); the format follows the extension."""
    fmt, options = _save_format(Path(path))
    image = Image.fromarray(_checked_rgb(rgb), mode="RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _save_format(path: Path) -> tuple[str, dict[str, object]]:
    suffix = path.suffix.lower()
    if suffix not in _SAVE_OPTIONS:
        listed = " ".join(WRITE_EXTENSIONS)
        raise OptionError(f"cannot write images of type {path.name!r}; use one of: {listed}")
    return _SAVE_OPTIONS[suffix]


def _checked_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 array, got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)
