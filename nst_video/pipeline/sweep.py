"""One sweep over the frames of a render: stream them in the pass's direction, start each as the
pass says (start.py), optimize it, and save it to the work directory. Resumable at any instant.

Pass 1 (a single-pass render too) is a forward FirstPass; each later pass of --passes N is a
LaterPass, forwards or backwards (passes.py runs them in turn). Only how a frame starts, and
what a sweep checks before it begins, differ between them.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nst_video.config import VideoConfig
from nst_video.core.engine import Engine, FrameGuide, Stylized
from nst_video.errors import ResumeError, plural
from nst_video.media import FrameSource
from nst_video.pipeline.background import FrameSaver, close_frames, prefetch
from nst_video.pipeline.start import (
    INDEPENDENT,
    Earlier,
    FrameStart,
    NeighbourTarget,
    Window,
    later_start,
    pass_neighbour,
    temporal_start,
)
from nst_video.pipeline.styling import resize_frame, split_frame
from nst_video.progress import (
    IMAGE,
    Callback,
    FrameDone,
    FrameStarted,
    Message,
    ignore,
    wants,
)
from nst_video.video import flow
from nst_video.video.resize import resize_long_side, scaled_shape
from nst_video.workdir.manifest import Job
from nst_video.workdir.store import FrameStore, frame_digest

# Builds the engine of a job: injected by the caller (the CLI passes api.engine_for), and sent
# to Ray tasks too, so every frame of a render is made by the same kind of engine.
EngineFactory = Callable[[Job], Engine]

# A backward pass reads the input in chunks of this many bytes of frames at the render's size,
# last chunk first, each reversed in memory. A video decoder only runs forwards (and each chunk
# decodes from the clip's start), so larger chunks decode less: 256 MiB holds ~600 frames at
# 512x288 (a 10k-frame clip then decodes its input ~9 times per backward pass, cheap next to
# stylizing it) and bounds memory whatever the clip's length.
BACKWARD_CHUNK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Input:
    """What a sweep reads for one frame."""

    index: int
    digest: str  # of the decoded frame (frame_digest)
    content: np.ndarray  # the frame at the render's size
    # Flows from the earlier frames by offset, computed in the background (FirstPass only).
    flows: Mapping[int, flow.FrameFlow]
    guide: FrameGuide | None = None  # a schedule's blend and masks at this frame (styling.py)


def direction(number: int) -> int:
    """+1 for a forward pass (odd numbers), -1 for a backward one."""
    return 1 if number % 2 else -1


def pass_order(indices: range, number: int) -> range:
    """The frames of `indices` in the order pass `number` renders them."""
    return indices if direction(number) > 0 else indices[::-1]


def pass_stats(number: int, indices: range) -> dict[str, object]:
    """What a multi-pass frame records beyond a single-pass one: its pass, and the range its
    pass covered (a later pass depends on every frame of it, not only on earlier ones)."""
    return {"pass": number, "range": [indices.start, indices.stop]}


def build_stats(index: int, start: FrameStart, done: Stylized, seconds: float) -> dict[str, Any]:
    """What the work directory keeps about a finished frame (FrameStore.read_stats)."""
    result = done.optimization
    return {
        "frame": index,
        "init": start.init,
        "iterations": result.evaluations,
        "seconds": round(seconds, 4),
        "loss": result.loss,
        "stop": result.stop,
        "consistent": start.consistent,
        **{k: result.terms.get(k) for k in ("content", "style", "temporal", "tv")},
        **({"recovered": start.recovered} if start.recovered is not None else {}),
    }


# --- the sweep ---------------------------------------------------------------------------------


class Sweep:
    """Renders the frames of `indices` that `store` lacks, in the order of pass `number`.

    A subclass says how a frame starts (`start`) and what to check first (`prepare`).
    """

    number = 1  # the pass: its direction and order
    refine = False  # Engine.stylize's refine: the start is already a finished result
    flows_ahead = False  # compute the flows from the earlier frames in the background

    def __init__(
        self,
        engine: Engine,
        video: VideoConfig,
        source: FrameSource,
        store: FrameStore,
        indices: range,
        long_side: int,
        callback: Callback = ignore,
        extra_stats: Mapping[str, Any] | None = None,
    ):
        self.engine, self.video, self.source, self.store = engine, video, source, store
        self.indices, self.long_side, self.callback = indices, long_side, callback
        self.order = pass_order(indices, self.number)
        self.step = direction(self.number)
        self.depth = max(video.temporal_offsets)  # earlier frames the sweep holds
        self.chunk: int | None = None  # a backward pass's frames per read (chunk_frames)
        # Recorded with every frame beyond build_stats (with --passes: its pass and range).
        self.extra_stats = dict(extra_stats or {})

    def prepare(self) -> int:
        """Drops the finished frames that must be rendered again; returns how many are done."""
        raise NotImplementedError

    def start(self, frame: Input, earlier: list[Earlier]) -> FrameStart:
        raise NotImplementedError

    def label(self, start: FrameStart) -> str:
        """How the progress events name this frame's start."""
        return start.init

    def later_budget(self) -> int | None:
        """FrameStarted.later: the budget of the frames after a first or cut frame."""
        return None

    def run(self) -> int:
        """Returns the number of frames rendered now."""
        done = self.prepare()
        todo = [k for k, i in enumerate(self.order) if not self.store.has_frame(i)]
        if not todo:
            return 0
        first = todo[0]
        # A finished frame that no longer decodes cannot seed its successor: back up to it.
        while first > 0 and self.store.load_frame(self.order[first - 1]) is None:
            first -= 1
        # The earlier frames' terms come from their finished PNGs: read back as far as the
        # largest offset reaches. The window is emptied at a frame that took nothing from the
        # frames before it, so no offset reaches across it.
        window = Window(self.depth)
        rendered = 0
        with FrameSaver(self.store) as saver:
            skip = max(first - self.depth, 0)
            for position, frame in enumerate(prefetch(self._inputs(skip)), skip):
                index, content = frame.index, frame.content
                out: np.ndarray | None = None
                if self.store.has_frame(index):
                    independent = self._recorded_independent(index)
                    if not self._needed_later(position):
                        # Not decoded: loaded by Window.fill only if a later frame turns out
                        # damaged and is rendered again after all.
                        window.push(index, content, None, independent)
                        continue
                    out = self.store.load_frame(index)  # None if damaged: rendered again
                if out is None:
                    window.fill(self.store.load_frame)  # finished, not decoded
                    earlier = window.earlier(index, self.video.temporal_offsets, self.step)
                    start = self.start(frame, earlier)
                    out = self._render(frame, start, done + rendered, saver)
                    independent = start.init in INDEPENDENT
                    rendered += 1
                window.push(index, content, out, independent)
        return rendered

    def _inputs(self, skip: int) -> Iterator[Input]:
        """The frames from position `skip` of the order on, with their digest and, with
        `flows_ahead`, for frames still to render, the flows from the earlier frames at each
        temporal offset, computed directly between the input frames (composing adjacent flows
        drifts). Holds only the inputs the largest offset needs."""
        rest = self.order[skip:]
        if self.step > 0:
            contents = read_contents(self.source, rest, self.long_side)
        else:
            chunk = self.chunk or chunk_frames(self.source, self.long_side)
            contents = reversed_contents(self.source, rest[::-1], self.long_side, chunk)
        ahead = self.flows_ahead and self.video.init == "flow"
        recent: deque[tuple[int, np.ndarray]] = deque(maxlen=self.depth)
        offsets = self.video.temporal_offsets
        with contextlib.closing(contents):
            for index, digest, frame in contents:
                content, guide = split_frame(self.source, index, frame)
                flows: dict[int, flow.FrameFlow] = {}
                if ahead and not self.store.has_frame(index):
                    for earlier, frame in recent:
                        offset = (index - earlier) * self.step
                        if offset in offsets:
                            flows[offset] = flow.frame_flow(frame, content, self.video.flow)
                yield Input(index, digest, content, flows, guide)
                recent.append((index, content))

    def _needed_later(self, position: int) -> bool:
        """Whether a frame still to render reaches finished frame `order[position]` through
        one of the offsets (a finished frame is decoded only then)."""
        later = (position + k for k in self.video.temporal_offsets)
        return any(p < len(self.order) and not self.store.has_frame(self.order[p]) for p in later)

    def _recorded_independent(self, index: int) -> bool:
        """Whether finished frame `index` took nothing from the frames before it (first frame,
        cut, --init content, a later pass's frame without neighbours), as recorded."""
        stats = self.store.read_stats(index) or {}
        return stats.get("init") in INDEPENDENT

    def _render(self, frame: Input, start: FrameStart, done: int, saver: FrameSaver) -> np.ndarray:
        """Renders one frame from `start` and hands it to `saver`; returns its output."""
        index, content = frame.index, frame.content
        total, label = len(self.indices), self.label(start)
        later = self.later_budget()
        self.callback(FrameStarted(index, done, total, label, start.budget, later))
        began = time.perf_counter()
        stylized = self.engine.stylize(
            content,
            start.image,
            start.budget,
            start.temporal,
            self.callback,
            refine=self.refine,
            guide=frame.guide,
        )
        seconds = time.perf_counter() - began
        stats = {**build_stats(index, start, stylized, seconds), "input": frame.digest}
        saver.submit(index, stylized.image, {**stats, **self.extra_stats})
        result = stylized.optimization
        self.callback(
            FrameDone(
                index,
                done + 1,
                total,
                label,
                result.evaluations,
                seconds,
                dict(result.terms),
                *((stylized.image, content) if wants(self.callback, IMAGE) else ()),
            )
        )
        return stylized.image


class FirstPass(Sweep):
    """Pass 1, forwards (a single-pass render is this alone): each frame starts from the
    earlier frames' outputs warped onto it, or from its content."""

    flows_ahead = True

    def prepare(self) -> int:
        damaged = self.store.drop_damaged(self.indices)
        if damaged:
            self.callback(Message(f"rendering damaged frames again: {damaged}"))
        drop_changed(self.store, self.indices, self.callback)
        stale = stale_frames(self.store, self.source, self.indices)
        if stale:
            self.store.drop_frames(stale)
            again = f"rendering {frame_ranges(stale)} again"
            self.callback(Message(f"input changed since frames were rendered: {again}"))
        done = len(self.store.done_frames(self.indices))
        if done and done < len(self.indices):
            total = plural(len(self.indices), "frame")
            self.callback(Message(f"resuming: {done} of {total} already done"))
        return done

    def start(self, frame: Input, earlier: list[Earlier]) -> FrameStart:
        return temporal_start(frame.content, earlier, self.video, frame.flows)

    def later_budget(self) -> int | None:
        return self.video.iterations


class LaterPass(Sweep):
    """Pass `number` (>= 2), in its direction, from the previous pass's frames (`previous`,
    complete): each frame starts from its own last result, blended with its neighbours of this
    pass warped onto it (`target`)."""

    refine = True

    def __init__(
        self,
        engine: Engine,
        video: VideoConfig,
        source: FrameSource,
        previous: FrameStore,
        store: FrameStore,
        indices: range,
        number: int,
        long_side: int,
        callback: Callback = ignore,
        target: NeighbourTarget = pass_neighbour,
        chunk: int | None = None,
    ):
        self.number = number  # before the sweep's order is set
        stats = pass_stats(number, indices)
        super().__init__(engine, video, source, store, indices, long_side, callback, stats)
        self.previous, self.target, self.chunk = previous, target, chunk

    def prepare(self) -> int:
        damaged = self.store.drop_damaged(self.indices)
        if damaged:
            self.callback(Message(f"rendering damaged frames of pass {self.number} again"))
        drop_changed(self.store, self.indices, self.callback)
        return len(self.store.done_frames(self.indices))

    def start(self, frame: Input, earlier: list[Earlier]) -> FrameStart:
        index, content = frame.index, frame.content
        own = self.previous.load_frame(index)
        if own is None:  # render_passes runs a pass only after the previous one is complete
            raise ResumeError(
                f"frame {index} of pass {self.number - 1} in {self.previous.folder(index)} is "
                "missing or corrupt; run the render again to redo that pass"
            )
        neighbour, init = None, "own"
        if any(e.offset == 1 for e in earlier):
            neighbour = self.target(content, earlier, self.step, self.video)
            init = "cut"
        return later_start(own, neighbour, self.number, self.video, init)

    def label(self, start: FrameStart) -> str:
        return f"pass {self.number} {start.init}"


# --- reading the input -------------------------------------------------------------------------


def decoded(source: FrameSource, indices: range) -> Iterator[tuple[int, str, np.ndarray]]:
    """(index, digest, decoded frame) for `indices`, in order; the decoder ends with this."""
    frames = source.frames(indices.start, len(indices))
    try:
        for index, raw in zip(indices, frames, strict=False):
            yield index, frame_digest(raw), raw
    finally:
        close_frames(frames)


def read_contents(
    source: FrameSource, indices: range, long_side: int
) -> Iterator[tuple[int, str, np.ndarray]]:
    """(index, digest of the decoded frame, frame at the render's size) for `indices`, in order."""
    with contextlib.closing(decoded(source, indices)) as frames:
        for index, digest, raw in frames:
            # A frame with mask channels (styling.GuidedSource) resizes them on their own.
            plain = raw.ndim == 3 and raw.shape[2] == 3
            yield (
                index,
                digest,
                resize_long_side(raw, long_side) if plain else resize_frame(raw, long_side),
            )


def reversed_contents(
    source: FrameSource, indices: range, long_side: int, chunk: int
) -> Iterator[tuple[int, str, np.ndarray]]:
    """read_contents of `indices` (ascending), last frame first: `chunk` frames at a time are
    read forwards and handed out backwards, each dropped once handed out."""
    stop = indices.stop
    while stop > indices.start:
        begin = max(indices.start, stop - chunk)
        block = list(read_contents(source, range(begin, stop), long_side))
        while block:
            yield block.pop()
        stop = begin


def chunk_frames(source: FrameSource, long_side: int, budget: int = BACKWARD_CHUNK_BYTES) -> int:
    """How many frames at the render's size fit the backward pass's read-ahead budget."""
    height, width = scaled_shape(source.size[1], source.size[0], long_side)
    return max(2, budget // (height * width * 3))


# --- finished frames to render again ------------------------------------------------------------


def stale_frames(store: FrameStore, source: FrameSource, indices: range) -> list[int]:
    """Finished frames of pass 1 whose input frame changed since (its digest differs from the
    one recorded), and every frame that depends on them.

    A frame depends on the outputs of the frames at its temporal offsets (warm start, temporal
    targets) and on their inputs (the flows), and whether it is a scene cut depends on its own
    and its predecessor's input; a cut frame starts from its content alone and no later frame
    reaches back past it (the window is emptied there), so the chain of dependants ends before
    the first cut (or independently rendered frame) at least two frames after the changed one,
    whatever the offsets.
    """
    done = set(store.done_frames(indices))
    if not done:
        return []
    stale: list[int] = []
    changed_at: int | None = None
    for index, digest, _raw in decoded(source, range(indices.start, max(done) + 1)):
        if index not in done:
            continue
        stats = store.read_stats(index) or {}
        independent = stats.get("init") in INDEPENDENT
        if changed_at is not None and independent and index >= changed_at + 2:
            changed_at = None
        if stats.get("input") != digest:
            changed_at = index
        if changed_at is not None:
            stale.append(index)
    return stale


def drop_changed(store: FrameStore, indices: range, callback: Callback) -> None:
    """Finished frames whose PNG was replaced since it was rendered (FrameStore.drop_changed)
    are rendered again, and the user is told so in one line."""
    changed = store.drop_changed(indices)
    if len(changed) == 1:
        callback(Message(f"frame {changed[0]} changed since it was rendered; rendering it again"))
    elif changed:
        callback(
            Message(
                f"{frame_ranges(changed)} changed since they were rendered; rendering them again"
            )
        )


def frame_ranges(indices: list[int]) -> str:
    """'frames 3-5, 9' for [3, 4, 5, 9]."""
    parts, start = [], indices[0]
    for prev, cur in zip(indices, [*indices[1:], None], strict=True):
        if cur != prev + 1:
            parts.append(f"{start}-{prev}" if prev > start else str(start))
            start = cur
    return ("frames " if len(indices) > 1 else "frame ") + ", ".join(parts)
