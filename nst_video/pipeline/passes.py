"""Ruder et al.'s multi-pass algorithm (IJCV 2018, section 4.4): `--passes N` sweeps over the
clip N times, alternating direction (pass 1 forward, 2 backward, 3 forward, ...).

Pass 1 is the single-pass render (FrameLoop): each frame starts from the flow-warped previous
output and has the temporal term. (Ruder's pass 1 starts every frame from noise, without the
temporal term; his later passes then do the propagating. Ours starts from a consistent clip,
so later passes refine it and need fewer evaluations.) From pass 2 on, frame i starts from

    delta * c * warp(neighbour's result in this pass) + (1 - delta * c) * its own last result

where the neighbour is frame i-1 (forward) or i+1 (backward), c the neighbour's consistency
mask, delta `--pass-blend`; from pass `--temporal-from-pass` on, it also has the temporal term
against the same warped neighbour. With --temporal-offsets 1,2,4 the "neighbour" is this pass's
results at i-d*k for each offset k (d the direction), combined as pass 1 combines them (Ruder's
long-term masks, flows computed directly between the input frames): warp and c are that
combination's. Across a scene cut a frame takes nothing from its neighbours.

Every pass streams: it reads input frames (a backward pass in chunks, see reversed_contents)
and the previous pass's PNGs, and writes its own through the frame store, so a multi-pass render
resumes exactly like a single-pass one. A pass's frames are deleted once the next pass is
complete, the last pass's are the render's frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from nst_video.config import VideoConfig
from nst_video.core.engine import Engine, FrameGuide, Temporal
from nst_video.errors import ResumeError, plural
from nst_video.media import FrameSource
from nst_video.pipeline.render import (
    Earlier,
    FrameLoop,
    FrameSaver,
    FrameStart,
    Window,
    build_stats,
    close_frames,
    drop_changed,
    prefetch,
    read_contents,
    temporal_start,
    unit_colors,
)
from nst_video.pipeline.styling import split_frame
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
from nst_video.video.resize import scaled_shape
from nst_video.workdir.store import FrameStore, frame_digest

# Pass number -> its frame store (WorkDir.pass_frames, or a segment's segment_pass_frames).
PassStores = Callable[[int], FrameStore]

# A backward pass reads the input in chunks of this many bytes of frames at the render's size,
# last chunk first, each reversed in memory. A video decoder only runs forwards (and each chunk
# decodes from the clip's start), so larger chunks decode less: 256 MiB holds ~600 frames at
# 512x288 (a 10k-frame clip then decodes its input ~9 times per backward pass, cheap next to
# stylizing it) and bounds memory whatever the clip's length.
BACKWARD_CHUNK_BYTES = 256 * 2**20


def direction(number: int) -> int:
    """+1 for a forward pass (odd numbers), -1 for a backward one."""
    return 1 if number % 2 else -1


def pass_order(indices: range, number: int) -> range:
    """The frames of `indices` in the order pass `number` renders them."""
    return indices if direction(number) > 0 else indices[::-1]


# --- what a frame takes from its neighbour -----------------------------------------------------


@dataclass(frozen=True)
class Neighbour:
    """The neighbours' results of this pass warped onto a frame, and where to trust them."""

    warped: np.ndarray  # HxWx3 uint8 (one neighbour) or float32 in [0, 1] (several, combined)
    mask: np.ndarray  # HxW float32 in [0, 1]
    consistent: float
    constant: float = 0.0  # Temporal.constant of the combined target
    recovered: float | None = None  # as FrameStart.recovered


# (frame's content, this pass's earlier frames at the temporal offsets (Earlier.offset k: frame
# i-k going forward, i+k going backward; the same shot only), pass direction, settings) -> what
# the frame takes from them, or None across a scene cut.
NeighbourTarget = Callable[[np.ndarray, Sequence[Earlier], int, VideoConfig], "Neighbour | None"]


def pass_neighbour(
    content: np.ndarray, earlier: Sequence[Earlier], step: int, video: VideoConfig
) -> Neighbour | None:
    """This pass's earlier results warped onto the frame and weighted as pass 1 weights them
    (render.temporal_start: Ruder's long-term masks, flows between the input frames).

    A backward pass warps frame i+1 onto frame i (flow i -> i+1) but decides the cut between
    them from the forward pair, as pass 1 did, so every pass sees the same cuts.
    """
    adjacent = next((e for e in earlier if e.offset == 1), None)
    if adjacent is None:
        return None
    flows, cut_flow = None, None
    if step < 0:
        cut_flow, behind = flow.pair_flows(content, adjacent.input, video.flow)
        flows = {1: behind}
    start = temporal_start(content, earlier, video, flows, cut_flow)
    if start.temporal is None:  # offset 1 is there: a scene cut
        return None
    target = start.temporal
    return Neighbour(target.warped, target.mask, start.consistent, target.constant, start.recovered)


def later_start(
    own: np.ndarray, neighbour: Neighbour | None, number: int, video: VideoConfig, init: str
) -> FrameStart:
    """How a frame of pass `number` (>= 2) starts: its own last result blended with the warped
    neighbour where the flow is reliable; `init` names a frame without one (own / cut)."""
    if neighbour is None:
        return FrameStart(own, video.pass_iterations, init, None, None)
    weight = (video.pass_blend * neighbour.mask)[..., None]
    image = weight * unit_colors(neighbour.warped) + (1.0 - weight) * unit_colors(own)
    temporal = None
    if number >= video.temporal_from_pass:
        temporal = Temporal(neighbour.warped, neighbour.mask, neighbour.constant)
    return FrameStart(
        image.astype(np.float32),
        video.pass_iterations,
        "blended",
        temporal,
        neighbour.consistent,
        neighbour.recovered,
    )


# --- reading the input -------------------------------------------------------------------------


def reversed_contents(
    source: FrameSource, indices: range, long_side: int, chunk: int
) -> Iterator[tuple[int, str, np.ndarray]]:
    """render.read_contents of `indices` (ascending), last frame first: `chunk` frames at a
    time are read forwards and handed out backwards, each dropped once handed out."""
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


# --- one later pass ----------------------------------------------------------------------------


class PassLoop:
    """Renders pass `number` (>= 2) of the frames of `indices` that its store lacks, in the
    pass's direction, from the previous pass's frames (`previous`, complete)."""

    def __init__(
        self,
        engine: Engine,
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
        self.engine, self.source, self.previous, self.store = engine, source, previous, store
        self.indices, self.number, self.long_side = indices, number, long_side
        self.callback, self.target = callback, target
        self.chunk = chunk or chunk_frames(source, long_side)
        self.video = engine.settings.video
        self.depth = max(self.video.temporal_offsets)  # this pass's results the loop holds

    def run(self) -> int:
        """Returns the number of frames rendered now."""
        damaged = self.store.drop_damaged(self.indices)
        if damaged:
            self.callback(Message(f"rendering damaged frames of pass {self.number} again"))
        drop_changed(self.store, self.indices, self.callback)
        order = pass_order(self.indices, self.number)
        todo = [k for k, i in enumerate(order) if not self.store.has_frame(i)]
        if not todo:
            return 0
        first = todo[0]
        # A finished frame that no longer decodes cannot seed its successor: back up to it.
        while first > 0 and self.store.load_frame(order[first - 1]) is None:
            first -= 1
        done = len(order) - len(todo)
        rendered = 0
        # This pass's results that frames still to render reach (up to the largest offset
        # back along the pass), from their finished PNGs; emptied at a frame that took nothing
        # from its neighbours (the pass's first, a scene cut), so no offset reaches across.
        window = Window(self.depth)
        with FrameSaver(self.store) as saver:
            start = max(first - self.depth, 0)
            for position, (index, digest, frame) in self._contents(order, start):
                content, guide = split_frame(self.source, index, frame)
                out: np.ndarray | None = None
                if self.store.has_frame(index):
                    independent = self._recorded_independent(index)
                    if not self._needed_later(order, position):
                        window.push(index, content, None, independent)  # decoded if needed
                        continue
                    out = self.store.load_frame(index)  # None if damaged: rendered again
                if out is None:
                    window.fill(self.store.load_frame)
                    step = direction(self.number)
                    earlier = window.earlier(index, self.video.temporal_offsets, step)
                    out, independent = self._render(
                        index, content, digest, earlier, done + rendered, saver, guide
                    )
                    rendered += 1
                window.push(index, content, out, independent)
        return rendered

    def _needed_later(self, order: range, position: int) -> bool:
        """Whether a frame still to render reaches finished frame `order[position]` through
        one of the offsets (a finished frame is decoded only then)."""
        later = (position + k for k in self.video.temporal_offsets)
        return any(p < len(order) and not self.store.has_frame(order[p]) for p in later)

    def _recorded_independent(self, index: int) -> bool:
        """Whether finished frame `index` took nothing from its neighbours, as recorded."""
        stats = self.store.read_stats(index) or {}
        return stats.get("init") in ALONE

    def _contents(
        self, order: range, skip: int
    ) -> Iterator[tuple[int, tuple[int, str, np.ndarray]]]:
        """(position in `order`, content) from position `skip` on, read ahead in a thread."""
        rest = order[skip:]
        if direction(self.number) > 0:
            items = read_contents(self.source, rest, self.long_side)
        else:
            ascending = rest[::-1]
            items = reversed_contents(self.source, ascending, self.long_side, self.chunk)
        return enumerate(prefetch(items), skip)

    def _render(
        self,
        index: int,
        content: np.ndarray,
        digest: str,
        earlier: list[Earlier],
        done: int,
        saver: FrameSaver,
        guide: FrameGuide | None = None,
    ) -> tuple[np.ndarray, bool]:
        """Renders one frame; returns its output and whether it took nothing from neighbours."""
        own = self.previous.load_frame(index)
        if own is None:  # render_passes runs a pass only after the previous one is complete
            raise ResumeError(
                f"frame {index} of pass {self.number - 1} in {self.previous.folder(index)} is "
                "missing or corrupt; run the render again to redo that pass"
            )
        neighbour, init = None, "own"
        if any(e.offset == 1 for e in earlier):
            neighbour = self.target(content, earlier, direction(self.number), self.video)
            init = "cut"
        start = later_start(own, neighbour, self.number, self.video, init)
        total = len(self.indices)
        label = f"pass {self.number} {start.init}"
        self.callback(FrameStarted(index, done, total, label, start.budget))
        began = time.perf_counter()
        stylized = self.engine.stylize(
            content,
            start.image,
            start.budget,
            start.temporal,
            self.callback,
            refine=True,
            guide=guide,
        )
        seconds = time.perf_counter() - began
        stats = {
            **build_stats(index, start, stylized, seconds),
            "input": digest,
            **pass_stats(self.number, self.indices),
        }
        saver.submit(index, stylized.image, stats)
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
        return stylized.image, start.init in ALONE


# Starts of a later pass that take nothing from the neighbours: none before them is reached.
ALONE = ("own", "cut")


def pass_stats(number: int, indices: range) -> dict[str, object]:
    """What a multi-pass frame records beyond a single-pass one: its pass, and the range its
    pass covered (a later pass depends on every frame of it, not only on earlier ones)."""
    return {"pass": number, "range": [indices.start, indices.stop]}


# --- the passes together -----------------------------------------------------------------------


def render_passes(
    engine: Engine,
    source: FrameSource,
    stores: PassStores,
    indices: range,
    long_side: int,
    callback: Callback = ignore,
    target: NeighbourTarget = pass_neighbour,
) -> int:
    """Render (or continue) every pass of `indices`; returns the frames rendered now.

    With --passes 1 this is the single-pass FrameLoop on the render's frames, unchanged.
    """
    passes = engine.settings.video.passes
    if passes == 1:
        return FrameLoop(engine, source, stores(1), indices, long_side, callback).run()
    first = resume_point(source, stores, indices, passes, callback)
    rendered = 0
    for number in range(first, passes + 1):
        store = stores(number)
        if number < passes:
            store.remove_temporaries()  # its folder is written by this render alone
        way = "forward" if direction(number) > 0 else "backward"
        callback(Message(f"pass {number} of {passes} ({way})"))
        if number == 1:
            loop = FrameLoop(
                engine, source, store, indices, long_side, callback, pass_stats(1, indices)
            )
            rendered += loop.run()
            continue
        previous = stores(number - 1)
        loop = PassLoop(
            engine, source, previous, store, indices, number, long_side, callback, target
        )
        rendered += loop.run()
        previous.discard()  # every frame of this pass is done: nothing reads that one again
    return rendered


def resume_point(
    source: FrameSource, stores: PassStores, indices: range, passes: int, callback: Callback
) -> int:
    """The first pass to run: the latest one begun, or earlier when a pass it starts from is
    incomplete (back to pass 1, which starts from the input alone). Frames of passes >= 2 made
    for another frame range or from changed input frames are discarded first (pass 1 checks
    its own, as a single-pass render does)."""
    later = [stores(n) for n in range(2, passes + 1)]
    reason = _outdated(source, later, indices)
    if reason:
        again = f"passes 2-{passes}" if passes > 2 else "pass 2"
        callback(Message(f"{reason}: rendering {again} again"))
        for store in later:
            _drop_all(store, indices)
    begun = [n for n in range(1, passes + 1) if stores(n).done_frames(indices)]
    number = max(begun, default=1)
    if number < passes and _complete(stores(number), indices, callback):
        number += 1
    while number > 1 and not _complete(stores(number - 1), indices, callback):
        number -= 1
    done = len(stores(number).done_frames(indices))
    if done or number > 1:
        callback(
            Message(
                f"resuming at pass {number} of {passes}: {done} of "
                f"{plural(len(indices), 'frame')} of that pass done"
            )
        )
    return number


def _complete(store: FrameStore, indices: range, callback: Callback) -> bool:
    store.drop_damaged(indices)
    drop_changed(store, indices, callback)
    return len(store.done_frames(indices)) == len(indices)


def _drop_all(store: FrameStore, indices: range) -> None:
    if store.warmup is None and store.main.name.isdigit():
        store.discard()  # an earlier pass's own folder
    else:  # the render's (or a segment's) frames: only those of this range
        store.drop_frames(indices)


def _outdated(source: FrameSource, stores: list[FrameStore], indices: range) -> str | None:
    """Why the stored frames of passes >= 2 cannot be reused, or None: each depends on every
    frame of its pass's range, so a frame made for another range (a longer or shorter
    --frames) or from an input frame that changed since cannot be kept."""
    stats: dict[int, list[dict[str, object]]] = {}
    for store in stores:
        for index in store.done_frames(indices):
            stats.setdefault(index, []).append(store.read_stats(index) or {})
    if not stats:
        return None
    wanted = [indices.start, indices.stop]
    if any(s.get("range") != wanted for rows in stats.values() for s in rows):
        return "the frame range changed"
    stop = max(stats) + 1
    frames = source.frames(indices.start, stop - indices.start)
    try:
        for index, raw in zip(range(indices.start, stop), frames, strict=False):
            if any(s.get("input") != frame_digest(raw) for s in stats.get(index, ())):
                return "input frames changed since frames were rendered"
    finally:
        close_frames(frames)
    return None
