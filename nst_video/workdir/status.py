"""What `nst-video status` reports: frames done, speed, ETA, liveness, and each segment."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from nst_video.video.segments import Segment
from nst_video.workdir.store import WORKER_FILE, WorkDir


def render_status(work: WorkDir) -> dict[str, Any]:
    """Frames done / total, mean seconds per frame over the finished frames, ETA."""
    manifest = work.manifest()
    plan = manifest.require_plan(work.path)
    indices = plan.indices
    done = work.frames.done_frames(indices)
    seconds = [s["seconds"] for i in done if (s := work.frames.read_stats(i))]
    per_frame = sum(seconds) / len(seconds) if seconds else None
    remaining = len(indices) - len(done)
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
        "segments": segment_status(work, plan.segments) if plan.segments else None,
    }


def segment_status(work: WorkDir, segments: Sequence[Segment]) -> list[dict[str, Any]]:
    """Per-segment progress: frames done of those it owns, and the worker that rendered it."""
    rows = []
    for segment in segments:
        owned = range(segment.start, segment.stop)
        worker = work.segment_dir(segment.index) / WORKER_FILE
        rows.append(
            {
                **segment.as_dict(),
                "done": len(work.frames.done_frames(owned)),
                "total": len(owned),
                "worker": json.loads(worker.read_text()) if worker.is_file() else None,
            }
        )
    return rows
