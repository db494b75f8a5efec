"""The frame loop: stream frames, warm-start each from the flow-warped previous output, and
save each finished frame to the work directory. Resumable at any instant."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from queue import Full, Queue
from types import TracebackType
from typing import Any

import numpy as np

from nst_video import flow
from nst_video.checkpoint import WorkDir
from nst_video.config import VideoConfig
from nst_video.engine import Engine, Stylized, Temporal
from nst_video.errors import Interrupted
from nst_video.frames import FrameSource
from nst_video.frames.images import resize_long_side
from nst_video.progress import Callback, FrameDone, FrameStarted, Message, ignore

# --- per-frame logic ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FramePlan:
    init: np.ndarray
    budget: int
    kind: str  # content | warped | previous | cut
    temporal: Temporal | None
    consistent: float | None


def plan_frame(
    content: np.ndarray,
    prev_in: np.ndarray | None,
    prev_out: np.ndarray | None,
    video: VideoConfig,
    ff: flow.FrameFlow | None = None,
) -> FramePlan:
    """How frame i starts: from its content, or from the previous output warped onto it.

    `ff` is the flow between the input frames when it was computed ahead (in the background).
    """
    if prev_out is None or prev_in is None:
        return FramePlan(content, video.first_iterations, "content", None, None)
    if video.init == "content":
        # Independent frames, for comparison: each gets the first frame's budget.
        return FramePlan(content, video.first_iterations, "content", None, None)
    ff = ff or flow.frame_flow(prev_in, content, video.flow)
    if flow.is_scene_cut(ff, video.scene_cut_threshold):
        return FramePlan(content, video.first_iterations, "cut", None, ff.consistent_fraction)
    warped = flow.warp(prev_out, ff.backward, video.warp_interpolation)
    # Disoccluded pixels have no valid history: they start from the content instead.
    init = np.where(ff.mask[..., None] > 0.5, warped, content)
    kind = "previous" if video.flow == "none" else "warped"
    return FramePlan(
        init, video.iterations, kind, Temporal(warped, ff.mask), ff.consistent_fraction
    )


def frame_stats(index: int, plan: FramePlan, done: Stylized, seconds: float) -> dict[str, Any]:
    result = done.result
    return {
        "frame": index,
        "init": plan.kind,
        "iterations": result.evaluations,
        "seconds": round(seconds, 4),
        "loss": result.loss,
        "stop": result.stop,
        "consistent": plan.consistent,
        **{k: result.terms.get(k) for k in ("content", "style", "temporal", "tv")},
    }


# --- the loop ----------------------------------------------------------------------------------


class FrameLoop:
    """Renders the frames of `indices` that the work directory lacks, in order."""

    def __init__(
        self,
        engine: Engine,
        source: FrameSource,
        work: WorkDir,
        indices: range,
        long_side: int,
        callback: Callback = ignore,
    ):
        self.engine, self.source, self.work = engine, source, work
        self.indices, self.long_side, self.callback = indices, long_side, callback
        self.video = engine.settings.video

    def run(self) -> int:
        """Returns the number of frames rendered now."""
        damaged = self.work.drop_damaged(self.indices)
        if damaged:
            self.callback(Message(f"rendering damaged frames again: {damaged}"))
        first = next((i for i in self.indices if not self.work.has_frame(i)), None)
        if first is None:
            return 0
        # A finished frame that no longer decodes cannot seed its successor: back up to it.
        while first > self.indices.start and self.work.load_frame(first - 1) is None:
            first -= 1
        done = len(self.work.done_frames(self.indices))
        if done:
            self.callback(Message(f"resuming: {done} of {len(self.indices)} frames already done"))
        read_from = max(first - 1, self.indices.start)
        prev_in: np.ndarray | None = None
        prev_out: np.ndarray | None = None
        rendered = 0
        with FrameSaver(self.work) as saver:
            for index, content, ff in prefetch(self._inputs(read_from)):
                out = self._finished(index)
                if out is None:
                    if prev_out is _SKIPPED:
                        prev_out = self.work.load_frame(index - 1)
                    out = self._render(
                        index, content, prev_in, prev_out, done + rendered, saver, ff
                    )
                    rendered += 1
                prev_in, prev_out = content, out
        return rendered

    def _contents(self, read_from: int) -> Iterator[tuple[int, np.ndarray]]:
        count = self.indices.stop - read_from
        frames = self.source.frames(read_from, count)
        try:
            for index, raw in zip(range(read_from, self.indices.stop), frames, strict=False):
                yield index, resize_long_side(raw, self.long_side)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()

    def _inputs(self, read_from: int) -> Iterator[tuple[int, np.ndarray, flow.FrameFlow | None]]:
        """Frames with the flow from their predecessor, for frames still to render."""
        prev: np.ndarray | None = None
        for index, content in self._contents(read_from):
            ff = None
            wanted = self.video.init == "flow" and not self.work.has_frame(index)
            if prev is not None and wanted:
                ff = flow.frame_flow(prev, content, self.video.flow)
            yield index, content, ff
            prev = content

    def _finished(self, index: int) -> np.ndarray | None:
        """A finished frame, decoded only when the next frame needs it as its warm start."""
        if not self.work.has_frame(index):
            return None
        next_needed = index + 1 < self.indices.stop and not self.work.has_frame(index + 1)
        if not next_needed:
            return _SKIPPED
        return self.work.load_frame(index)  # None if corrupt: rendered again

    def _render(
        self,
        index: int,
        content: np.ndarray,
        prev_in: np.ndarray | None,
        prev_out: np.ndarray | None,
        done: int,
        saver: FrameSaver,
        ff: flow.FrameFlow | None = None,
    ) -> np.ndarray:
        plan = plan_frame(content, prev_in, prev_out, self.video, ff)
        total = len(self.indices)
        self.callback(FrameStarted(index, done, total, plan.kind, plan.budget))
        start = time.perf_counter()
        result = self.engine.stylize(content, plan.init, plan.budget, plan.temporal, self.callback)
        seconds = time.perf_counter() - start
        stats = frame_stats(index, plan, result, seconds)
        saver.submit(index, result.image, stats)
        self.callback(
            FrameDone(
                index,
                done + 1,
                total,
                plan.kind,
                result.result.evaluations,
                seconds,
                dict(result.result.terms),
            )
        )
        return result.image


# A finished frame nobody needs decoded; loaded from disk only if a later frame asks for it.
_SKIPPED = np.zeros((0, 0, 3), np.uint8)


class FrameSaver:
    """Saves finished frames on one background thread, so the optimizer starts the next frame
    while the last one is PNG-encoded and fsynced instead of leaving the GPU idle.

    One save at a time: a kill loses at most the frame being written and the one being
    optimized, and at most one finished image waits in memory. A failed save is raised on the
    calling thread by the next `submit`, or on leaving the `with` block.
    """

    def __init__(self, work: WorkDir):
        self.work = work
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nst-save")
        self._pending: Future[None] | None = None

    def submit(self, index: int, image: np.ndarray, stats: dict[str, Any]) -> None:
        """Waits for the previous save, raising its error, then starts saving this frame."""
        error = self._finish()
        if error is not None:
            raise error
        self._pending = self._pool.submit(self.work.save_frame, index, image, stats)

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
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put(queue, exc, stop)
            return
        _put(queue, _END, stop)

    thread = threading.Thread(target=produce, name="nst-prefetch", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
        close = getattr(items, "close", None)
        if close is not None and not thread.is_alive():
            close()  # ends the decoder subprocess when we stop early


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
