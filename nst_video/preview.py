"""Contact sheet of a few stylized frames, to choose weights before a long render."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from nst_video.engine import Engine, check_frame_size
from nst_video.frames import FrameSource
from nst_video.frames.images import resize_long_side
from nst_video.progress import Callback, FrameDone, FrameStarted

_GAP = 4


def pick_frames(frame_count: int, count: int) -> list[int]:
    """`count` indices spread evenly over the clip, away from its very ends."""
    count = min(count, frame_count)
    return sorted({int((k + 0.5) * frame_count / count) for k in range(count)})


def contact_sheet(
    engine: Engine, source: FrameSource, indices: Sequence[int], callback: Callback
) -> np.ndarray:
    """Inputs in the top row, their stylized versions below, separated by white gaps."""
    settings = engine.settings
    size, budget = settings.image.size, settings.optim.iterations
    layers = settings.loss.content_layers + settings.loss.style_layers
    height_width = (source.size[1], source.size[0])
    check_frame_size(height_width, size, layers, settings.image.scales, "the frames")
    tops = [resize_long_side(frame, size) for frame in picked_frames(source, indices)]
    bottoms = []
    for done, (index, content) in enumerate(zip(indices, tops, strict=True)):
        callback(FrameStarted(index, done, len(indices), "content", budget))
        start = time.perf_counter()
        result = engine.stylize(content, content, budget, callback=callback)
        seconds = time.perf_counter() - start
        terms = dict(result.result.terms)
        evaluations = result.result.evaluations
        callback(FrameDone(index, done + 1, len(indices), "content", evaluations, seconds, terms))
        bottoms.append(result.image)
    return _grid([tops, bottoms])


def picked_frames(source: FrameSource, indices: Sequence[int]) -> list[np.ndarray]:
    """The frames at sorted `indices`, in one decoding pass (a video decodes from its start
    for every separate read, which on a long clip would repeat most of the work)."""
    wanted = set(indices)
    first, last = min(indices), max(indices)
    frames = source.frames(first, last - first + 1)
    return [f for i, f in zip(range(first, last + 1), frames, strict=False) if i in wanted]


def _grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    h, w = rows[0][0].shape[:2]
    cols = len(rows[0])
    sheet = np.full((len(rows) * (h + _GAP) + _GAP, cols * (w + _GAP) + _GAP, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            y, x = _GAP + r * (h + _GAP), _GAP + c * (w + _GAP)
            sheet[y : y + h, x : x + w] = image
    return sheet
