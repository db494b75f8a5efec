"""The frame loop: stream frames, warm-start each from the flow-warped previous output, and
save each finished frame to the work directory. Resumable at any instant."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from nst_video.core.engine import Engine, Stylized
from nst_video.errors import plural
from nst_video.media import FrameSource
from nst_video.pipeline.background import FrameSaver, close_frames, prefetch
from nst_video.pipeline.start import INDEPENDENT, Earlier, FrameStart, Window, temporal_start
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
            for index, content, (digest, flows) in prefetch(self._inputs(read_from)):
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
                        index, content, digest, earlier, done + rendered, saver, flows
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
    ) -> Iterator[tuple[int, np.ndarray, tuple[str, dict[int, flow.FrameFlow]]]]:
        """Frames with their digest and, for frames still to render, the flows from the
        earlier frames at each temporal offset, computed directly between the input frames
        (composing adjacent flows drifts). Holds only the inputs the largest offset needs."""
        recent: deque[tuple[int, np.ndarray]] = deque(maxlen=self.depth)
        offsets = self.video.temporal_offsets
        for index, digest, content in self._contents(read_from):
            flows: dict[int, flow.FrameFlow] = {}
            if self.video.init == "flow" and not self.store.has_frame(index):
                for earlier, frame in recent:
                    if index - earlier in offsets:
                        flows[index - earlier] = flow.frame_flow(frame, content, self.video.flow)
            yield index, content, (digest, flows)
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
    ) -> tuple[np.ndarray, bool]:
        """Renders one frame; returns its output and whether it started from its content."""
        start = temporal_start(content, earlier, self.video, flows)
        total = len(self.indices)
        later = self.video.iterations
        self.callback(FrameStarted(index, done, total, start.init, start.budget, later))
        began = time.perf_counter()
        stylized = self.engine.stylize(
            content, start.image, start.budget, start.temporal, self.callback
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


def read_contents(
    source: FrameSource, indices: range, long_side: int
) -> Iterator[tuple[int, str, np.ndarray]]:
    """(index, digest of the decoded frame, frame at the render's size) for `indices`, in order."""
    frames = source.frames(indices.start, len(indices))
    try:
        for index, raw in zip(indices, frames, strict=False):
            yield index, frame_digest(raw), resize_long_side(raw, long_side)
    finally:
        close_frames(frames)


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
