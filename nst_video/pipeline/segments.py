"""The work directory as one segment sees it, and the crossfade of segment seams when encoding
(planning is in video/segments.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from nst_video.media.files import is_temporary
from nst_video.video.segments import Segment, blend_weight
from nst_video.workdir.store import WorkDir


class SegmentWork(WorkDir):
    """The work directory as one segment sees it: its warm-up frames live in segments/K/."""

    def __init__(self, path: Path, segment: Segment):
        super().__init__(path)
        self.segment = segment
        self.warm_dir = self.segment_dir(segment.index)
        self.warm_dir.mkdir(parents=True, exist_ok=True)
        self.frames_dir.mkdir(parents=True, exist_ok=True)

    def _folder(self, index: int) -> Path:
        return self.warm_dir if index < self.segment.start else self.frames_dir

    def frame_path(self, index: int) -> Path:
        return self._folder(index) / f"{index:06d}.png"

    def stats_path(self, index: int) -> Path:
        return self._folder(index) / f"{index:06d}.json"

    def remove_temporaries(self) -> None:
        """Only this segment's own folder: other segments may be writing into frames/ now."""
        for path in self.warm_dir.iterdir():
            if is_temporary(path.name):
                with contextlib.suppress(OSError):
                    path.unlink()


def final_frames(
    work: WorkDir, indices: range, segments: Sequence[Segment] | None
) -> Iterator[np.ndarray]:
    """The frames to encode: the rendered ones, crossfaded over each segment's overlap."""
    overlaps = {}
    for segment in segments or ():
        for index in segment.overlap:
            overlaps[index] = segment
    for index, frame in zip(indices, work.iter_frames(indices), strict=True):
        segment = overlaps.get(index)
        if segment is None:
            yield frame
            continue
        warm = next(SegmentWork(work.path, segment).iter_frames(range(index, index + 1)))
        alpha = blend_weight(segment, index)
        mixed = (1 - alpha) * frame.astype(np.float32) + alpha * warm.astype(np.float32)
        yield np.rint(mixed).astype(np.uint8)
