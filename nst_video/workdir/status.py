"""What `nst-video status` reports: frames done, speed, ETA, liveness, and each segment."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from nst_video.errors import ResumeError
from nst_video.video.segments import Segment
from nst_video.workdir.store import WorkDir


def render_status(work: WorkDir) -> dict[str, Any]:
    """Frames done / total, mean seconds per frame over the finished frames, ETA."""
    manifest = work.read_manifest()
    plan = manifest.get("plan")
    if plan is None:
        raise ResumeError(f"{work.path} has no frame plan yet; the render never started")
    indices = range(plan["start"], plan["stop"])
    done = work.done_frames(indices)
    seconds = [s["seconds"] for i in done if (s := work.frame_stats(i))]
    per_frame = sum(seconds) / len(seconds) if seconds else None
    remaining = len(indices) - len(done)
    owner = work.owner()
    return {
        "work_dir": str(work.path),
        "running": owner is not None,
        "owner": owner,
        "output": manifest["job"].get("output"),
        "done": len(done),
        "total": len(indices),
        "seconds_per_frame": per_frame or 0.0,
        "eta_seconds": None if per_frame is None else remaining * per_frame,
        "encode": manifest.get("encode", "pending"),
        "result_hash": manifest.get("result_hash"),
        "segments": _segments_status(work, plan.get("segments")),
    }


def _segments_status(work: WorkDir, segments: list[dict[str, int]] | None) -> list[Any] | None:
    if not segments:
        return None
    return segment_status(work, segments)


def segment_status(work: WorkDir, segments: Sequence[dict[str, int]]) -> list[dict[str, Any]]:
    """Per-segment progress: frames done of those it owns, and the worker that rendered it."""
    rows = []
    for data in segments:
        segment = Segment(**data)
        owned = range(segment.start, segment.stop)
        worker = work.segment_dir(segment.index) / "worker.json"
        rows.append(
            {
                **data,
                "done": len(work.done_frames(owned)),
                "total": len(owned),
                "worker": json.loads(worker.read_text()) if worker.is_file() else None,
            }
        )
    return rows
