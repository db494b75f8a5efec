"""One render job, from the command to the encoded output: validate, prepare the work
directory, render the frames (here or on Ray), write the report, encode."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from nst_video.checkpoint import (
    Job,
    WorkDir,
    atomic_write_bytes,
    differing,
    file_digest,
    fingerprint,
    job_to_dict,
    result_hash,
)
from nst_video.config import VideoConfig
from nst_video.engine import Engine, check_frame_size, validate_settings
from nst_video.errors import OptionError, OutputError, ResumeError, plural
from nst_video.frames import FrameSource, open_source, open_writer
from nst_video.frames.images import resize_long_side
from nst_video.frames.writers import VIDEO_EXTENSIONS
from nst_video.paths import check_inputs, check_writable_parent
from nst_video.progress import Callback, Message, ignore
from nst_video.render import FrameLoop, interruptible
from nst_video.segments import final_frames
from nst_video.vgg import weights_source

EngineFactory = Callable[[Job], Engine]


def default_work_dir(output: str | Path) -> Path:
    """OUTPUT.nst-work beside the output (for `out/` frames: `out.nst-work`)."""
    path = Path(str(output).rstrip("/\\") or ".")
    return path.with_name(path.name + ".nst-work")


def output_is_directory(output: str) -> bool:
    return output.endswith(("/", "\\")) or Path(output).is_dir()


def render_range(source: FrameSource, video: VideoConfig) -> range:
    stop = source.frame_count
    if video.frames is not None:
        stop = min(stop, video.start + video.frames)
    if video.start >= source.frame_count:
        raise ResumeError(
            f"--start {video.start} is past the clip's last frame ({source.frame_count - 1})"
        )
    return range(video.start, stop)


def output_long_side(source: FrameSource, size: int | None) -> int:
    """--size, or the source's long side capped at 512 so a default render stays tractable."""
    return size if size is not None else min(max(source.size), 512)


def weights_id(weights: str | None, model: str) -> str:
    source = weights_source(weights, model)
    if isinstance(source, Path):
        return "sha256:" + file_digest(source)
    return source


def source_info(source: FrameSource) -> dict[str, Any]:
    return {
        "path": str(Path(source.path).resolve()) if "%" not in source.path else source.path,
        "frames": source.frame_count,
        "size": list(source.size),
        "fps": f"{source.fps.numerator}/{source.fps.denominator}",
    }


@dataclass(frozen=True)
class RenderResult:
    work_dir: Path
    output: str
    rendered: int
    total: int


def check_output(output: str, overwrite: bool, work: WorkDir) -> None:
    """Refuse early (before hours of work) to overwrite an output this render did not make."""
    if not output_is_directory(output):
        if Path(output).suffix.lower() not in VIDEO_EXTENSIONS:
            raise OptionError(
                f"unsupported output {output!r}; use one of {', '.join(VIDEO_EXTENSIONS)}, "
                "or end the path with '/' for a directory of PNG frames"
            )
        check_writable_parent(Path(output))
    ours = work.exists() and owns_output(work.read_manifest(), output)
    target = Path(output)
    occupied = target.exists() and (not target.is_dir() or any(target.iterdir()))
    if occupied and not overwrite and not ours:
        raise OutputError(f"{output} exists; pass --overwrite to replace it")


def owns_output(manifest: dict[str, Any], output: str) -> bool:
    """Whether this work directory's encode wrote (or began writing) the file at `output`."""
    return manifest.get("owned_output") == os.path.abspath(output)


def prepare_work_dir(
    job: Job, work: WorkDir, source: FrameSource, restart: bool, callback: Callback
) -> dict[str, Any]:
    """Create or validate the work directory; refuse to mix frames of different settings."""
    new = fingerprint(job, source_info(source), weights_id(job.weights, job.settings.loss.model))
    manifest: dict[str, Any] = {}
    if work.exists():
        manifest = work.read_manifest()
        changes = differing(manifest.get("fingerprint", {}), new)
        if changes and not restart:
            done = len(list(work.frames_dir.glob("*.png")))
            raise ResumeError(
                f"{work.path} holds {plural(done, 'frame')} rendered with other settings: "
                f"{'; '.join(changes)}; run with the old settings to continue, or pass "
                "--restart to discard them"
            )
        if restart:
            callback(Message(f"--restart: discarded {plural(work.discard_frames(), 'frame')}"))
        work.remove_temporaries()
    manifest.update(
        fingerprint=new, result_hash=result_hash(new), job=job_to_dict(job), encode="pending"
    )
    work.write_manifest(manifest)
    return manifest


def encode(work: WorkDir, overwrite: bool, callback: Callback = ignore) -> str:
    """Write the output from the finished frames. Idempotent: safe to re-run after a crash."""
    manifest = work.read_manifest()
    job, plan = manifest["job"], manifest["plan"]
    indices = range(plan["start"], plan["stop"])
    missing = [i for i in indices if not work.has_frame(i)]
    if missing:
        raise ResumeError(
            f"{plural(len(missing), 'frame')} not rendered yet (first: {missing[0]}); "
            f"run: nst-video resume {work.path}"
        )
    # Once an encode of ours started, a file at the output path is ours to replace. The claim is
    # kept apart from "encode" (reset to pending by every run) and names the path, so a later
    # run with another -o never takes someone else's file for ours.
    ours = owns_output(manifest, job["output"])
    callback(Message(f"encoding {plural(len(indices), 'frame')} to {job['output']}"))
    video = job["settings"]["video"]
    writer = open_writer(
        job["output"],
        tuple(plan["size"]),
        Fraction(plan["fps"]),
        overwrite=overwrite or ours,
        **_writer_options(job, plan, video),
    )
    with writer:
        # Claimed only after the writer accepted the path: it refuses a file that is not ours.
        manifest.update(encode="started", owned_output=os.path.abspath(job["output"]))
        work.write_manifest(manifest)
        for frame in final_frames(work, indices, plan.get("segments")):
            writer.write(frame)
    work.write_manifest({**work.read_manifest(), "encode": "done"})
    return job["output"]


def _writer_options(
    job: dict[str, Any], plan: dict[str, Any], video: dict[str, Any]
) -> dict[str, Any]:
    if output_is_directory(job["output"]):
        return {"start_index": plan["start"]}
    options: dict[str, Any] = {"crf": video["crf"]}
    if video["codec"]:
        options["codec"] = video["codec"]
    if video["audio"] and plan["has_audio"]:
        fps = Fraction(plan["fps"])
        options.update(
            audio_from=job["input"],
            audio_start=float(plan["start"] / fps),
            audio_duration=float((plan["stop"] - plan["start"]) / fps),
        )
    return options


@dataclass(frozen=True)
class Parallel:
    """How many segments render at once, and where (None: a local Ray instance)."""

    workers: int = 1
    address: str | None = None

    @property
    def enabled(self) -> bool:
        return self.workers > 1 or self.address is not None

    def validate(self) -> None:
        if self.workers < 1:
            raise OptionError(f"--workers must be >= 1, got {self.workers}")
        if self.address is not None and self.workers < 2:
            raise OptionError(
                "--ray-address needs --workers N (N >= 2): the number of segments "
                "to render in parallel"
            )


def render_video(
    job: Job,
    work_dir: Path | None,
    make_engine: EngineFactory,
    *,
    overwrite: bool = False,
    restart: bool = False,
    callback: Callback = ignore,
    parallel: Parallel = Parallel(),
) -> RenderResult:
    """Render (or continue) the whole job, then encode. Raises Interrupted on SIGINT/SIGTERM."""
    video = job.settings.video
    video.validate()
    parallel.validate()
    # Workers on a cluster may have GPUs the driver lacks: there they check the device.
    validate_settings(job.settings, len(job.styles), check_device=parallel.address is None)
    check_inputs(job.styles, job.weights)
    if parallel.enabled:
        from nst_video.distributed import require_ray

        require_ray()  # before any work: one line that says how to install it
    work = WorkDir(work_dir or default_work_dir(job.output))
    check_output(job.output, overwrite, work)
    source = open_source(job.input, video.fps)
    indices = render_range(source, video)
    long_side = output_long_side(source, job.settings.image.size)
    uses_flow = video.init == "flow" and video.flow != "none"
    loss = job.settings.loss
    layers = loss.content_layers + loss.style_layers
    height_width = (source.size[1], source.size[0])
    check_frame_size(
        height_width, long_side, layers, job.settings.image.scales, "the frames", uses_flow
    )
    with interruptible():
        manifest = prepare_work_dir(job, work, source, restart, callback)
        segments = segment_plan(manifest, work, source, indices, video, parallel, callback)
        work.write_manifest({**manifest, "plan": frame_plan(source, indices, long_side, segments)})
        before = len(work.done_frames(indices))
        if segments:
            from nst_video.distributed import render_segments

            render_segments(
                job, work, segments, long_side, parallel.workers, parallel.address, callback
            )
        else:
            FrameLoop(make_engine(job), source, work, indices, long_side, callback).run()
        rendered = len(work.done_frames(indices)) - before
        write_report(work, indices, job.report)
        output = encode(work, overwrite, callback)
    return RenderResult(work.path, output, rendered, len(indices))


def frame_plan(
    source: FrameSource, indices: range, long_side: int, segments: list[Any] | None
) -> dict[str, Any]:
    h, w = resize_long_side(
        np.zeros((source.size[1], source.size[0], 3), np.uint8), long_side
    ).shape[:2]
    return {
        "start": indices.start,
        "stop": indices.stop,
        "size": [w, h],
        "fps": f"{source.fps.numerator}/{source.fps.denominator}",
        "has_audio": source.has_audio,
        "segments": [s.as_dict() for s in segments] if segments else None,
    }


def segment_plan(
    manifest: dict[str, Any],
    work: WorkDir,
    source: FrameSource,
    indices: range,
    video: VideoConfig,
    parallel: Parallel,
    callback: Callback,
) -> list[Any] | None:
    """The stored segment plan when frames were already rendered with it, else a new one."""
    from nst_video.segments import Segment, plan_segments

    old = (manifest.get("plan") or {}).get("segments")
    started = bool(work.done_frames(indices))
    if started and old:
        return [Segment(**data) for data in old]
    if started and parallel.enabled:
        callback(
            Message(
                "this render began on one worker and continues that way; pass "
                "--restart to split it into segments"
            )
        )
        return None
    # Warm-up frames of an abandoned plan would seed the wrong chains.
    shutil.rmtree(work.path / "segments", ignore_errors=True)
    if not parallel.enabled:
        return None
    from nst_video.distributed import detect_cuts

    cuts = detect_cuts(source, indices, video.flow, video.scene_cut_threshold)
    return plan_segments(indices, parallel.workers, cuts, video.segment_warmup)


def write_report(work: WorkDir, indices: range, report: str | None) -> None:
    """One JSON object per frame, gathered from the per-frame statistics in the work dir."""
    if not report:
        return
    lines = [json.dumps(work.frame_stats(i), sort_keys=True) for i in indices]
    atomic_write_bytes(Path(report), ("\n".join(lines) + "\n").encode())
