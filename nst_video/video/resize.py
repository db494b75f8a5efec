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
    height, width = rgb.shape[:2]
    new_h, new_w = scaled_shape(height, width, long_side)
    if (new_w, new_h) == (width, height):
        return rgb
    scale = long_side / max(height, width)
    # INTER_AREA avoids aliasing when shrinking; cubic is sharper when enlarging and cv2
    # saturates uint8 results, so the overshoot is clipped.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
