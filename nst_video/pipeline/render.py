"""The frame loop: stream frames, warm-start each from the flow-warped previous output, and
save each finished frame to the work directory. Resumable at any instant."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from queue import Full, Queue
from types import TracebackType
from typing import Any

import numpy as np

from nst_video.config import VideoConfig
from nst_video.core.engine import Engine, FrameGuide, Stylized, Temporal
from nst_video.core.lbfgs import Memory
from nst_video.errors import Interrupted, plural
from nst_video.media import FrameSource
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
from nst_video.video.resize import resize_long_side
from nst_video.workdir.manifest import Job
from nst_video.workdir.store import FrameStore, frame_digest

# Builds the engine of a job: injected by the caller (the CLI passes api.engine_for), and sent
# to Ray tasks too, so every frame of a render is made by the same kind of engine.
EngineFactory = Callable[[Job], Engine]

# --- per-frame logic ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameStart:
    """How one frame's optimization starts: its first image, iteration budget and temporal
    target."""

    image: np.ndarray  # the optimizer's first iterate
    budget: int
    init: str  # content | warped | previous | cut
    temporal: Temporal | None
    consistent: float | None
    # Share of the pixels whose warm start came from an offset > 1 (hidden in the previous
    # frame, reliably tracked to an earlier one); None with offset 1 alone.
    recovered: float | None = None
    memory: Memory | None = None  # L-BFGS memory carried from the previous frame


@dataclass(frozen=True)
class Earlier:
    """A frame `offset` frames before the one being rendered: its input (at the render's size)
    and its finished output."""

    offset: int
    input: np.ndarray
    output: np.ndarray


def frame_start(
    content: np.ndarray,
    prev_in: np.ndarray | None,
    prev_out: np.ndarray | None,
    video: VideoConfig,
    ff: flow.FrameFlow | None = None,
    memory: Memory | None = None,
) -> FrameStart:
    """How frame i starts from the previous frame alone (offset 1): from its content, or from
    the previous output warped onto it.

    `ff` is the flow between the input frames when it was computed ahead (in the background).
    `memory`, the previous frame's L-BFGS memory, is carried only into a warm-started frame:
    the first frame, a scene cut and an independent frame pose another problem (other content,
    no temporal term), and FrameLoop.stale_frames relies on such frames depending on nothing
    before them. The frame loop passes none: carrying measured no clear gain (README,
    "Carrying L-BFGS memory"); scripts/bench_carry.py measures it through here.
    """
    earlier = [] if prev_in is None or prev_out is None else [Earlier(1, prev_in, prev_out)]
    start = temporal_start(content, earlier, video, {1: ff} if ff is not None else None)
    return start if start.init in INDEPENDENT else replace(start, memory=memory)


def temporal_start(
    content: np.ndarray,
    earlier: Sequence[Earlier],
    video: VideoConfig,
    flows: Mapping[int, flow.FrameFlow] | None = None,
    cut_flow: flow.FrameFlow | None = None,
) -> FrameStart:
    """How a frame starts, given the earlier frames at (some of) `video.temporal_offsets`.

    Without the previous frame (offset 1) it starts from its content, as a first frame does;
    so does a scene cut (judged on the flow from the previous frame). Otherwise every earlier
    frame's output is warped onto this one by the flow computed directly between the two
    input frames, and weighted by Ruder et al.'s long-term masks, so each pixel is tied to
    the nearest earlier frame where it was visible. The caller passes only frames of the same
    shot (none from before a cut or before the render's first frame). `flows` holds the flows
    already computed (in the background), by offset; the others are computed here.

    "Earlier" means earlier in the pass: a backward pass of --passes passes the frames after
    this one (offset k = frame i+k), and `cut_flow`, the flow the scene cut is judged on in
    place of the one from offset 1 (there: the forward pair, as pass 1 judged it).
    """
    by_offset = {e.offset: e for e in earlier if e.offset in video.temporal_offsets}
    if 1 not in by_offset or video.init == "content":
        # No history, or independent frames (for comparison): the first frame's budget.
        return FrameStart(content, video.first_iterations, "content", None, None)
    known = dict(flows or {})

    def flow_from(offset: int) -> flow.FrameFlow:
        ff = known.get(offset)
        if ff is None:
            ff = flow.frame_flow(by_offset[offset].input, content, video.flow)
        return ff

    ff = flow_from(1)
    if flow.is_scene_cut(cut_flow or ff, video.scene_cut_threshold):
        return FrameStart(content, video.first_iterations, "cut", None, ff.consistent_fraction)
    offsets = sorted(by_offset)
    ffs = {1: ff, **{k: flow_from(k) for k in offsets[1:]}}
    warps = {
        k: flow.warp(by_offset[k].output, ffs[k].backward, video.warp_interpolation)
        for k in offsets
    }
    masks = flow.long_term_masks({k: ffs[k].mask for k in offsets})
    # Pixels no earlier frame tracks reliably (disoccluded) start from the content instead;
    # the nearest offset that tracks a pixel gives its start (with 0/1 masks only one does).
    image = content
    for k in reversed(offsets):
        image = np.where(masks[k][..., None] > 0.5, warps[k], image)
    init = "previous" if video.flow == "none" else "warped"
    recovered = None
    if len(video.temporal_offsets) > 1:
        recovered = float(sum((masks[k] > 0.5).mean() for k in offsets[1:]))
    return FrameStart(
        image,
        video.iterations,
        init,
        combined_temporal(warps, masks),
        ff.consistent_fraction,
        recovered,
    )


def combined_temporal(warps: Mapping[int, np.ndarray], masks: Mapping[int, np.ndarray]) -> Temporal:
    """One temporal target equal to the sum of the per-offset terms mean(m_k (x - w_k)^2).

    That sum is mean(M (x - W)^2) + C with M = sum m_k, W = sum m_k w_k / M and C the
    x-independent mean(sum m_k w_k^2 - M W^2): the same gradient, so the engine's one target
    suffices; C goes into Temporal.constant so the reported term is the sum. With 0/1 masks
    from long_term_masks the m_k are disjoint, W picks each pixel's one warp and C is 0.
    """
    if len(warps) == 1:
        (offset,) = warps
        return Temporal(warps[offset], masks[offset])  # as it is: uint8, no rounding
    units = {k: unit_colors(w) for k, w in warps.items()}
    total = sum(masks[k] for k in warps)
    weighted = sum(masks[k][..., None] * units[k] for k in warps)
    squares = sum(masks[k][..., None] * np.square(units[k]) for k in warps)
    covered = total > 0
    first = units[min(warps)]
    target = np.where(
        covered[..., None], weighted / np.where(covered, total, 1.0)[..., None], first
    )
    constant = float(np.mean(squares - total[..., None] * np.square(target)))
    return Temporal(target.astype(np.float32), total.astype(np.float32), max(constant, 0.0))


def unit_colors(image: np.ndarray) -> np.ndarray:
    """Colors in [0, 1] as float32 (uint8 images scaled)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32)


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


# --- the loop ----------------------------------------------------------------------------------


class FrameLoop:
    """Renders the frames of `indices` that the frame store lacks, in order."""

    def __init__(
        self,
        engine: Engine,
        source: FrameSource,
        store: FrameStore,
        indices: range,
        long_side: int,
        callback: Callback = ignore,
        extra_stats: Mapping[str, Any] | None = None,
    ):
        self.engine, self.source, self.store = engine, source, store
        self.indices, self.long_side, self.callback = indices, long_side, callback
        self.video = engine.settings.video
        self.depth = max(self.video.temporal_offsets)  # earlier frames the loop holds
        # Recorded with every frame beyond build_stats (pass 1 of a multi-pass render: its pass).
        self.extra_stats = dict(extra_stats or {})

    def run(self) -> int:
        """Returns the number of frames rendered now."""
        damaged = self.store.drop_damaged(self.indices)
        if damaged:
            self.callback(Message(f"rendering damaged frames again: {damaged}"))
        drop_changed(self.store, self.indices, self.callback)
        stale = self.stale_frames()
        if stale:
            self.store.drop_frames(stale)
            self.callback(
                Message(
                    f"input changed since frames were rendered: rendering {_ranges(stale)} again"
                )
            )
        first = next((i for i in self.indices if not self.store.has_frame(i)), None)
        if first is None:
            return 0
        # A finished frame that no longer decodes cannot seed its successor: back up to it.
        while first > self.indices.start and self.store.load_frame(first - 1) is None:
            first -= 1
        done = len(self.store.done_frames(self.indices))
        if done:
            total = plural(len(self.indices), "frame")
            self.callback(Message(f"resuming: {done} of {total} already done"))
        # The earlier frames' terms come from their finished PNGs: read back as far as the
        # largest offset reaches.
        read_from = max(first - self.depth, self.indices.start)
        window = Window(self.depth)
        rendered = 0
        with FrameSaver(self.store) as saver:
            for index, content, (digest, flows, guide) in prefetch(self._inputs(read_from)):
                out: np.ndarray | None = None
                if self.store.has_frame(index):
                    independent = self._recorded_independent(index)
                    if not self._needed_later(index):
                        # Not decoded: loaded by Window.fill only if a later frame turns out
                        # damaged and is rendered again after all.
                        window.push(index, content, None, independent)
                        continue
                    out = self.store.load_frame(index)  # None if damaged: rendered again
                if out is None:
                    window.fill(self.store.load_frame)  # finished, not decoded
                    earlier = window.earlier(index, self.video.temporal_offsets)
                    out, independent = self._render(
                        index, content, digest, earlier, done + rendered, saver, flows, guide
                    )
                    rendered += 1
                window.push(index, content, out, independent)
        return rendered

    def stale_frames(self) -> list[int]:
        """Finished frames whose input frame changed since (its digest differs from the one
        recorded), and every frame that depends on them.

        A frame depends on the outputs of the frames at its temporal offsets (warm start,
        temporal targets) and on their inputs (the flows), and whether it is a scene cut
        depends on its own and its predecessor's input; a cut frame starts from its content
        alone and no later frame reaches back past it (the window is emptied there), so the
        chain of dependants ends before the first cut (or independently rendered frame) at
        least two frames after the changed one, whatever the offsets.
        """
        done = set(self.store.done_frames(self.indices))
        if not done:
            return []
        stale: list[int] = []
        changed_at: int | None = None
        start, stop = self.indices.start, max(done) + 1
        frames = self.source.frames(start, stop - start)
        try:
            for index, raw in zip(range(start, stop), frames, strict=False):
                if index not in done:
                    continue
                stats = self.store.read_stats(index) or {}
                independent = stats.get("init") in ("content", "cut")
                if changed_at is not None and independent and index >= changed_at + 2:
                    changed_at = None
                if stats.get("input") != frame_digest(raw):
                    changed_at = index
                if changed_at is not None:
                    stale.append(index)
        finally:
            close_frames(frames)
        return stale

    def _contents(self, read_from: int) -> Iterator[tuple[int, str, np.ndarray]]:
        """(index, digest of the decoded frame, frame at the render's size) from `read_from`."""
        return read_contents(self.source, range(read_from, self.indices.stop), self.long_side)

    def _inputs(
        self, read_from: int
    ) -> Iterator[tuple[int, np.ndarray, tuple[str, dict[int, flow.FrameFlow], FrameGuide | None]]]:
        """Frames with their digest, their guide (schedule, masks) and, for frames still to
        render, the flows from the earlier frames at each temporal offset, computed directly
        between the input frames (composing adjacent flows drifts). Holds only the inputs the
        largest offset needs."""
        recent: deque[tuple[int, np.ndarray]] = deque(maxlen=self.depth)
        offsets = self.video.temporal_offsets
        for index, digest, frame in self._contents(read_from):
            content, guide = split_frame(self.source, index, frame)
            flows: dict[int, flow.FrameFlow] = {}
            if self.video.init == "flow" and not self.store.has_frame(index):
                for earlier, frame in recent:
                    if index - earlier in offsets:
                        flows[index - earlier] = flow.frame_flow(frame, content, self.video.flow)
            yield index, content, (digest, flows, guide)
            recent.append((index, content))

    def _needed_later(self, index: int) -> bool:
        """Whether a frame still to render is tied to finished frame `index` through one of
        the offsets (a finished frame is decoded only then)."""
        later = (index + k for k in self.video.temporal_offsets)
        return any(i < self.indices.stop and not self.store.has_frame(i) for i in later)

    def _recorded_independent(self, index: int) -> bool:
        """Whether finished frame `index` started from its content (first frame, cut, or
        --init content), as its statistics record: no later frame reaches back past it."""
        stats = self.store.read_stats(index) or {}
        return stats.get("init") in INDEPENDENT

    def _render(
        self,
        index: int,
        content: np.ndarray,
        digest: str,
        earlier: list[Earlier],
        done: int,
        saver: FrameSaver,
        flows: Mapping[int, flow.FrameFlow],
        guide: FrameGuide | None = None,
    ) -> tuple[np.ndarray, bool]:
        """Renders one frame; returns its output and whether it started from its content."""
        start = temporal_start(content, earlier, self.video, flows)
        total = len(self.indices)
        later = self.video.iterations
        self.callback(FrameStarted(index, done, total, start.init, start.budget, later))
        began = time.perf_counter()
        stylized = self.engine.stylize(
            content, start.image, start.budget, start.temporal, self.callback, guide=guide
        )
        seconds = time.perf_counter() - began
        stats = {
            **build_stats(index, start, stylized, seconds),
            "input": digest,
            **self.extra_stats,
        }
        saver.submit(index, stylized.image, stats)
        self.callback(
            FrameDone(
                index,
                done + 1,
                total,
                start.init,
                stylized.optimization.evaluations,
                seconds,
                dict(stylized.optimization.terms),
                *((stylized.image, content) if wants(self.callback, IMAGE) else ()),
            )
        )
        return stylized.image, start.init in INDEPENDENT


# Starts that use no earlier frame: later frames reach back to such a frame, never past it.
INDEPENDENT = ("content", "cut")


class Window:
    """The inputs and outputs of the last `depth` frames (the largest temporal offset): all
    the history the loop keeps. An independent frame (first, cut) empties it first, so no
    offset reaches back across a scene cut."""

    def __init__(self, depth: int):
        # (index, input, output or None while a finished frame is not decoded)
        self._frames: deque[tuple[int, np.ndarray, np.ndarray | None]] = deque(maxlen=depth)

    def __len__(self) -> int:
        return len(self._frames)

    def push(
        self, index: int, content: np.ndarray, output: np.ndarray | None, independent: bool
    ) -> None:
        if independent:
            self._frames.clear()
        self._frames.append((index, content, output))

    def fill(self, load: Callable[[int], np.ndarray | None]) -> None:
        """Decodes the finished frames not decoded yet; one that fails to decode is dropped."""
        kept = deque(maxlen=self._frames.maxlen)
        for index, content, output in self._frames:
            output = output if output is not None else load(index)
            if output is not None:
                kept.append((index, content, output))
        self._frames = kept

    def earlier(self, index: int, offsets: Sequence[int], step: int = 1) -> list[Earlier]:
        """The frames at `offsets` before frame `index` that the window holds (decoded);
        `step` -1: a backward pass, where the frames before are those after (index + k)."""
        return [
            Earlier((index - i) * step, content, output)
            for i, content, output in self._frames
            if (index - i) * step in offsets and output is not None
        ]


def read_contents(
    source: FrameSource, indices: range, long_side: int
) -> Iterator[tuple[int, str, np.ndarray]]:
    """(index, digest of the decoded frame, frame at the render's size) for `indices`, in order."""
    frames = source.frames(indices.start, len(indices))
    try:
        for index, raw in zip(indices, frames, strict=False):
            # A frame with mask channels (styling.GuidedSource) resizes them on their own.
            plain = raw.ndim == 3 and raw.shape[2] == 3
            resized = resize_long_side(raw, long_side) if plain else resize_frame(raw, long_side)
            yield index, frame_digest(raw), resized
    finally:
        close_frames(frames)


def close_frames(frames: Iterator[Any]) -> None:
    close = getattr(frames, "close", None)
    if close is not None:
        close()  # ends a decoder subprocess when we stop early


def drop_changed(store: FrameStore, indices: range, callback: Callback) -> None:
    """Finished frames whose PNG was replaced since it was rendered (FrameStore.drop_changed)
    are rendered again, and the user is told so in one line."""
    changed = store.drop_changed(indices)
    if len(changed) == 1:
        callback(Message(f"frame {changed[0]} changed since it was rendered; rendering it again"))
    elif changed:
        callback(
            Message(f"{_ranges(changed)} changed since they were rendered; rendering them again")
        )


def _ranges(indices: list[int]) -> str:
    """'frames 3-5, 9' for [3, 4, 5, 9]."""
    parts, start = [], indices[0]
    for prev, cur in zip(indices, [*indices[1:], None], strict=True):
        if cur != prev + 1:
            parts.append(f"{start}-{prev}" if prev > start else str(start))
            start = cur
    return ("frames " if len(indices) > 1 else "frame ") + ", ".join(parts)


class FrameSaver:
    """Saves finished frames on one background thread, so the optimizer starts the next frame
    while the last one is PNG-encoded and fsynced instead of leaving the GPU idle.

    One save at a time: a kill loses at most the frame being written and the one being
    optimized, and at most one finished image waits in memory. A failed save is raised on the
    calling thread by the next `submit`, or on leaving the `with` block.
    """

    def __init__(self, store: FrameStore):
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nst-save")
        self._pending: Future[None] | None = None

    def submit(self, index: int, image: np.ndarray, stats: dict[str, Any]) -> None:
        """Waits for the previous save, raising its error, then starts saving this frame."""
        error = self._finish()
        if error is not None:
            raise error
        self._pending = self._pool.submit(self.store.save_frame, index, image, stats)

    def _finish(self) -> BaseException | None:
        """Waits for the pending save and returns its error, if any."""
        if self._pending is None:
            return None
        # A signal can interrupt this wait: the save then stays pending, for __exit__ to wait
        # for again, so an interrupted render keeps the frame it was writing.
        error = self._pending.exception()
        self._pending = None
        return error

    def __enter__(self) -> FrameSaver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            error = self._finish()
        finally:
            self._pool.shutdown(wait=False)  # idle by now, unless a second signal cut the wait
        # What ended the loop matters more than a save failing meanwhile (the frame is
        # simply rendered again on resume).
        if error is not None and exc is None:
            raise error


# --- background work ----------------------------------------------------------------------------

_END = object()
# How long an early stop waits for the producer to finish the item it is working on; closing
# the items (and so the decoder) is the producer's own job, done however long that takes.
JOIN_TIMEOUT = 5.0


def prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run `items` (decoding, resizing, optical flow) in a thread, `depth` items ahead, so the
    optimizer never waits for the CPU-side work of the next frame."""
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(queue, item, stop):
                    return
            _put(queue, _END, stop)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put(queue, exc, stop)
        finally:
            # In this thread, never while `items` runs elsewhere: a generator cannot be closed
            # from another thread while it executes, which left the decoder running.
            close_frames(items)

    thread = threading.Thread(target=produce, name="nst-prefetch", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=JOIN_TIMEOUT)


def _put(queue: Queue[Any], item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            queue.put(item, timeout=0.1)
            return True
        except Full:
            continue
    return False


# --- signals -----------------------------------------------------------------------------------


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT/SIGTERM raise Interrupted at once; every write is atomic, so that is safe."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
