"""Contact sheet of a few stylized frames, to choose weights before a long render."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nst_video.config import image_long_side
from nst_video.core.engine import Engine, FrameGuide, check_frame_size
from nst_video.media import FrameSource
from nst_video.progress import Callback, FrameDone, FrameStarted
from nst_video.video.resize import resize_long_side

_GAP = 4


def pick_frames(frame_count: int, count: int) -> list[int]:
    """`count` indices spread evenly over the clip, away from its very ends."""
    count = min(count, frame_count)
    return sorted({int((k + 0.5) * frame_count / count) for k in range(count)})


def contact_sheet(
    engine: Engine,
    source: FrameSource,
    indices: Sequence[int],
    callback: Callback,
    style_weights: Sequence[float] | None = None,
    guide_of: Callable[[int], FrameGuide] | None = None,
) -> np.ndarray:
    """Inputs in the top row, below them one row of results per style weight, each row labelled.

    `style_weights` defaults to the engine's own; every row starts from the content, so a row
    is what a render with that one weight gives. `guide_of` gives frame i's guide (a style
    schedule's blend at i).
    """
    budget = engine.optim.iterations
    weights = list(style_weights or [engine.loss.style_weight])
    layers = engine.loss.content_layers + engine.loss.style_layers
    height_width = (source.size[1], source.size[0])
    size = image_long_side(engine.image.size, max(source.size))
    check_frame_size(height_width, size, layers, engine.image, "the frames")
    tops = [resize_long_side(frame, size) for frame in picked_frames(source, indices)]
    rows, labels = [tops], ["input"]
    total = len(indices) * len(weights)
    for weight in weights:
        weighted = engine.with_style_weight(weight)
        # The progress shows which weight is being rendered (in place of the frame's start).
        label = f"style weight {weight:g}"
        row = []
        for index, content in zip(indices, tops, strict=True):
            done = len(indices) * (len(rows) - 1) + len(row)
            callback(FrameStarted(index, done, total, label, budget))
            start = time.perf_counter()
            guide = guide_of(index) if guide_of is not None else None
            stylized = weighted.stylize(content, content, budget, callback=callback, guide=guide)
            seconds = time.perf_counter() - start
            terms = dict(stylized.optimization.terms)
            evaluations = stylized.optimization.evaluations
            callback(FrameDone(index, done + 1, total, label, evaluations, seconds, terms))
            row.append(stylized.image)
        rows.append(row)
        labels.append(f"style weight {weight:g}")
    return _grid(rows, labels)


def picked_frames(source: FrameSource, indices: Sequence[int]) -> list[np.ndarray]:
    """The frames at sorted `indices`, in one decoding pass (a video decodes from its start
    for every separate read, which on a long clip would repeat most of the work)."""
    wanted = set(indices)
    first, last = min(indices), max(indices)
    frames = source.frames(first, last - first + 1)
    return [f for i, f in zip(range(first, last + 1), frames, strict=False) if i in wanted]


def _grid(rows: list[list[np.ndarray]], labels: Sequence[str]) -> np.ndarray:
    """Tiles separated by white gaps, with each row's label in a margin on the left."""
    h, w = rows[0][0].shape[:2]
    cols = len(rows[0])
    font = ImageFont.load_default()
    boxes = [font.getbbox(text) for text in labels]  # (left, top, right, bottom) of the ink
    margin = _GAP + max(int(np.ceil(right - left)) for left, _, right, _ in boxes)
    height, width = len(rows) * (h + _GAP) + _GAP, margin + cols * (w + _GAP) + _GAP
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (row, text, box) in enumerate(zip(rows, labels, boxes, strict=True)):
        y = _GAP + r * (h + _GAP)
        for c, image in enumerate(row):
            canvas.paste(Image.fromarray(image), (margin + _GAP + c * (w + _GAP), y))
        left, top, _, bottom = box
        draw.text((_GAP - left, y + (h - bottom - top) // 2), text, fill="black", font=font)
    return np.asarray(canvas).copy()
