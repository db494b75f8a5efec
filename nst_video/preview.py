"""Contact sheet of a few stylized frames, to choose weights before a long render."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nst_video.engine import Engine
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
    size = engine.settings.image.size
    budget = engine.settings.optim.iterations
    tops, bottoms = [], []
    for done, index in enumerate(indices):
        content = resize_long_side(source.read(index), size)
        callback(FrameStarted(index, done, len(indices), "content", budget))
        result = engine.stylize(content, content, budget, callback=callback)
        callback(
            FrameDone(
                index,
                done + 1,
                len(indices),
                "content",
                result.result.evaluations,
                0.0,
                dict(result.result.terms),
            )
        )
        tops.append(content)
        bottoms.append(result.image)
    return _grid([tops, bottoms])


def _grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    h, w = rows[0][0].shape[:2]
    cols = len(rows[0])
    sheet = np.full((len(rows) * (h + _GAP) + _GAP, cols * (w + _GAP) + _GAP, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            y, x = _GAP + r * (h + _GAP), _GAP + c * (w + _GAP)
            sheet[y : y + h, x : x + w] = image
    return sheet
