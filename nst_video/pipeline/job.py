"""One render job, from the command to the encoded output: validate, prepare the work
directory, render the frames (here or on Ray), write the report, encode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nst_video.config import check_segment_warmup, video_long_side
from nst_video.core.device import pick_device, render_threads, resolve_precision, use_threads
from nst_video.core.engine import check_frame_size, validate_settings
from nst_video.core.weights import locate_weights
from nst_video.errors import OptionError
from nst_video.media.paths import check_inputs
from nst_video.pipeline.background import interruptible
from nst_video.pipeline.distributed import render_segments, require_ray
from nst_video.pipeline.encode import encode, write_report
from nst_video.pipeline.passes import render_passes
from nst_video.pipeline.preflight import (
    Parallel,
    choose_segments,
    default_work_dir,
    job_fingerprint,
    load_manifest,
    open_checked_source,
    preflight_engine,
    prepare_work_dir,
    render_plan,
    render_range,
    report_wrong_size,
    with_precision,
)
from nst_video.pipeline.styling import check_styling, guided_source, styles_of
from nst_video.pipeline.sweep import EngineFactory
from nst_video.progress import IMAGE, Callback, Event, FrameDone, Message, asking, ignore
from nst_video.video import flow
from nst_video.workdir.manifest import (
    Job,
    Manifest,
    result_hash,
)
from nst_video.workdir.store import WorkDir


@dataclass(frozen=True)
class RenderResult:
    work_dir: Path
    output: str
    rendered: int
    total: int


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
    if parallel.enabled:
        check_segment_warmup(video)
    # Workers on a cluster may have GPUs the driver lacks: there they check the device.
    validate_settings(job.settings, len(job.styles), check_device=parallel.address is None)
    check_styling(video, len(job.styles), job.settings.image.style_blend)
    if list(job.styles) != styles_of(video, job.styles):
        raise OptionError(
            "--style cannot be combined with --style-at: the schedule names its style images"
        )
    check_inputs(job.styles, job.weights)
    if parallel.enabled:
        require_ray()  # before any work: one line that says how to install it
    work = WorkDir(work_dir or default_work_dir(job.output))
    source = open_checked_source(job, work, overwrite, restart)
    indices = render_range(source, video)
    long_side = video_long_side(job.settings.image.size, max(source.size))
    loss = job.settings.loss
    layers = loss.content_layers + loss.style_layers
    height_width = (source.size[1], source.size[0])
    flow_need = flow.size_need(video.init, video.flow)
    check_frame_size(height_width, long_side, layers, job.settings.image, "the frames", flow_need)
    # Masks opened and checked (size, frame count) and the schedule resolved, before any work.
    guided = guided_source(source, video, indices)
    if source.warning:
        callback(Message(f"warning: {source.warning}"))
    # A cluster's workers may have devices the driver lacks: there each resolves `auto` itself.
    compute = job.settings.compute
    here = (
        None
        if parallel.address
        else resolve_precision(compute.precision, pick_device(compute.device))
    )
    # Styles decoded, weights read (or downloaded) and tried, before the work directory is
    # made: a first attempt that fails here leaves nothing that would refuse the fixed rerun.
    # Fetched first if need be (one line says so): the fingerprint names its content hash.
    weights = locate_weights(job.weights, job.settings.loss.model, callback)
    stored = load_manifest(work, restart)
    precision = stored.precision if stored and stored.precision and not restart else here
    engine = preflight_engine(job, parallel, make_engine, precision)
    threads = None if parallel.address else render_threads(parallel.workers)
    new = job_fingerprint(job, source, weights)
    with interruptible():
        # A new or empty directory becomes ours when its manifest is written: before the lock
        # file or anything else, so a directory never holds our files without it.
        claimed = work.claim(Manifest(job, new, result_hash(new), precision=here, threads=threads))
    with interruptible(), work.lock():
        restart = restart and not claimed  # nothing to discard in a directory claimed now
        manifest = prepare_work_dir(job, work, source, restart, callback, here, threads, weights)
        job = with_precision(job, manifest.precision)
        if engine is not None and manifest.precision != precision:
            engine = make_engine(job)  # a re-planned work directory: this machine's precision
        use_threads(manifest.threads)
        segments = choose_segments(manifest, work, source, indices, video, parallel, callback)
        manifest.plan = render_plan(source, indices, long_side, segments)
        work.write_manifest(manifest)
        callback = latest_frame(work, callback)
        report_wrong_size(work, manifest.plan.size, callback)
        if segments:
            before = len(work.frames.done_frames(indices))
            render_segments(
                job,
                work,
                segments,
                long_side,
                parallel.workers,
                parallel.address,
                callback,
                make_engine,
                manifest.threads,
            )
            rendered = len(work.frames.done_frames(indices)) - before
        else:
            passes = video.passes
            if engine is None:  # --workers given, but the render began on one: continues so
                engine = make_engine(job)
            rendered = render_passes(
                engine,
                video,
                guided,
                lambda number: work.pass_frames(number, passes),
                indices,
                long_side,
                callback,
            )
        write_report(work, indices, job.report, overwrite)
        output = encode(work, overwrite, callback)
    return RenderResult(work.path, output, rendered, len(indices))


def latest_frame(work: WorkDir, callback: Callback) -> Callback:
    """`callback`, also replacing WORKDIR/latest.png (input | output) after each finished
    frame that carries its image (those rendered in this process)."""

    def forward(event: Event) -> None:
        callback(event)
        if isinstance(event, FrameDone) and event.image is not None and event.input is not None:
            work.save_latest(event.input, event.image)

    return asking(forward, IMAGE, like=callback)
