"""Splitting one render into segments that render in parallel, and blending their seams.

A segment owns frames [start, stop). Unless it begins the clip or a scene cut, it first renders
`warmup` frames before `start` from scratch (into its own folder), so that by `start` its
warm-start chain has settled; over those overlap frames the final output crossfades from the
previous segment's frames to the warm-up ones, so no seam shows as a jump.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nst_video.config import VideoConfig
from nst_video.media.files import is_temporary
from nst_video.workdir.store import WorkDir

DEFAULT_WARMUP = VideoConfig.segment_warmup  # the one default lives in config


@dataclass(frozen=True)
class Segment:
    index: int
    start: int  # first frame this segment owns
    stop: int
    warmup: int  # frames rendered before `start` to settle the chain, then blended

    @property
    def frames(self) -> range:
        """Every frame the segment renders, warm-up included."""
        return range(self.start - self.warmup, self.stop)

    @property
    def overlap(self) -> range:
        return range(self.start - self.warmup, self.start)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def plan_segments(
    indices: range, parts: int, cuts: Sequence[int] = (), warmup: int = DEFAULT_WARMUP
) -> list[Segment]:
    """`parts` segments of even length; a boundary moves to a nearby scene cut when there is one
    (within a quarter segment), and a segment that begins at a cut needs no warm-up."""
    # Each segment should own more frames than its warm-up costs.
    parts = max(1, min(parts, len(indices) // (warmup + 1)))
    length = len(indices) / parts
    bounds = [indices.start]
    for k in range(1, parts):
        even = indices.start + round(k * length)
        near = [c for c in cuts if abs(c - even) <= length / 4 and c > bounds[-1]]
        bounds.append(min(near, key=lambda c: abs(c - even)) if near else even)
    bounds.append(indices.stop)
    cut_set = set(cuts)
    segments = []
    for k in range(parts):
        start, stop = bounds[k], bounds[k + 1]
        settle = 0 if k == 0 or start in cut_set else min(warmup, start - indices.start)
        segments.append(Segment(k, start, stop, settle))
    return segments


class SegmentWork(WorkDir):
    """The work directory as one segment sees it: its warm-up frames live in segments/K/."""

    def __init__(self, path: Path, segment: Segment):
        super().__init__(path)
        self.segment = segment
        self.warm_dir = path / "segments" / f"{segment.index:03d}"
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


def blend_weight(segment: Segment, index: int) -> float:
    """Share of the warm-up frame in the final frame: rises linearly across the overlap."""
    return (index - (segment.start - segment.warmup) + 1) / (segment.warmup + 1)


def final_frames(
    work: WorkDir, indices: range, segments: Sequence[dict[str, Any]] | None
) -> Iterator[np.ndarray]:
    """The frames to encode: the rendered ones, crossfaded over each segment's overlap."""
    overlaps = {}
    for data in segments or ():
        segment = Segment(**data)
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
