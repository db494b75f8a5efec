"""Scene cuts of a clip, found before it is split into segments."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from nst_video.video import flow
from nst_video.video.resize import resize_long_side

CUT_DETECTION_SIDE = 160  # scene cuts are found on small frames: cheap, and accurate enough


def detect_cuts(
    frames: Iterable[np.ndarray], indices: range, method: str, threshold: float
) -> list[int]:
    """Frames of `indices` (whose frames `frames` yields in order) that start a new shot: their
    flow from the previous frame is mostly inconsistent."""
    cuts, prev = [], None
    for index, raw in zip(indices, frames, strict=False):
        frame = resize_long_side(raw, min(CUT_DETECTION_SIDE, max(raw.shape[:2])))
        if prev is not None and flow.is_scene_cut(flow.frame_flow(prev, frame, method), threshold):
            cuts.append(index)
        prev = frame
    return cuts
