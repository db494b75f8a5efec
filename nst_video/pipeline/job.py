"""One render job, from the command to the encoded output: validate, prepare the work
directory, render the frames (here or on Ray), write the report, encode."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nst_video.config import VideoConfig, check_segment_warmup, video_long_side
from nst_video.core.device import pick_device, render_threads, resolve_precision, use_threads
from nst_video.core.engine import Engine, check_frame_size, validate_settings
from nst_video.core.weights import WeightsFile, locate_weights
from nst_video.errors import OptionError, OutputError, ResumeError, plural
from nst_video.media import FrameSource, open_source, open_writer
from nst_video.media.ffmpeg import rate_text
from nst_video.media.files import (
    atomic_write_bytes,
    bytes_signature,
    check_name_fits,
    file_signature,
    is_temporary,
    is_within,
    refuse_existing,
    require_regular,
    same_file,
    temporary_name,
)
from nst_video.media.images import encode_image
from nst_video.media.paths import check_inputs, check_not_inputs, check_writable_parent
from nst_video.media.writers import (
    OUTPUT_FRAME,
    OUTPUT_FRAME_NAME,
    check_encoder,
    check_video_output,
    is_directory_output,
)
from nst_video.models import chosen_weights
from nst_video.pipeline.distributed import render_segments, require_ray
from nst_video.pipeline.passes import render_passes
from nst_video.pipeline.render import EngineFactory, interruptible
from nst_video.pipeline.segments import final_frames
from nst_video.pipeline.styling import check_styling, guided_source, styles_of
from nst_video.progress import IMAGE, Callback, Event, FrameDone, Message, asking, ignore
from nst_video.video.cuts import detect_cuts
from nst_video.video.resize import scaled_shape
from nst_video.video.segments import Segment, fit_segments, plan_segments
from nst_video.workdir.manifest import (
    Job,
    Manifest,
    Plan,
    differing,
    fingerprint,
    result_hash,
    upgraded,
)
from nst_video.workdir.store import WorkDir


def default_work_dir(output: str | Path) -> Path:
    """OUTPUT.nst-work beside the output (for `out/` frames: `out.nst-work`)."""
    path = Path(str(output).rstrip("/\\") or ".")
    return path.with_name(path.name + ".nst-work")


def render_range(source: FrameSource, video: VideoConfig) -> range:
    stop = source.frame_count
    if video.frames is not None:
        stop = min(stop, video.start + video.frames)
    if video.start >= source.frame_count:
        raise ResumeError(
            f"--start {video.start} is past the clip's last frame ({source.frame_count - 1})"
        )
    return range(video.start, stop)


def source_info(source: FrameSource) -> dict[str, Any]:
    """What identifies the input in the fingerprint. Not its frame count: every finished frame
    records a digest of its input frame, so a sequence that grew still reuses its frames."""
    return {
        "path": str(Path(source.path).resolve()) if "%" not in source.path else source.path,
        "size": list(source.size),
        "fps": rate_text(source.fps),
    }


@dataclass(frozen=True)
class RenderResult:
    work_dir: Path
    output: str
    rendered: int
    total: int


def open_work_dir(path: Path) -> WorkDir:
    """The work directory at `path`; given an output path instead, say where its work is."""
    work = WorkDir(path)
    guess = default_work_dir(path)
    if not work.exists() and WorkDir(guess).exists():
        raise ResumeError(
            f"{path} is not a render work directory (no manifest.json); "
            f"its work directory is {guess}"
        )
    return work


def input_files(source: FrameSource) -> list[Path]:
    """The files a source reads: the video file, or every image of a sequence."""
    files = getattr(source, "files", None)
    return list(files) if files is not None else [Path(source.path)]


def check_paths(job: Job, work: WorkDir, source: FrameSource) -> None:
    """No output or report may be an input (video, frames, styles, weights) or each other, and
    none may lie inside the work directory: refused always, even with --overwrite."""
    frames = input_files(source)
    weights = chosen_weights(job.weights)
    inputs = [*frames, *map(Path, job.styles), *([weights] if weights else [])]
    check_not_inputs({"output": job.output}, inputs)
    check_not_inputs({"--report": job.report}, inputs)
    if is_directory_output(job.output):
        # Not the folder the input frames are in either: our frames would join them.
        check_not_inputs({"output directory": job.output}, sorted({f.parent for f in frames}))
    elif job.report is not None and same_file(job.report, job.output):
        raise OutputError(f"--report {job.report} is the output; choose another path")
    inside = [("input", f) for f in sorted({f.parent for f in frames})]
    inside += [("output", job.output), ("--report", job.report)]
    for what, path in inside:
        if path is not None and is_within(path, work.path):
            raise _inside(work, what, path)


def _inside(work: WorkDir, what: str, path: str | Path) -> OutputError:
    return OutputError(
        f"{what} {path} is inside the work directory {work.path}; choose another --work-dir"
    )


def load_manifest(work: WorkDir, restart: bool) -> Manifest | None:
    """The work directory's manifest, or None for a new one; --restart also accepts an older
    manifest layout (the directory is ours, its frames are discarded anyway)."""
    return work.read_manifest(allow_old=restart) if work.exists() else None


def _ours(manifest: Manifest | None, path: str | Path) -> bool:
    return manifest is not None and manifest.owns(path)


def check_output(output: str, overwrite: bool, manifest: Manifest | None, start: int = 0) -> None:
    """Refuse early (before hours of work) to overwrite an output this render did not make
    (in a frame folder: the numbered frames from `start` on, which it replaces or removes)."""
    check_video_output(output)
    if not is_directory_output(output):
        check_writable_parent(Path(output))
        check_replaceable(Path(output), overwrite, manifest)
        return
    target = Path(output)
    if os.path.lexists(target) and not target.is_dir():
        require_regular(target)  # a FIFO or a device: named as such
        raise OutputError(f"{target} is a file; a directory output needs a directory")
    for frame in numbered_frames(target):
        require_regular(frame)  # refused before any work, not when the encoder reaches it
    touched = [p for p in numbered_frames(target) if _frame_number(p) >= start]
    foreign = [p for p in touched if not _ours(manifest, p)]
    if foreign and not overwrite:
        raise _foreign_frames(target, foreign)


def check_replaceable(path: Path, overwrite: bool, manifest: Manifest | None) -> None:
    """A file may be replaced when it is byte for byte one we wrote there, or with
    --overwrite; anything else at the path stays (refuse_existing: never a non-regular file)."""
    refuse_existing(path, overwrite or _ours(manifest, path))


def numbered_frames(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if OUTPUT_FRAME.match(p.name))


def _foreign_frames(directory: Path, foreign: list[Path]) -> OutputError:
    return OutputError(
        f"{directory} holds {len(foreign)} numbered frames this render did not write "
        f"(first: {foreign[0].name}); pass --overwrite to replace them (other files there "
        "are never touched)"
    )


def job_fingerprint(job: Job, source: FrameSource, weights: WeightsFile) -> dict[str, Any]:
    # The weights are identified by their content hash (located, or fetched, by the caller).
    return fingerprint(job, source_info(source), weights.identity)


def prepare_work_dir(
    job: Job,
    work: WorkDir,
    source: FrameSource,
    restart: bool,
    callback: Callback,
    precision: str | None = None,
    threads: int | None = None,
    weights: WeightsFile | None = None,
) -> Manifest:
    """Create or validate the work directory; refuse to mix frames of different settings.

    `precision` is what the job's precision resolves to on this machine: recorded when the
    render starts (or restarts), while a resume keeps the recorded one. The job's own precision
    (say `auto`) is what the fingerprint compares, so a machine where `auto` resolves otherwise
    continues the frames as they were begun rather than being refused. `weights`: the job's
    weights file, when the caller has located it already (fetched here otherwise).
    """
    weights = weights or locate_weights(job.weights, job.settings.loss.model, callback)
    new = job_fingerprint(job, source, weights)
    manifest = load_manifest(work, restart)
    replan = False
    if work.exists():
        stored = upgraded(manifest.fingerprint) if manifest else {}
        if weights.matches(stored.get("weights")):  # also the URL older versions recorded
            stored = {**stored, "weights": weights.identity}
        changes = differing(stored, new)
        if changes and not restart and not work.has_any_frames():
            # Nothing was rendered with the old settings (a first attempt failed before its
            # first frame): nothing to keep, so nothing to refuse; re-planned as new.
            changes, replan = [], True
            work.discard_segments()
        if changes and not restart:
            done = len(work.frames.done_frames(range(_last_frame(work) + 1)))
            raise ResumeError(
                f"{work.path} holds {plural(done, 'frame')} rendered with other settings: "
                f"{'; '.join(changes)}; run with the old settings to continue, or pass "
                "--restart to discard them"
            )
        if restart:
            callback(Message(f"--restart: discarded {plural(work.discard_frames(), 'frame')}"))
    work.remove_temporaries()
    if manifest is None:
        manifest = Manifest(job, new, result_hash(new), precision=precision, threads=threads)
    else:  # the plan, and what it wrote, stay: the outputs are still ours
        manifest.job, manifest.fingerprint = job, new
        manifest.result_hash, manifest.encode = result_hash(new), "pending"
        if restart or replan or manifest.precision is None:
            manifest.precision = precision
        if restart or replan or manifest.threads is None:
            manifest.threads = threads
        elif threads is not None and threads != manifest.threads:
            callback(
                Message(
                    f"continuing with {plural(manifest.threads, 'CPU thread')} per process, "
                    f"as this render began (not {threads}): its frames depend on the count"
                )
            )
    work.write_manifest(manifest)
    return manifest


def with_precision(job: Job, precision: str | None) -> Job:
    """The job as its frames are rendered: in the precision its work directory recorded."""
    if precision is None:
        return job
    compute = replace(job.settings.compute, precision=precision)
    return replace(job, settings=replace(job.settings, compute=compute))


def _last_frame(work: WorkDir) -> int:
    names = [p.stem for p in work.frames_dir.glob("*.png") if p.stem.isdigit()]
    return max(map(int, names), default=-1)


def encode(work: WorkDir, overwrite: bool, callback: Callback = ignore) -> str:
    """Write the output from the finished frames. Idempotent: safe to re-run after a crash.

    What it writes is claimed in the manifest (size and digest) before it is renamed into
    place, so a later run recognises its own output by content, never by path alone.
    """
    manifest = work.manifest()
    plan = manifest.require_plan(work.path)
    indices = plan.indices
    missing = [i for i in indices if not work.frames.has_frame(i)]
    if missing:
        raise ResumeError(
            f"{plural(len(missing), 'frame')} not rendered yet (first: {missing[0]}); "
            f"run: nst-video resume {work.path}"
        )
    output = manifest.job.output
    callback(Message(f"encoding {plural(len(indices), 'frame')} to {output}"))
    if is_directory_output(output):
        _encode_directory(work, manifest, plan, overwrite)
    else:
        _encode_file(work, manifest, plan, overwrite)
    manifest.encode = "done"
    work.write_manifest(manifest)
    return output


def _encode_file(work: WorkDir, manifest: Manifest, plan: Plan, overwrite: bool) -> None:
    output = Path(manifest.job.output)
    key = os.path.abspath(output)
    if manifest.partial and is_our_partial(Path(manifest.partial), output):
        Path(manifest.partial).unlink(missing_ok=True)  # a killed encode's temporary file
    partial = temporary_name(output, "partial")
    ours = manifest.owns(output)
    owned = dict(manifest.owned)
    manifest.encode, manifest.partial = "started", str(partial)
    work.write_manifest(manifest)

    def claim(finished: Path) -> None:
        # Until the rename, an older file of ours may still be the one at the path: both count.
        signature = file_signature(finished)
        assert signature is not None  # the writer just finished it
        manifest.owned = {**owned, key: [*owned.get(key, []), signature]}
        work.write_manifest(manifest)

    writer = open_writer(
        output,
        plan.size,
        plan.fps,
        overwrite=overwrite or ours,
        partial=partial,
        before_commit=claim,
        **_writer_options(manifest.job, plan),
    )
    with writer:
        for frame in final_frames(work, plan.indices, plan.segments):
            writer.write(frame)
    manifest.owned = {**owned, key: manifest.owned[key][-1:]}
    manifest.partial = None


def is_our_partial(partial: Path, output: Path) -> bool:
    """Whether the `partial` a manifest names may be deleted: a regular file in the output's
    own folder (symlinks resolved), with exactly the name of a temporary file of this output.
    It is the one path a manifest names outside the work directory (a temporary file must be
    beside its output to be renamed into place), so it is checked this closely."""
    try:
        regular = stat.S_ISREG(os.lstat(partial).st_mode)
    except OSError:
        return False
    same_folder = partial.parent.resolve() == output.parent.resolve()
    return regular and same_folder and is_temporary(partial.name, of=output.name)


def _encode_directory(work: WorkDir, manifest: Manifest, plan: Plan, overwrite: bool) -> None:
    """Numbered frames into the directory: ours (or, with --overwrite, any numbered frame) are
    replaced, and numbered frames past the end of this render (a longer render's, which would
    make a mixed sequence) removed. Frames before its first are kept: a clip may be rendered
    in pieces (--start). Nothing else is touched."""
    directory = Path(manifest.job.output)
    indices = plan.indices
    new = {}
    for index, frame in zip(indices, final_frames(work, indices, plan.segments), strict=True):
        name = OUTPUT_FRAME_NAME.format(index)
        new[os.path.abspath(directory / name)] = bytes_signature(encode_image(frame, name))
    existing = numbered_frames(directory)
    foreign = [
        p
        for p in existing
        if _frame_number(p) >= plan.start
        and not manifest.owns(p)
        and file_signature(p) != new.get(os.path.abspath(p))
    ]
    if foreign and not overwrite:
        raise _foreign_frames(directory, foreign)
    owned = dict(manifest.owned)
    claimed = {key: [*owned.get(key, []), sig] for key, sig in new.items()}
    manifest.encode, manifest.owned = "started", {**owned, **claimed}
    work.write_manifest(manifest)
    # The output as given: its trailing '/' says "directory" even before it exists.
    output = manifest.job.output
    with open_writer(output, plan.size, plan.fps, overwrite=True, start_index=plan.start) as writer:
        for frame in final_frames(work, indices, plan.segments):
            writer.write(frame)
    # Frames of an older, longer render would make a mixed sequence: only ours (or, with
    # --overwrite, numbered frames the user let us replace) are here to remove.
    removed = {os.path.abspath(p) for p in existing if _frame_number(p) >= plan.stop}
    for path in removed:
        Path(path).unlink(missing_ok=True)
    kept = {k: v for k, v in owned.items() if k not in removed}
    manifest.owned = {**kept, **{key: [sig] for key, sig in new.items()}}


def _frame_number(path: Path) -> int:
    """The frame index in an output frame's name (frame_000123.png: 123)."""
    return int(path.stem.rpartition("_")[2])


def _writer_options(job: Job, plan: Plan) -> dict[str, Any]:
    video = job.settings.video
    options: dict[str, Any] = {"crf": video.crf}
    if video.codec:
        options["codec"] = video.codec
    if video.audio and plan.has_audio:
        options.update(
            audio_from=job.input,
            audio_start=float(plan.start / plan.fps),
            audio_duration=float((plan.stop - plan.start) / plan.fps),
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


def check_job(job: Job, work: WorkDir, overwrite: bool, restart: bool) -> FrameSource:
    """Every refusal that costs no work, before anything is written; returns the source."""
    check_names(job, work)
    work.check_ours()
    if is_within(job.input, work.path):  # before listing it: it may hold our frames too
        raise _inside(work, "input", job.input)
    stored = load_manifest(work, restart)
    # An output that is an input (or a link to one) is named as such before any other check
    # of it; check_paths repeats this with every file of an image sequence.
    what = "output directory" if is_directory_output(job.output) else "output"
    masks = [*job.settings.video.style_masks, *filter(None, [job.settings.video.keep_mask])]
    inputs = [Path(job.input), *map(Path, job.styles), *map(Path, masks)]
    check_not_inputs({what: job.output}, inputs)
    check_output(job.output, overwrite, stored, job.settings.video.start)
    source = open_source(job.input, job.settings.video.fps)
    check_paths(job, work, source)
    if job.report:
        check_writable_parent(Path(job.report))
        check_replaceable(Path(job.report), overwrite, stored)
    if not is_directory_output(job.output):
        check_encoder(job.output, job.settings.video.codec, job.settings.video.crf)
    return source


def check_names(job: Job, work: WorkDir) -> None:
    """Every name the render will create fits its filesystem, temporary names included."""
    output = Path(job.output)
    if is_directory_output(job.output):
        output = output / OUTPUT_FRAME_NAME.format(0)
    check_name_fits(output, "output")
    check_name_fits(work.manifest_path, "work directory")
    if job.report:
        check_name_fits(job.report, "--report")


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
    source = check_job(job, work, overwrite, restart)
    indices = render_range(source, video)
    long_side = video_long_side(job.settings.image.size, max(source.size))
    uses_flow = video.init == "flow" and video.flow != "none"
    loss = job.settings.loss
    layers = loss.content_layers + loss.style_layers
    height_width = (source.size[1], source.size[0])
    check_frame_size(height_width, long_side, layers, job.settings.image, "the frames", uses_flow)
    # Masks opened and checked (size, frame count) and the schedule resolved, before any work.
    guided = guided_source(source, video, indices)
    warning = getattr(source, "warning", None)
    if warning:
        callback(Message(f"warning: {warning}"))
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


def preflight_engine(
    job: Job, parallel: Parallel, make_engine: EngineFactory, precision: str | None
) -> Engine | None:
    """The engine of a one-process render, in the precision its frames will be rendered in.
    With workers, each builds its own: one is built here on the CPU all the same, and dropped,
    so that a style that does not decode or weights that do not load fail now, in one line."""
    if not parallel.enabled:
        return make_engine(with_precision(job, precision))
    compute = replace(job.settings.compute, device="cpu", precision="fp32")
    make_engine(replace(job, settings=replace(job.settings, compute=compute)))
    return None


def report_wrong_size(work: WorkDir, size: tuple[int, int], callback: Callback) -> None:
    """Finished frames of another size (a file put there, or a damaged header) are rendered
    again, with one line, rather than failing later at the crossfade or the encoder."""
    dropped = work.drop_wrong_size(size)
    if dropped:
        callback(
            Message(
                f"{plural(len(dropped), 'frame')} in {work.path} not {size[0]}x{size[1]} "
                f"(first: {dropped[0].relative_to(work.path)}): rendered again"
            )
        )


def render_plan(
    source: FrameSource, indices: range, long_side: int, segments: list[Segment] | None
) -> Plan:
    h, w = scaled_shape(source.size[1], source.size[0], long_side)
    segments_kept = tuple(segments) if segments else None
    return Plan(indices.start, indices.stop, (w, h), source.fps, source.has_audio, segments_kept)


def choose_segments(
    manifest: Manifest,
    work: WorkDir,
    source: FrameSource,
    indices: range,
    video: VideoConfig,
    parallel: Parallel,
    callback: Callback,
) -> list[Segment] | None:
    """The stored segment plan when frames were already rendered with it, else a new one."""
    old = manifest.plan.segments if manifest.plan else None
    started = bool(work.frames.done_frames(indices)) or work.has_pass_frames()
    if started and old:
        return fit_segments(list(old), indices)
    if started and parallel.enabled:
        callback(
            Message(
                "this render began on one worker and continues that way; pass "
                "--restart to split it into segments"
            )
        )
        return None
    work.discard_segments()
    if not parallel.enabled:
        return None
    frames = source.frames(indices.start, len(indices))
    cuts = detect_cuts(frames, indices, video.flow, video.scene_cut_threshold)
    return plan_segments(indices, parallel.workers, cuts, video.segment_warmup)


def write_report(work: WorkDir, indices: range, report: str | None, overwrite: bool) -> None:
    """One JSON object per frame, gathered from the per-frame statistics in the work dir.

    Follows the output's rules: an existing file needs --overwrite unless it is a report we
    wrote (claimed in the manifest by size and digest before it is renamed into place).
    """
    if not report:
        return
    path = Path(report)
    manifest = work.manifest()
    check_replaceable(path, overwrite, manifest)
    lines = [json.dumps(work.frames.read_stats(i), sort_keys=True) for i in indices]
    data = ("\n".join(lines) + "\n").encode()
    key, owned = os.path.abspath(path), dict(manifest.owned)
    signature = bytes_signature(data)
    manifest.owned = {**owned, key: [*owned.get(key, []), signature]}
    work.write_manifest(manifest)
    atomic_write_bytes(path, data)
    manifest.owned = {**owned, key: [signature]}
    work.write_manifest(manifest)
