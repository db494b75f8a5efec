"""What `nst-video status` reports: frames done, speed, ETA, liveness, and each segment."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nst_video.video.segments import Segment
from nst_video.workdir.store import WORKER_FILE, FrameStore, WorkDir, read_json_object


def render_status(work: WorkDir) -> dict[str, Any]:
    """Frames done / total, mean seconds per frame over the finished frames, ETA; with
    --passes N also the pass under way ("done" and "total" count the final frames)."""
    manifest = work.manifest()
    plan = manifest.require_plan(work.path)
    indices = plan.indices
    passes = manifest.job.settings.video.passes
    done = work.frames.done_frames(indices)
    # Segments run their own passes: each segment's row says which.
    progress = None if plan.segments else pass_status(work, indices, passes)
    number = progress["number"] if progress else passes
    store = work.pass_frames(number, passes)
    in_pass = store.done_frames(indices)
    seconds = [t for i in in_pass if (t := _seconds(store.read_stats(i))) is not None]
    per_frame = sum(seconds) / len(seconds) if seconds else None
    # The passes after this one, at this pass's speed (later passes cost about the same).
    remaining = len(indices) - len(in_pass) + (passes - number) * len(indices)
    owner = work.owner()
    return {
        "work_dir": str(work.path),
        "running": owner is not None,
        "owner": owner,
        "output": manifest.job.output,
        "done": len(done),
        "total": len(indices),
        "seconds_per_frame": per_frame or 0.0,
        "eta_seconds": None if per_frame is None else remaining * per_frame,
        "encode": manifest.encode,
        "result_hash": manifest.result_hash,
        "segments": segment_status(work, plan.segments, passes) if plan.segments else None,
        "pass": progress,
    }


def pass_status(work: WorkDir, indices: range, passes: int) -> dict[str, int] | None:
    """The pass under way (the latest begun, or the next once it is complete) and its frames
    done; None for a single-pass render."""
    if passes == 1:
        return None
    return _pass_progress([work.pass_frames(n, passes) for n in range(1, passes + 1)], indices)


def _pass_progress(stores: Sequence[FrameStore], indices: range) -> dict[str, int]:
    counts = [len(store.done_frames(indices)) for store in stores]
    number = max((n for n, count in enumerate(counts, 1) if count), default=1)
    if counts[number - 1] == len(indices) and number < len(stores):
        number += 1
    return {"number": number, "of": len(stores), "done": counts[number - 1], "total": len(indices)}


def segment_status(
    work: WorkDir, segments: Sequence[Segment], passes: int = 1
) -> list[dict[str, Any]]:
    """Per-segment progress: frames done of those it owns, and the worker that rendered it."""
    rows = []
    for segment in segments:
        owned = range(segment.start, segment.stop)
        worker = work.segment_dir(segment.index) / WORKER_FILE
        stores = [work.segment_pass_frames(segment, n, passes) for n in range(1, passes + 1)]
        rows.append(
            {
                **segment.as_dict(),
                "done": len(work.frames.done_frames(owned)),
                "total": len(owned),
                "worker": _worker(worker),
                "pass": _pass_progress(stores, segment.frames) if passes > 1 else None,
            }
        )
    return rows


def _seconds(stats: dict[str, Any] | None) -> float | None:
    """A frame's render time from its statistics; None when missing or not a number (a
    damaged file costs the average one sample, not the whole status)."""
    value = (stats or {}).get("seconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _worker(path: Path) -> dict[str, Any] | None:
    """segments/K/worker.json, when readable and of the shape a worker writes."""
    worker = read_json_object(path)
    if worker is None or not isinstance(worker.get("pid"), int):
        return None
    return {"pid": worker["pid"], "host": str(worker.get("host", "?"))}
