"""read_image / write_image / resize_long_side."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from nst_video.errors import InputError, OptionError, OutputError
from nst_video.media.images import IMAGE_EXTENSIONS, read_image, write_image
from nst_video.video.resize import resize_long_side


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:5, :5] = (255, 0, 0)  # red marker top-left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    rgb = read_image(path)
    assert rgb.shape == (40, 20, 3)
    assert rgb[2, -3, 0] > 200 and rgb[2, 2, 0] < 50


def test_grayscale_is_replicated(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.fromarray(np.full((4, 6), 77, np.uint8), mode="L").save(path)
    rgb = read_image(path)
    assert rgb.shape == (4, 6, 3) and rgb.dtype == np.uint8 and (rgb == 77).all()


def test_alpha_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3], rgba[0, 1, 3], rgba[0, 2, 3] = 0, 255, 128
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    rgb = read_image(path)
    assert rgb[0, 0].tolist() == [255, 255, 255]
    assert rgb[0, 1].tolist() == [200, 0, 0]
    assert rgb[0, 2].tolist() == [round(200 * 128 / 255 + 127), 127, 127]


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 255, 10, 20, 30] + [0] * 762)
    image.putpixel((1, 0), 1)
    path = tmp_path / "pal.png"
    image.save(path, transparency=0)
    assert read_image(path).tolist() == [[[255, 255, 255], [10, 20, 30]]]


def test_16bit_gray_png(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((3, 3), 40000, np.uint16)).save(path)
    assert (read_image(path) == round(40000 / 257)).all()


def test_16bit_rgb_png_rounds_instead_of_truncating(tmp_path: Path) -> None:
    value = 257 * 200 + 100  # /257 rounds to 200; keeping the high byte would give 201
    bgr = np.full((3, 4, 3), value, np.uint16)
    bgr[..., 0] = 0  # blue 0 so the channel order is checked too
    path = tmp_path / "deep_rgb.png"
    cv2.imwrite(str(path), bgr)
    rgb = read_image(path)
    assert rgb.shape == (3, 4, 3)
    assert rgb[0, 0].tolist() == [200, 200, 0]


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (4, 4), (0, 0, 0, 0)).save(path)
    rgb = read_image(path)
    assert rgb.shape == (4, 4, 3) and rgb.min() > 240


def test_empty_file_message(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InputError) as info:
        read_image(path)
    formats = " ".join(IMAGE_EXTENSIONS)
    assert str(info.value) == f"{path} is not a readable image; supported formats: {formats}"


def test_text_file_and_truncated_image(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(InputError, match="is not a readable image"):
        read_image(text)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(InputError, match="is not a readable image"):
        read_image(cut)


def test_missing_file_message(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_image(tmp_path / "gone.png")
    assert str(info.value) == f"image not found: {tmp_path / 'gone.png'}"


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff", ".webp", ".jpg"])
def test_write_read_round_trip(tmp_path: Path, suffix: str) -> None:
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[:, :6] = (250, 30, 20)
    path = tmp_path / f"x{suffix}"
    write_image(path, rgb)
    back = read_image(path)
    error = np.abs(back.astype(int) - rgb)
    if suffix in (".png", ".tif", ".tiff"):
        assert error.max() == 0
    else:  # lossy: chroma bleeds near the sharp edge at column 6, so look away from it
        assert error[:, [0, 1, 2, 10, 11]].max() <= 8
    assert os.listdir(tmp_path) == [path.name]


def test_write_is_deterministic(tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (16, 16, 3), np.uint8)
    write_image(tmp_path / "a.png", rgb)
    write_image(tmp_path / "b.png", rgb)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_unsupported_write_extension(tmp_path: Path) -> None:
    with pytest.raises(OptionError) as info:
        write_image(tmp_path / "x.bmp", np.zeros((2, 2, 3), np.uint8))
    assert str(info.value) == (
        "cannot write images of type 'x.bmp'; use one of: .png .jpg .jpeg .webp .tif .tiff"
    )


def test_disk_full_message_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    path = tmp_path / "x.png"
    with pytest.raises(OutputError) as info:
        write_image(path, np.zeros((2, 2, 3), np.uint8))
    assert (
        str(info.value) == f"disk full while writing {path}; free space and run the command again"
    )
    assert os.listdir(tmp_path) == []


def test_missing_directory_is_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write"):
        write_image(tmp_path / "nope" / "x.png", np.zeros((2, 2, 3), np.uint8))


@pytest.mark.parametrize(
    ("shape", "long_side", "expected"),
    [
        ((32, 64), 32, (16, 32)),
        ((21, 33), 10, (6, 10)),
        ((10, 20), 40, (20, 40)),
        ((1, 100), 10, (1, 10)),
        ((30, 20), 30, (30, 20)),
    ],
)
def test_resize_long_side(
    shape: tuple[int, int], long_side: int, expected: tuple[int, int]
) -> None:
    rgb = np.full((*shape, 3), 128, np.uint8)
    out = resize_long_side(rgb, long_side)
    assert out.shape == (*expected, 3) and out.dtype == np.uint8
    assert (out == 128).all()


def test_resize_none_and_invalid() -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    assert resize_long_side(rgb, None) is rgb
    with pytest.raises(OptionError):
        resize_long_side(rgb, 0)


def test_enlarging_clips_overshoot() -> None:
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, 4:] = 255
    out = resize_long_side(rgb, 32)
    assert out.dtype == np.uint8 and out.max() == 255 and out.min() == 0
