"""Work a sweep hands to other threads (saving finished frames, reading the next ones ahead),
and the signals that stop it."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from queue import Full, Queue
from types import TracebackType
from typing import Any

import numpy as np

from nst_video.errors import Interrupted
from nst_video.workdir.store import FrameStore


def close_frames(frames: Iterator[Any]) -> None:
    close = getattr(frames, "close", None)
    if close is not None:
        close()  # ends a decoder subprocess when we stop early


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
