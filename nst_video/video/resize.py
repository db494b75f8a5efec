"""The one resize of frames and images: to a long side, aspect kept."""

from __future__ import annotations

import cv2
import numpy as np

from nst_video.errors import OptionError


def scaled_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) that `resize_long_side` gives an image of that size."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_long_side(rgb: np.ndarray, long_side: int | None) -> np.ndarray:
    """Scale so the longer side is ``long_side`` pixels, keeping the aspect ratio."""
    if long_side is None:
        return rgb
    if long_side < 1:
        raise OptionError(f"image size must be at least 1 pixel, got {long_side}")
    return resize_to(rgb, scaled_shape(*rgb.shape[:2], long_side))


def resize_to(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`image` (uint8, or float in [0, 1]) resized to height x width `shape`, dtype kept.

    INTER_AREA avoids aliasing when shrinking; cubic is sharper when enlarging, and its
    overshoot is clipped to the value range (cv2 saturates uint8 already).
    """
    h, w = shape[:2]
    if image.shape[:2] == (h, w):
        return image
    shrinking = h * w < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    out = cv2.resize(image, (w, h), interpolation=interpolation)
    return np.clip(out, 0, 255 if image.dtype == np.uint8 else 1.0).astype(image.dtype)
