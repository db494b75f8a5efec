"""What each command does, once typer has parsed its options: torch, cv2 and the pipeline are
imported here, and app.py loads this module only when a command runs."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

try:  # typer >= 0.2x ships its own copy of click (as in app.py)
    from typer._click.exceptions import UsageError
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import UsageError
    from click.globals import get_current_context

from nst_video.api import (
    BatchItem,
    engine_for,
    make_engine,
    stylize_batch,
    sweep_items,
    sweep_path,
    video_job,
)
from nst_video.cli.presets import PRESET_MARK, option_settings, preset_text, summary
from nst_video.cli.progress import ProgressReporter
from nst_video.cli.snapshots import Snapshots
from nst_video.config import (
    IMAGE,
    PREVIEW,
    VIDEO,
    Settings,
    VideoConfig,
    cli_text,
    comma_values,
)
from nst_video.errors import (
    InputError,
    Interrupted,
    NstError,
    OptionError,
    OutputError,
    is_out_of_memory,
    out_of_memory_error,
    plural,
    unknown_choice,
)
from nst_video.media import open_source
from nst_video.media.files import (
    atomic_write_bytes,
    check_name_fits,
    require_regular,
    write_error,
)
from nst_video.media.images import IMAGE_EXTENSIONS, WRITE_EXTENSIONS, write_image
from nst_video.media.paths import check_not_inputs, check_output_image, ensure_directory
from nst_video.models import chosen_weights
from nst_video.pipeline.job import render_video
from nst_video.pipeline.outputs import input_files
from nst_video.pipeline.preflight import Parallel, default_work_dir, open_work_dir
from nst_video.pipeline.preview import contact_sheet, pick_frames
from nst_video.pipeline.report import LiveReport, open_report
from nst_video.pipeline.styling import (
    check_styling,
    frame_schedule,
    schedule_frames,
    schedule_guide,
    styles_of,
)
from nst_video.progress import Event, ImageFailed, Message, format_duration
from nst_video.workdir.manifest import Job
from nst_video.workdir.status import render_status
from nst_video.workdir.store import WorkDir

# --- settings: presets and the start-up line ----------------------------------------------------


def like_values(work_dir: Path, command: str) -> dict[str, Any]:
    """--like WORKDIR: the settings of the render in `work_dir` (from its manifest; a directory
    without one is one line), as `command`'s option values."""
    settings = open_work_dir(work_dir).manifest().job.settings
    return {
        name: cli_text(setting, getattr(getattr(settings, setting.group), name))
        for name, setting in option_settings(command).items()
    }


def save_preset(
    path: Path | None, settings: Settings, command: str, inputs: list[Path], overwrite: bool
) -> None:
    """--save-config FILE: the resolved settings as TOML, written atomically. Never over an
    input or a non-regular file; over an existing file only if --save-config wrote it, or
    with --overwrite."""
    if path is None:
        return
    check_name_fits(path, "--save-config")
    check_not_inputs({"--save-config": path}, inputs)
    if require_regular(path) and not overwrite and not _is_preset(path):
        raise OutputError(
            f"{path} exists and is not a settings file nst-video wrote; pass --overwrite to "
            "replace it, or choose another --save-config"
        )
    try:
        atomic_write_bytes(path, preset_text(settings, command).encode())
    except OSError as exc:
        raise write_error(path, exc) from exc


def _is_preset(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(PRESET_MARK)) == PRESET_MARK.encode()
    except OSError:
        return False


def _announce(settings: Settings, command: str, quiet: bool, sweep: Sequence[float] = ()) -> None:
    """The settings a command runs with, one line on stdout (none with --quiet): on stderr it
    would come before an error, which is one line there."""
    if not quiet:
        print(summary(settings, command, sweep), flush=True)


@contextlib.contextmanager
def memory_boundary(size: int | None) -> Iterator[None]:
    """An allocation failure anywhere in a command becomes one line naming a smaller --size
    (finished frames of a render are saved already, each atomically)."""
    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise out_of_memory_error(exc, size) from None


# --- image -------------------------------------------------------------------------------------


def image(
    content: list[Path],
    style: list[Path],
    output: Path,
    output_ext: str,
    style_weight: str,
    save_every: int,
    config: Path | None,
    save_config: Path | None,
    overwrite: bool,
    quiet: bool,
    weights: Path | None,
    settings: Settings,
) -> int:
    """Returns the number of failed inputs."""
    settings, sweep = style_weight_sweep(settings, style_weight)
    _announce(settings, IMAGE, quiet, sweep)
    inputs = [*content, *style, *_weights(weights), *([config] if config else [])]
    save_preset(save_config, settings, IMAGE, inputs, overwrite)
    with memory_boundary(settings.image.size):
        return _run_image(
            content, style, output, settings, weights, output_ext, overwrite, quiet, save_every,
            sweep if len(sweep) > 1 else (),
        )  # fmt: skip


def _notices(quiet: bool) -> Callable[[Event], None]:
    """Before a progress bar exists: Message lines (the weights' first fetch) on stderr."""

    def show(event: Event) -> None:
        if not quiet and isinstance(event, Message):
            print(event.text, file=sys.stderr)

    return show


def _weights(weights: Path | None) -> list[Path]:
    found = chosen_weights(weights)
    return [found] if found else []


def _image_items(contents: list[Path], output: Path, ext: str) -> list[BatchItem]:
    """One input file -> output file; several files or a directory -> files in output dir."""
    if len(contents) == 1 and not contents[0].is_dir() and not output.is_dir():
        return [BatchItem(contents[0], output)]
    files: list[Path] = []
    for path in contents:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            files.append(path)
    if not files:
        raise InputError(f"no images found in {', '.join(map(str, contents))}")
    if output.exists() and not output.is_dir():
        raise OptionError(f"{output} is a file; with several inputs -o must name a directory")
    if not output.exists() and output.suffix.lower() in IMAGE_EXTENSIONS:
        raise OptionError(
            f"-o {output} names an image file, but there are {len(files)} inputs; "
            "give a directory (created if missing)"
        )
    suffix = "." + ext.lstrip(".").lower()
    if suffix not in WRITE_EXTENSIONS:
        raise unknown_choice("output extension", ext, WRITE_EXTENSIONS)
    items = [BatchItem(p, output / (p.stem + suffix)) for p in files]
    refuse_collisions(items)
    return items


def _sweep_items(contents: list[Path], output: Path, sweep: Sequence[float]) -> list[BatchItem]:
    """One content image, once per --style-weight value: OUT.swW.EXT each (api.sweep_path)."""
    if len(contents) != 1 or contents[0].is_dir() or output.is_dir():
        raise OptionError(
            f"--style-weight with {len(sweep)} values takes one content image and one output "
            f"file (written as {sweep_path(output, sweep[0]).name}, ...)"
        )
    if not contents[0].exists():
        raise InputError(f"content image not found: {contents[0]}")
    items = sweep_items(contents[0], output, sweep)
    names = [item.output.name for item in items]
    for item in items:
        if names.count(item.output.name) > 1:  # 1 and 1.0, or values equal to 6 digits
            raise OptionError(
                f"--style-weight gives {item.style_weight:g} twice (both written to "
                f"{item.output.name}); give each value once"
            )
    return items


def style_weight_sweep(settings: Settings, text: str) -> tuple[Settings, tuple[float, ...]]:
    """--style-weight of `image` and `preview`, one value or several: the settings at the
    first, and every value, each checked before any work."""
    sweep = parse_sweep(text, "--style-weight")
    settings = replace(settings, loss=replace(settings.loss, style_weight=sweep[0]))
    for value in sweep[1:]:
        replace(settings.loss, style_weight=value).validate()
    return settings, sweep


def refuse_collisions(items: list[BatchItem]) -> None:
    """Two inputs that would be written to one output file: refused before any work (the
    second would silently replace the first's result; --overwrite is only about files that
    existed before the run)."""
    by_output: dict[str, list[BatchItem]] = {}
    for item in items:
        key = os.path.normcase(os.path.abspath(item.output))
        by_output.setdefault(key, []).append(item)
    clashes = [same for same in by_output.values() if len(same) > 1]
    if not clashes:
        return
    same = clashes[0]
    named = ", ".join(str(item.content) for item in same[:-1]) + f" and {same[-1].content}"
    both = "both" if len(same) == 2 else "all"
    more = f" (and {plural(len(clashes) - 1, 'other output')} likewise)" if clashes[1:] else ""
    raise OutputError(
        f"{named} would {both} be written to {same[0].output}{more}; rename the inputs or "
        "stylize them in separate runs with different -o"
    )


def _run_image(
    contents: list[Path],
    styles: list[Path],
    output: Path,
    settings: Settings,
    weights: Path | None,
    ext: str,
    overwrite: bool,
    quiet: bool,
    save_every: int = 0,
    sweep: Sequence[float] = (),
) -> int:
    """Returns the number of failed inputs. `sweep`: style weights, one output each."""
    if save_every and sweep:
        raise OptionError(f"--save-every takes one --style-weight value, got {len(sweep)}")
    check_name_fits(output, "output")  # a too-long name is an OSError in every check below
    items = _sweep_items(contents, output, sweep) if sweep else _image_items(contents, output, ext)
    init = Path(settings.image.init)
    inputs = [*(item.content for item in items), *styles, *([init] if init.is_file() else [])]
    check_not_inputs([("output", item.output) for item in items], [*inputs, *_weights(weights)])
    for item in items:  # before any image is rendered, not when writing the first result
        require_regular(item.output)  # a FIFO or a device: refused before any work
        check_name_fits(item.output, "output")
    single = len(items) == 1 and items[0].output == output
    if single:
        if not contents[0].exists():
            raise InputError(f"content image not found: {contents[0]}")
        check_output_image(output, overwrite)
    for item in items if sweep else ():  # each refused now, not after the first is rendered
        check_output_image(item.output, overwrite)
    snapshots = Snapshots(output, save_every, settings, overwrite, inputs) if save_every else None
    if snapshots and not single:
        raise OptionError("--save-every works with one content image and one output file")
    engine = make_engine(styles, settings, weights, _notices(quiet))
    if not single and not sweep:
        ensure_directory(output)
    with ProgressReporter(quiet, unit="image", total=len(items)) as reporter:
        # One image's failure is the error line itself, not also a "skipped" line before it.
        callback = _without_failures(reporter) if single else reporter
        if snapshots:
            callback = snapshots.wrap(callback)
        failures = stylize_batch(engine, items, overwrite, callback)
    if single and failures:
        raise NstError(failures[0].reason)
    written = len(items) - len(failures)
    if failures:
        print(
            f"nst-video: {len(failures)} of {plural(len(items), 'image')} failed", file=sys.stderr
        )
    if not quiet and written:
        where = output if single else f"{plural(written, 'image')} to {output}"
        if sweep and not failures:
            where = ", ".join(str(item.output) for item in items)
        print(f"wrote {where}", file=sys.stderr)
    return len(failures)


def _without_failures(reporter: ProgressReporter) -> Callable[[Event], None]:
    def forward(event: Event) -> None:
        if not isinstance(event, ImageFailed):
            reporter(event)

    return forward


# --- video, resume, status ---------------------------------------------------------------------


def video(
    input: str,
    style: list[Path] | None,
    output: str,
    report: Path | None,
    report_html: Path | None,
    work_dir: Path | None,
    restart: bool,
    config: Path | None,
    like: Path | None,
    save_config: Path | None,
    overwrite: bool,
    quiet: bool,
    weights: Path | None,
    workers: int,
    ray_address: str | None,
    settings: Settings,
) -> None:
    styles = video_styles(style, settings.video)
    _announce(settings, VIDEO, quiet)
    job = video_job(input, style or [], output, weights, report, settings)
    if save_config is not None:
        source = open_source(input, settings.video.fps)
        presets = [p for p in (config, like and WorkDir(like).manifest_path) if p]
        inputs = [*input_files(source), *map(Path, styles), *_weights(weights), *presets]
        save_preset(save_config, settings, VIDEO, inputs, overwrite)
    with memory_boundary(settings.image.size):
        _run_render(
            job, work_dir, overwrite, restart, quiet, Parallel(workers, ray_address), report_html
        )


def resume(
    work_dir: Path,
    workers: int,
    ray_address: str | None,
    overwrite: bool,
    quiet: bool,
    report_html: Path | None = None,
) -> None:
    job = open_work_dir(work_dir).manifest().job
    _announce(job.settings, VIDEO, quiet)
    parallel = Parallel(workers, ray_address)
    with memory_boundary(job.settings.image.size):
        _run_render(job, work_dir, overwrite, False, quiet, parallel, report_html)


def status(work_dir: Path, as_json: bool) -> None:
    info = render_status(open_work_dir(work_dir))
    if as_json:
        typer.echo(json.dumps(info, sort_keys=True))
        return
    eta = info["eta_seconds"]
    step = info["pass"]
    typer.echo(
        (
            f"pass {step['number']}/{step['of']} ({step['done']}/{step['total']} frames); "
            if step
            else ""
        )
        + f"{info['done']}/{plural(info['total'], 'frame')} done"
        f" ({info['seconds_per_frame']:.2f} s/frame, ETA {format_duration(eta)}); "
        f"output: {info['output']} ({info['encode']}); {_liveness(info['owner'])}"
    )
    for seg in info["segments"] or ():
        worker = seg["worker"] or {}
        typer.echo(
            f"  segment {seg['index']}: frames {seg['start']}-{seg['stop'] - 1}, "
            f"{seg['done']}/{seg['total']} done, warm-up {seg['warmup']}"
            + (f", pass {seg['pass']['number']}/{seg['pass']['of']}" if seg["pass"] else "")
            + (f", worker pid {worker['pid']} on {worker['host']}" if worker else "")
        )


def report(work_dir: Path, output: Path | None, overwrite: bool) -> None:
    writer = open_report(work_dir, output, overwrite)
    writer.write()
    typer.echo(f"wrote {writer.path} ({writer.state})")


def _liveness(owner: dict | None) -> str:
    if owner is None:
        return "not running"
    return f"running (pid {owner.get('pid')} on {owner.get('host')})"


def video_styles(style: list[Path] | None, video: VideoConfig) -> list[str]:
    """The style images of a render: --style's, or its schedule's (one or the other)."""
    if style and video.style_at:
        raise _usage("give either --style or --style-at: a schedule names its style images")
    if not style and not video.style_at:
        raise _usage("Missing option '--style' / '-s' (or a schedule: --style-at)")
    return styles_of(video, [str(s) for s in style or ()])


def _usage(message: str) -> UsageError:
    """A usage error (exit 2, one line naming the command's --help), as click's own are."""
    return UsageError(message, ctx=get_current_context(silent=True))


def _run_render(
    job: Job,
    work_dir: Path | None,
    overwrite: bool,
    restart: bool,
    quiet: bool,
    parallel: Parallel,
    report_html: Path | None = None,
) -> None:
    work = work_dir or default_work_dir(job.output)
    live = LiveReport(work, report_html, overwrite, job) if report_html else None
    try:
        with ProgressReporter(quiet, unit="frame", total=0) as reporter:
            result = render_video(
                job,
                work,
                engine_for,
                overwrite=overwrite,
                restart=restart,
                callback=live.wrap(reporter) if live else reporter,
                parallel=parallel,
            )
    except Interrupted as stop:
        if live:
            live.update()
        print(
            f"nst-video: interrupted; finished frames are saved. Continue with:\n"
            f"  nst-video resume {shlex.quote(str(work))}",
            file=sys.stderr,
        )
        raise typer.Exit(stop.exit_code) from None
    if live:
        live.update()
    if not quiet:
        print(
            f"wrote {result.output} ({plural(result.total, 'frame')}, "
            f"{result.rendered} rendered now)",
            file=sys.stderr,
        )


# --- preview -----------------------------------------------------------------------------------

_MAX_SWEEP = 8


def parse_sweep(text: str, what: str) -> tuple[float, ...]:
    """One or more comma-separated numbers: the values of a sweep (image, preview)."""
    values = comma_values(text, float, what)
    if not 1 <= len(values) <= _MAX_SWEEP:
        raise OptionError(f"{what} takes 1 to {_MAX_SWEEP} comma-separated values, got {text!r}")
    return values


def preview(
    input: str,
    style: list[Path] | None,
    output: Path,
    count: int,
    style_weight: str,
    config: Path | None,
    overwrite: bool,
    quiet: bool,
    weights: Path | None,
    settings: Settings,
) -> None:
    settings, sweep = style_weight_sweep(settings, style_weight)
    styles = [Path(s) for s in video_styles(style, settings.video)]
    check_styling(settings.video, len(styles), settings.image.style_blend)
    _announce(settings, PREVIEW, quiet, sweep)
    check_name_fits(output, "-o")
    check_output_image(output, overwrite)
    if not 1 <= count <= 12:
        raise OptionError(f"--count must be in 1..12, got {count}")
    source = open_source(input, settings.video.fps)
    check_not_inputs({"-o": output}, [*input_files(source), *styles, *_weights(weights)])
    schedule = frame_schedule(settings.video, source.fps)
    with memory_boundary(settings.image.size):
        engine = make_engine(styles, settings, weights, _notices(quiet))
        if schedule is None:
            indices, guide_of = pick_frames(source.frame_count, count), None
        else:
            indices = schedule_frames(schedule, source.frame_count, count)
            guide_of = schedule_guide(schedule)
        with ProgressReporter(quiet, unit="frame", total=len(indices) * len(sweep)) as reporter:
            sheet = contact_sheet(engine, source, indices, reporter, sweep, guide_of)
    write_image(output, sheet)
    if not quiet:
        print(f"wrote {output}", file=sys.stderr)
