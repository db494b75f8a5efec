"""Ruder et al.'s multi-pass algorithm (IJCV 2018, section 4.4): `--passes N` sweeps over the
clip N times, alternating direction (pass 1 forward, 2 backward, 3 forward, ...).

Pass 1 is the single-pass render (sweep.FirstPass): each frame starts from the flow-warped previous
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

import contextlib
from collections.abc import Callable

from nst_video.config import VideoConfig
from nst_video.core.engine import Engine
from nst_video.errors import plural
from nst_video.media import FrameSource
from nst_video.pipeline.start import NeighbourTarget, pass_neighbour
from nst_video.pipeline.sweep import (
    FirstPass,
    LaterPass,
    decoded,
    direction,
    drop_changed,
    pass_stats,
)
from nst_video.progress import Callback, Message, ignore
from nst_video.workdir.store import FrameStore

# Pass number -> its frame store (WorkDir.pass_frames, or a segment's segment_pass_frames).
PassStores = Callable[[int], FrameStore]


def render_passes(
    engine: Engine,
    video: VideoConfig,
    source: FrameSource,
    stores: PassStores,
    indices: range,
    long_side: int,
    callback: Callback = ignore,
    target: NeighbourTarget = pass_neighbour,
) -> int:
    """Render (or continue) every pass of `indices`; returns the frames rendered now.

    With --passes 1 this is the single-pass sweep on the render's frames, unchanged.
    """
    passes = video.passes
    if passes == 1:
        return FirstPass(engine, video, source, stores(1), indices, long_side, callback).run()
    first = resume_point(source, stores, indices, passes, callback)
    rendered = 0
    for number in range(first, passes + 1):
        store = stores(number)
        if number < passes:
            store.remove_temporaries()  # its folder is written by this render alone
        way = "forward" if direction(number) > 0 else "backward"
        callback(Message(f"pass {number} of {passes} ({way})"))
        if number == 1:
            stats = pass_stats(1, indices)
            first_pass = FirstPass(
                engine, video, source, store, indices, long_side, callback, stats
            )
            rendered += first_pass.run()
            continue
        previous = stores(number - 1)
        sweep = LaterPass(
            engine, video, source, previous, store, indices, number, long_side, callback, target
        )
        rendered += sweep.run()
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
            store.drop_all(indices)
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
    with contextlib.closing(decoded(source, range(indices.start, max(stats) + 1))) as frames:
        for index, digest, _raw in frames:
            if any(s.get("input") != digest for s in stats.get(index, ())):
                return "input frames changed since frames were rendered"
    return None
