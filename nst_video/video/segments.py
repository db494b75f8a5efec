"""Splitting one render into segments that render in parallel (pure planning).

A segment owns frames [start, stop). Unless it begins the clip or a scene cut, it first renders
`warmup` frames before `start` from scratch (into its own folder), so that by `start` its
warm-start chain has settled; over those overlap frames the final output crossfades from the
previous segment's frames to the warm-up ones, so no seam shows as a jump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from nst_video.config import VideoConfig

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


def blend_weight(segment: Segment, index: int) -> float:
    """Share of the warm-up frame in the final frame: rises linearly across the overlap."""
    return (index - (segment.start - segment.warmup) + 1) / (segment.warmup + 1)


def fit_segments(segments: list[Segment], indices: range) -> list[Segment]:
    """A stored segment plan over a longer or shorter range (same first frame): segments past
    the end are dropped and the last one ends where the range ends, continuing its chain."""
    kept = [s for s in segments if s.start < indices.stop] or segments[:1]
    last = kept[-1]
    return [*kept[:-1], Segment(last.index, last.start, indices.stop, last.warmup)]
