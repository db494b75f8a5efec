"""Before a render writes anything: every check that costs no work, the work directory made
ready (or refused), and the plan of what to render."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nst_video.config import VideoConfig
from nst_video.core.engine import Engine
from nst_video.core.weights import WeightsFile, locate_weights
from nst_video.errors import OptionError, ResumeError, plural
from nst_video.media import FrameSource, open_source
from nst_video.media.ffmpeg import rate_text
from nst_video.media.files import (
    is_within,
)
from nst_video.media.paths import check_not_inputs, check_writable_parent
from nst_video.media.writers import (
    check_encoder,
    is_directory_output,
)
from nst_video.pipeline.outputs import (
    check_names,
    check_output,
    check_paths,
    check_replaceable,
    inside_work_dir,
)
from nst_video.pipeline.sweep import EngineFactory
from nst_video.progress import Callback, Message
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


def load_manifest(work: WorkDir, restart: bool) -> Manifest | None:
    """The work directory's manifest, or None for a new one; --restart also accepts an older
    manifest layout (the directory is ours, its frames are discarded anyway)."""
    return work.read_manifest(allow_old=restart) if work.exists() else None


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
            done = len(work.frames.done_frames(range(work.last_frame() + 1)))
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


def open_checked_source(job: Job, work: WorkDir, overwrite: bool, restart: bool) -> FrameSource:
    """The job's input, opened after every refusal that costs no work and before anything is
    written (a sequence's files are checked against the outputs too)."""
    check_names(job, work)
    work.check_ours()
    if is_within(job.input, work.path):  # before listing it: it may hold our frames too
        raise inside_work_dir(work, "input", job.input)
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
