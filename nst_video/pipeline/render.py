"""The frame loop: stream frames, warm-start each from the flow-warped previous output, and
save each finished frame to the work directory. Resumable at any instant."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from queue import Full, Queue
from types import TracebackType
from typing import Any

import numpy as np

from nst_video.config import VideoConfig
from nst_video.core.engine import Engine, Stylized, Temporal
from nst_video.core.lbfgs import Memory
from nst_video.errors import Interrupted, plural
from nst_video.media import FrameSource
from nst_video.progress import Callback, FrameDone, FrameStarted, Message, ignore
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
    memory: Memory | None = None  # L-BFGS memory carried from the previous frame


def frame_start(
    content: np.ndarray,
    prev_in: np.ndarray | None,
    prev_out: np.ndarray | None,
    video: VideoConfig,
    ff: flow.FrameFlow | None = None,
    memory: Memory | None = None,
) -> FrameStart:
    """How frame i starts: from its content, or from the previous output warped onto it.

    `ff` is the flow between the input frames when it was computed ahead (in the background).
    `memory`, the previous frame's L-BFGS memory, is carried only into a warm-started frame:
    the first frame, a scene cut and an independent frame pose another problem (other content,
    no temporal term), and FrameLoop.stale_frames relies on such frames depending on nothing
    before them. The frame loop passes none: carrying measured no clear gain (README,
    "Carrying L-BFGS memory"); scripts/bench_carry.py measures it through here.
    """
    if prev_out is None or prev_in is None:
        return FrameStart(content, video.first_iterations, "content", None, None)
    if video.init == "content":
        # Independent frames, for comparison: each gets the first frame's budget.
        return FrameStart(content, video.first_iterations, "content", None, None)
    ff = ff or flow.frame_flow(prev_in, content, video.flow)
    if flow.is_scene_cut(ff, video.scene_cut_threshold):
        return FrameStart(content, video.first_iterations, "cut", None, ff.consistent_fraction)
    warped = flow.warp(prev_out, ff.backward, video.warp_interpolation)
    # Disoccluded pixels have no valid history: they start from the content instead.
    image = np.where(ff.mask[..., None] > 0.5, warped, content)
    init = "previous" if video.flow == "none" else "warped"
    return FrameStart(
        image, video.iterations, init, Temporal(warped, ff.mask), ff.consistent_fraction, memory
    )


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
    ):
        self.engine, self.source, self.store = engine, source, store
        self.indices, self.long_side, self.callback = indices, long_side, callback
        self.video = engine.settings.video

    def run(self) -> int:
        """Returns the number of frames rendered now."""
        damaged = self.store.drop_damaged(self.indices)
        if damaged:
            self.callback(Message(f"rendering damaged frames again: {damaged}"))
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
        read_from = max(first - 1, self.indices.start)
        prev_in: np.ndarray | None = None
        prev_out: np.ndarray | None = None
        rendered = 0
        with FrameSaver(self.store) as saver:
            for index, content, (digest, ff) in prefetch(self._inputs(read_from)):
                out: np.ndarray | None = None
                if self.store.has_frame(index):
                    if not self._next_starts_from(index):
                        # Not decoded: prev_out stays None, loaded below only if the next
                        # frame turns out damaged and is rendered again after all.
                        prev_in, prev_out = content, None
                        continue
                    out = self.store.load_frame(index)  # None if damaged: rendered again
                if out is None:
                    if prev_in is not None and prev_out is None:
                        prev_out = self.store.load_frame(index - 1)  # finished, not decoded
                    out = self._render(
                        index, content, digest, prev_in, prev_out, done + rendered, saver, ff
                    )
                    rendered += 1
                prev_in, prev_out = content, out
        return rendered

    def stale_frames(self) -> list[int]:
        """Finished frames whose input frame changed since (its digest differs from the one
        recorded), and every frame that depends on them.

        A frame depends on its predecessor's output (warm start, temporal target), and whether
        it is a scene cut depends on its own and its predecessor's input; a cut frame starts
        from its content alone, so the chain of dependants ends before the first cut (or
        independently rendered frame) at least two frames after the changed one.
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
            _close(frames)
        return stale

    def _contents(self, read_from: int) -> Iterator[tuple[int, str, np.ndarray]]:
        """(index, digest of the decoded frame, frame at the render's size) from `read_from`."""
        stop = self.indices.stop
        frames = self.source.frames(read_from, stop - read_from)
        try:
            for index, raw in zip(range(read_from, stop), frames, strict=False):
                yield index, frame_digest(raw), resize_long_side(raw, self.long_side)
        finally:
            _close(frames)

    def _inputs(
        self, read_from: int
    ) -> Iterator[tuple[int, np.ndarray, tuple[str, flow.FrameFlow | None]]]:
        """Frames with their digest and the flow from their predecessor (for frames still to
        render)."""
        prev: np.ndarray | None = None
        for index, digest, content in self._contents(read_from):
            ff = None
            wanted = self.video.init == "flow" and not self.store.has_frame(index)
            if prev is not None and wanted:
                ff = flow.frame_flow(prev, content, self.video.flow)
            yield index, content, (digest, ff)
            prev = content

    def _next_starts_from(self, index: int) -> bool:
        """Whether the frame after finished frame `index` is still to render, and so starts
        from its output (a finished frame is decoded only then)."""
        return index + 1 < self.indices.stop and not self.store.has_frame(index + 1)

    def _render(
        self,
        index: int,
        content: np.ndarray,
        digest: str,
        prev_in: np.ndarray | None,
        prev_out: np.ndarray | None,
        done: int,
        saver: FrameSaver,
        ff: flow.FrameFlow | None = None,
    ) -> np.ndarray:
        start = frame_start(content, prev_in, prev_out, self.video, ff)
        total = len(self.indices)
        self.callback(FrameStarted(index, done, total, start.init, start.budget))
        began = time.perf_counter()
        stylized = self.engine.stylize(
            content, start.image, start.budget, start.temporal, self.callback
        )
        seconds = time.perf_counter() - began
        stats = {**build_stats(index, start, stylized, seconds), "input": digest}
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
            )
        )
        return stylized.image


def _close(frames: Iterator[Any]) -> None:
    close = getattr(frames, "close", None)
    if close is not None:
        close()  # ends a decoder subprocess when we stop early


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
            _close(items)

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
