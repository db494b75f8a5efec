"""Command-line interface: typer commands that read defaults from config and report progress."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from nst_video import __version__
from nst_video.api import BatchItem, engine_for, make_engine, stylize_batch
from nst_video.config import ImageConfig, LossConfig, OptimConfig, Settings, VideoConfig
from nst_video.errors import (
    InputError,
    Interrupted,
    NstError,
    OptionError,
    plural,
    unknown_choice,
)
from nst_video.media import open_source, parse_fps
from nst_video.media.images import IMAGE_EXTENSIONS, WRITE_EXTENSIONS, write_image
from nst_video.media.paths import check_not_inputs, check_output_image, ensure_directory
from nst_video.models import MODEL_NAMES, chosen_weights
from nst_video.pipeline.job import (
    Parallel,
    default_work_dir,
    input_files,
    open_work_dir,
    render_video,
)
from nst_video.pipeline.preview import contact_sheet, pick_frames
from nst_video.progress import (
    Event,
    ImageFailed,
    ProgressReporter,
    format_duration,
)
from nst_video.workdir.manifest import Job, job_from_dict
from nst_video.workdir.status import render_status

try:  # typer >= 0.2x ships its own copy of click; earlier versions use click itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError

DEBUG_ENV = "NST_VIDEO_DEBUG"
_L, _O, _I = LossConfig(), OptimConfig(), ImageConfig()


class _TidyHelp:
    """typer's help shows `<bool>` beside every flag and `<list[Path]>` beside repeatable paths:
    flags show nothing, lists show their element type (`<path>`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:  # type: ignore[attr-defined]
            _tidy_metavar(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            _tidy_metavar(option)
        return option


class _Command(_TidyHelp, TyperCommand):
    pass


class _Group(_TidyHelp, TyperGroup):
    pass


def _tidy_metavar(param: Any) -> None:
    if getattr(param, "is_flag", False):
        param.metavar = ""
        return
    shown = getattr(param, "display_type_rich", None)  # typer's rich help (0.2x) only
    if shown is None or getattr(param, "_tidy", False):
        return

    def display(ctx: Any) -> str | None:
        text = shown(ctx=ctx)
        match = re.fullmatch(r"<list\[(\w+)\]>(\.\.\.)?", text or "")
        if match is None:
            return text
        return f"<{match.group(1).lower()}>"  # an argument's name already ends in '...'

    param.display_type_rich = display
    param._tidy = True


app = typer.Typer(
    name="nst-video",
    cls=_Group,
    help="Paint video clips and images with optimization-based neural style transfer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nst-video {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Paint video clips and images with optimization-based neural style transfer."""


# --- option types shared by the commands -------------------------------------------------------

Styles = Annotated[list[Path], typer.Option("--style", "-s", help="Style image; repeat to blend.")]
StyleBlend = Annotated[str | None, typer.Option(help="Blend weights, one per --style: 0.7,0.3.")]
StyleScale = Annotated[float, typer.Option(help="Style image long side relative to the output.")]
Size = Annotated[int, typer.Option(help="Output long side in pixels (aspect kept).")]
Iterations = Annotated[int, typer.Option(help="Loss evaluations per image.")]
Optimizer = Annotated[str, typer.Option(help="lbfgs or adam.")]
History = Annotated[int, typer.Option(help="L-BFGS history size (memory vs. convergence).")]
Tolerance = Annotated[
    float,
    typer.Option(
        help="Early stop when the loss improves by less than this (relative) over 20 evaluations."
    ),
]
Seed = Annotated[int, typer.Option(help="Seed for --init noise.")]
ContentWeight = Annotated[float, typer.Option(help="Weight of the content term.")]
StyleWeight = Annotated[float, typer.Option(help="Weight of the style term.")]
TvWeight = Annotated[float, typer.Option(help="Weight of the total-variation term.")]
ContentLayers = Annotated[
    str, typer.Option(help="Comma-separated layers of --model for content (relu4_2, conv3_1...).")
]
StyleLayers = Annotated[str, typer.Option(help="Comma-separated layers of --model for style.")]
LayerWeights = Annotated[
    str | None, typer.Option(help="Comma-separated weights, one per style layer (default equal).")
]
Pooling = Annotated[str, typer.Option(help="avg (Gatys) or max (torchvision).")]
PreserveColors = Annotated[
    bool,
    typer.Option("--preserve-colors", help="Keep the content's colors; transfer luminance only."),
]
Model = Annotated[
    str,
    typer.Option(
        help=f"Network: {', '.join(MODEL_NAMES)} (torchvision's ImageNet VGGs; -caffe: the "
        "original Caffe models)."
    ),
]
Weights = Annotated[
    Path | None,
    typer.Option(
        help="Local weights file for --model (e.g. torchvision's vgg19-dcbb9e9d.pth); default: "
        "$NST_VIDEO_WEIGHTS, else the model's download."
    ),
]
Device = Annotated[str, typer.Option(help="auto (cuda, then mps, then cpu), cpu, cuda or mps.")]
Precision = Annotated[
    str,
    typer.Option(help="auto (TF32 on CUDA, else fp32), fp32, tf32, or bf16 (autocast VGG passes)."),
]
Scales = Annotated[
    int, typer.Option(help="Coarse-to-fine levels for images and first/cut frames (1 = off).")
]
Workers = Annotated[
    int,
    typer.Option(help="Segments rendered in parallel with Ray: N local GPUs, or N CPU workers."),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        help="Address of an existing Ray cluster (the work dir must be on a shared filesystem)."
    ),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


def parse_floats(text: str | None, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise OptionError(f"{what} must be comma-separated numbers, got {text!r}") from None


def parse_names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def build_settings(**values: object) -> Settings:
    """Settings from CLI values; keys are field names of the config dataclasses."""
    settings = Settings()
    groups = {
        "loss": settings.loss,
        "optim": settings.optim,
        "image": settings.image,
        "video": settings.video,
    }
    updated = {}
    for group, config in groups.items():
        fields = {k: v for k, v in values.items() if hasattr(config, k)}
        updated[group] = replace(config, **fields)
    unknown = set(values) - {k for c in groups.values() for k in vars(c)}
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)}")
    return Settings(**updated)


_PARSERS = {
    "style_blend": lambda v: parse_floats(v, "--style-blend"),
    "style_layer_weights": lambda v: parse_floats(v, "--style-layer-weights"),
    "content_layers": parse_names,
    "style_layers": parse_names,
    "fps": lambda v: parse_fps(v) if v else None,
}
# Command parameters that are not settings of the result.
_NOT_SETTINGS = {
    "content", "style", "output", "input", "weights", "output_ext", "overwrite", "quiet",
    "report", "work_dir", "restart", "workers", "ray_address", "no_audio",
}  # fmt: skip


def settings_from_options(options: dict[str, object]) -> Settings:
    """Settings from a command's parameters (its `locals()`): names match config fields."""
    values = {
        key: _PARSERS[key](value) if key in _PARSERS else value  # type: ignore[operator]
        for key, value in options.items()
        if key not in _NOT_SETTINGS
    }
    return build_settings(**values)


@app.command(cls=_Command)
def image(
    content: Annotated[
        list[Path],
        typer.Argument(help="Content image(s), or a directory of images.", show_default=False),
    ],
    style: Styles,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help=(
                "Output image (format from its extension: png, jpg, webp, tif); a directory when "
                "several inputs or a directory are given."
            ),
        ),
    ],
    style_blend: StyleBlend = None,
    style_scale: StyleScale = _I.style_scale,
    size: Size = _I.size or 512,
    iterations: Iterations = _O.iterations,
    optimizer: Optimizer = _O.optimizer,
    history_size: History = _O.history_size,
    tolerance: Tolerance = _O.tolerance,
    init: Annotated[str, typer.Option(help="content, noise, or an image file.")] = _I.init,
    seed: Seed = _I.seed,
    content_weight: ContentWeight = _L.content_weight,
    style_weight: StyleWeight = _L.style_weight,
    tv_weight: TvWeight = _L.tv_weight,
    content_layers: ContentLayers = ",".join(_L.content_layers),
    style_layers: StyleLayers = ",".join(_L.style_layers),
    style_layer_weights: LayerWeights = None,
    pooling: Pooling = _I.pooling,
    preserve_colors: PreserveColors = _I.preserve_colors,
    model: Model = _L.model,
    weights: Weights = None,
    device: Device = _I.device,
    precision: Precision = _I.precision,
    scales: Scales = _I.scales,
    output_ext: Annotated[str, typer.Option(help="Extension of batch outputs.")] = "png",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Stylize one image, several images, or a directory of images."""
    settings = settings_from_options(locals())
    if _run_image(content, style, output, settings, weights, output_ext, overwrite, quiet):
        raise typer.Exit(1)


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
    return [BatchItem(p, output / (p.stem + suffix)) for p in files]


def _run_image(
    contents: list[Path],
    styles: list[Path],
    output: Path,
    settings: Settings,
    weights: Path | None,
    ext: str,
    overwrite: bool,
    quiet: bool,
) -> int:
    """Returns the number of failed inputs."""
    items = _image_items(contents, output, ext)
    init = Path(settings.image.init)
    inputs = [*(item.content for item in items), *styles, *([init] if init.is_file() else [])]
    check_not_inputs([("output", item.output) for item in items], [*inputs, *_weights(weights)])
    single = len(items) == 1 and items[0].output == output
    if single:
        if not contents[0].exists():
            raise InputError(f"content image not found: {contents[0]}")
        check_output_image(output, overwrite)
    engine = make_engine(styles, settings, weights)
    if not single:
        ensure_directory(output)
    with ProgressReporter(quiet, unit="image", total=len(items)) as reporter:
        # One image's failure is the error line itself, not also a "skipped" line before it.
        callback = _without_failures(reporter) if single else reporter
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
        print(f"wrote {where}", file=sys.stderr)
    return len(failures)


def _without_failures(reporter: ProgressReporter) -> Callable[[Event], None]:
    def forward(event: Event) -> None:
        if not isinstance(event, ImageFailed):
            reporter(event)

    return forward


_V = VideoConfig()


@app.command(cls=_Command)
def video(
    input: Annotated[
        str,
        typer.Argument(
            help=(
                "Video file, directory of images, glob ('frames/*.png') or printf pattern "
                "(frame_%05d.png)."
            ),
            show_default=False,
        ),
    ],
    style: Styles,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help=(
                "Output video (.mp4 .mov .mkv .webm), or a directory of PNG frames (trailing '/')."
            ),
        ),
    ],
    style_blend: StyleBlend = None,
    style_scale: StyleScale = _I.style_scale,
    size: Annotated[
        int | None,
        typer.Option(help="Output long side in pixels; default: the input's, at most 512."),
    ] = None,
    first_iterations: Annotated[
        int, typer.Option(help="Loss evaluations for the first frame and scene cuts.")
    ] = _V.first_iterations,
    iterations: Annotated[
        int, typer.Option(help="Loss evaluations for each later frame.")
    ] = _V.iterations,
    init: Annotated[
        str,
        typer.Option(
            help="flow: warm start from the previous output; content: independent frames."
        ),
    ] = _V.init,
    flow: Annotated[
        str, typer.Option(help="Optical flow: dis, farneback, or none (unwarped previous frame).")
    ] = _V.flow,
    temporal_weight: Annotated[
        float, typer.Option(help="Weight of the temporal consistency term.")
    ] = _L.temporal_weight,
    scene_cut_threshold: Annotated[
        float,
        typer.Option(
            help="A frame is a cut when fewer than this fraction of pixels are consistent."
        ),
    ] = _V.scene_cut_threshold,
    fps: Annotated[
        str | None,
        typer.Option(help="Frame rate of image sequences (default 24); overrides a container's."),
    ] = None,
    start: Annotated[int, typer.Option(help="First frame to render.")] = _V.start,
    frames: Annotated[int | None, typer.Option(help="Number of frames to render.")] = None,
    crf: Annotated[int, typer.Option(help="Encoder quality (lower is better).")] = _V.crf,
    codec: Annotated[
        str | None, typer.Option(help="Video codec; default libx264 (libvpx-vp9 for .webm).")
    ] = None,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Drop the audio track.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write per-frame statistics (JSONL).")] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Work directory for frames and resume state; default OUTPUT.nst-work."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Discard frames rendered with other settings.")
    ] = False,
    workers: Workers = 1,
    ray_address: RayAddress = None,
    segment_warmup: Annotated[
        int, typer.Option(help="Frames each parallel segment renders early and crossfades.")
    ] = _V.segment_warmup,
    optimizer: Optimizer = _O.optimizer,
    history_size: History = _O.history_size,
    tolerance: Tolerance = _O.tolerance,
    seed: Seed = _I.seed,
    content_weight: ContentWeight = _L.content_weight,
    style_weight: StyleWeight = _L.style_weight,
    tv_weight: TvWeight = _L.tv_weight,
    content_layers: ContentLayers = ",".join(_L.content_layers),
    style_layers: StyleLayers = ",".join(_L.style_layers),
    style_layer_weights: LayerWeights = None,
    pooling: Pooling = _I.pooling,
    preserve_colors: PreserveColors = _I.preserve_colors,
    model: Model = _L.model,
    weights: Weights = None,
    device: Device = _I.device,
    precision: Precision = _I.precision,
    scales: Scales = _I.scales,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Stylize a video clip or image sequence, frame by frame, without flicker. Resumable."""
    options = dict(locals())
    # `--init` and `--iterations` mean the video's; the optimizer's budget is per frame.
    video_init, later = options.pop("init"), options.pop("iterations")
    settings = settings_from_options({**options, "iterations": first_iterations})
    video_config = replace(settings.video, init=video_init, iterations=later, audio=not no_audio)
    settings = replace(settings, video=video_config)
    # Absolute paths, so `nst-video resume` works from any directory.
    job = Job(
        _absolute(input),
        tuple(_absolute(s) for s in style),
        _absolute(output),
        _absolute(weights) if weights else None,
        _absolute(report) if report else None,
        settings,
    )
    _run_render(job, work_dir, overwrite, restart, quiet, Parallel(workers, ray_address))


def _absolute(path: str | Path) -> str:
    """Absolute path, keeping a trailing separator (it means 'directory output')."""
    text = str(path)
    resolved = os.path.abspath(text)
    return resolved + os.sep if text.endswith(("/", os.sep)) else resolved


def _run_render(
    job: Job,
    work_dir: Path | None,
    overwrite: bool,
    restart: bool,
    quiet: bool,
    parallel: Parallel,
) -> None:
    work = work_dir or default_work_dir(job.output)
    try:
        with ProgressReporter(quiet, unit="frame", total=0) as reporter:
            result = render_video(
                job,
                work,
                engine_for,
                overwrite=overwrite,
                restart=restart,
                callback=reporter,
                parallel=parallel,
            )
    except Interrupted as stop:
        print(
            f"nst-video: interrupted; finished frames are saved. Continue with:\n"
            f"  nst-video resume {shlex.quote(str(work))}",
            file=sys.stderr,
        )
        raise typer.Exit(stop.exit_code) from None
    if not quiet:
        print(
            f"wrote {result.output} ({plural(result.total, 'frame')}, "
            f"{result.rendered} rendered now)",
            file=sys.stderr,
        )


@app.command(cls=_Command)
def resume(
    work_dir: Annotated[Path, typer.Argument(help="Work directory of an earlier render.")],
    workers: Workers = 1,
    ray_address: RayAddress = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Continue a render with the settings stored in its work directory."""
    job = job_from_dict(open_work_dir(work_dir).read_manifest()["job"])
    _run_render(job, work_dir, overwrite, False, quiet, Parallel(workers, ray_address))


@app.command(cls=_Command)
def status(
    work_dir: Annotated[Path, typer.Argument(help="Work directory of a render.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Frames done / total, average seconds per frame and ETA of a render."""
    info = render_status(open_work_dir(work_dir))
    if as_json:
        typer.echo(json.dumps(info, sort_keys=True))
        return
    eta = info["eta_seconds"]
    typer.echo(
        f"{info['done']}/{plural(info['total'], 'frame')} done"
        f" ({info['seconds_per_frame']:.2f} s/frame, ETA {format_duration(eta)}); "
        f"output: {info['output']} ({info['encode']}); {_liveness(info['owner'])}"
    )
    for seg in info["segments"] or ():
        worker = seg["worker"] or {}
        typer.echo(
            f"  segment {seg['index']}: frames {seg['start']}-{seg['stop'] - 1}, "
            f"{seg['done']}/{seg['total']} done, warm-up {seg['warmup']}"
            + (f", worker pid {worker['pid']} on {worker['host']}" if worker else "")
        )


def _liveness(owner: dict | None) -> str:
    if owner is None:
        return "not running"
    return f"running (pid {owner.get('pid')} on {owner.get('host')})"


StyleWeightSweep = Annotated[
    str,
    typer.Option(
        "--style-weight",
        help="Weight of the style term; comma-separated values give one row each (0.3,1,3).",
    ),
]
_MAX_SWEEP = 8


def parse_sweep(text: str, what: str) -> tuple[float, ...]:
    """One or more comma-separated numbers: the values of a preview sweep."""
    values = parse_floats(text, what) or ()
    if not 1 <= len(values) <= _MAX_SWEEP:
        raise OptionError(f"{what} takes 1 to {_MAX_SWEEP} comma-separated values, got {text!r}")
    return values


@app.command(cls=_Command)
def preview(
    input: Annotated[str, typer.Argument(help="Video file or image sequence.")],
    style: Styles,
    output: Annotated[Path, typer.Option("--output", "-o", help="Contact sheet image (PNG).")],
    count: Annotated[int, typer.Option(help="Frames spread over the clip.")] = 4,
    size: Annotated[int, typer.Option(help="Long side of each preview frame.")] = 256,
    iterations: Annotated[int, typer.Option(help="Loss evaluations per frame.")] = 100,
    style_blend: StyleBlend = None,
    style_scale: StyleScale = _I.style_scale,
    optimizer: Optimizer = _O.optimizer,
    history_size: History = _O.history_size,
    tolerance: Tolerance = _O.tolerance,
    content_weight: ContentWeight = _L.content_weight,
    style_weight: StyleWeightSweep = f"{_L.style_weight:g}",
    tv_weight: TvWeight = _L.tv_weight,
    content_layers: ContentLayers = ",".join(_L.content_layers),
    style_layers: StyleLayers = ",".join(_L.style_layers),
    style_layer_weights: LayerWeights = None,
    pooling: Pooling = _I.pooling,
    preserve_colors: PreserveColors = _I.preserve_colors,
    model: Model = _L.model,
    weights: Weights = None,
    device: Device = _I.device,
    precision: Precision = _I.precision,
    scales: Scales = _I.scales,
    fps: Annotated[str | None, typer.Option(help="Frame rate of image sequences.")] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """A contact sheet of a few stylized frames (inputs above, results below) to pick weights.

    Several --style-weight values give one labelled row of results per value.
    """
    options = dict(locals())
    options.pop("count")
    sweep = parse_sweep(options.pop("style_weight"), "--style-weight")
    settings = settings_from_options({**options, "style_weight": sweep[0]})
    for value in sweep[1:]:  # each value checked before any frame is rendered
        replace(settings.loss, style_weight=value).validate()
    check_output_image(output, overwrite)
    if not 1 <= count <= 12:
        raise OptionError(f"--count must be in 1..12, got {count}")
    source = open_source(input, settings.video.fps)
    check_not_inputs({"-o": output}, [*input_files(source), *style, *_weights(weights)])
    engine = make_engine(style, settings, weights)
    indices = pick_frames(source.frame_count, count)
    with ProgressReporter(quiet, unit="frame", total=len(indices) * len(sweep)) as reporter:
        sheet = contact_sheet(engine, source, indices, reporter, sweep)
    write_image(output, sheet)
    if not quiet:
        print(f"wrote {output}", file=sys.stderr)


def main() -> None:
    """Console entry point: NstError becomes one line on stderr and exit code 1, a usage error
    (click's) one line and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # `nst-video` alone: the help, as click does
        else:
            print(f"nst-video: error: {_usage_line(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except ClickException as exc:
        print(f"nst-video: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:  # EOF on a prompt
        sys.exit(1)
    except NstError as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"nst-video: error: {message}", file=sys.stderr)
        sys.exit(1)
    # Outside standalone mode click returns typer.Exit's code (130 after a stray Ctrl-C).
    sys.exit(code if isinstance(code, int) else 0)


def _usage_line(exc: UsageError) -> str:
    """Click's message on one line, with the command whose --help explains it."""
    message = " ".join(exc.format_message().split())
    command = "nst-video"  # also under `python -m nst_video`, whose program name is that
    if exc.ctx is not None:
        command += exc.ctx.command_path[len(exc.ctx.find_root().command_path) :]
    return f"{message.rstrip('.')}; see {command} --help"
