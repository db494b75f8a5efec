"""The crossfade of segment seams when encoding (planning is in video/segments.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from nst_video.video.segments import Segment, blend_weight
from nst_video.workdir.store import WorkDir


def final_frames(
    work: WorkDir, indices: range, segments: Sequence[Segment] | None
) -> Iterator[np.ndarray]:
    """The frames to encode: the rendered ones, crossfaded over each segment's overlap."""
    overlaps = {}
    for segment in segments or ():
        for index in segment.overlap:
            overlaps[index] = segment
    for index, frame in zip(indices, work.frames.iter_frames(indices), strict=True):
        segment = overlaps.get(index)
        if segment is None:
            yield frame
            continue
        warm = next(work.segment_frames(segment).iter_frames(range(index, index + 1)))
        alpha = blend_weight(segment, index)
        mixed = (1 - alpha) * frame.astype(np.float32) + alpha * warm.astype(np.float32)
        yield np.rint(mixed).astype(np.uint8)
