"""Python API: `stylize_image` for one picture, `stylize_video` for a clip (resumable, through
the pipeline's own entry point), and the engine helpers the CLI shares (`make_engine`,
`stylize_batch` for many pictures with shared targets).

The API prints nothing: progress reaches the caller as the engine's event dataclasses
(nst_video.progress), and every refusal is an NstError whose message names keywords
(`weights=`), not the command line's flags (`--weights`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nst_video.config import (
    COMMANDS,
    IMAGE,
    VIDEO,
    Settings,
    command_settings,
    image_long_side,
    settings_from_flat,
)
from nst_video.core.device import configure_backend, pick_device, resolve_precision
from nst_video.core.engine import (
    Engine,
    Stylized,
    check_frame_size,
    noise_like,
    validate_settings,
)
from nst_video.core.weights import load_state_dict
from nst_video.errors import InputError, NstError, OptionError, WeightsError, unknown_choice
from nst_video.media.files import refuse_existing
from nst_video.media.images import pil_to_rgb, read_image, write_image
from nst_video.media.paths import check_inputs
from nst_video.models import weights_source
from nst_video.pipeline.job import render_video
from nst_video.pipeline.preflight import Parallel
from nst_video.pipeline.styling import absolute_styling, styles_of
from nst_video.progress import Callback, ImageDone, ImageFailed, ignore
from nst_video.video.resize import resize_long_side, resize_to
from nst_video.workdir.manifest import Job

# What an image argument may be: a file, an HxWx3 array (uint8, or float in [0, 1]), a PIL image.
ImageInput = str | os.PathLike[str] | np.ndarray | Image.Image
PathInput = str | os.PathLike[str]


# --- inputs ----------------------------------------------------------------------------------


def as_rgb(image: object, what: str = "image") -> np.ndarray:
    """`image` as the HxWx3 uint8 RGB array the engine takes; `what` names the argument in
    messages. A path reads as the CLI reads it, a PIL image as its file would read."""
    if isinstance(image, str | os.PathLike):
        return read_image(image)
    if isinstance(image, Image.Image):
        return pil_to_rgb(image)
    if isinstance(image, np.ndarray):
        return _array_rgb(image, what)
    raise InputError(
        f"{what}= takes a file path, an HxWx3 numpy array or a PIL image, "
        f"got {type(image).__name__}"
    )


def _array_rgb(array: np.ndarray, what: str) -> np.ndarray:
    if array.ndim != 3 or array.shape[2] != 3 or not array.size:
        raise InputError(f"{what}= array must be HxWx3 (RGB), got shape {array.shape}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{what}= array must be uint8 (0-255) or float (0-1), got {array.dtype}")
    low, high = float(np.min(array)), float(np.max(array))
    if not (low >= 0.0 and high <= 1.0):  # also NaN
        raise InputError(
            f"{what}= float array must hold values in [0, 1], got {low:g}..{high:g}; "
            "divide 0-255 values by 255"
        )
    # Rounded to 8 bits, as a file holding the image would be: equal inputs, equal results.
    return np.rint(array * 255.0).astype(np.uint8)


def style_list(style: object) -> list[Any]:
    """One style (any ImageInput) or a non-empty sequence of them."""
    if isinstance(style, str | os.PathLike | np.ndarray | Image.Image):
        return [style]
    if isinstance(style, Sequence) and style:
        return list(style)
    if isinstance(style, Sequence):
        raise InputError("style= is empty; give an image or a list of images")
    raise InputError(
        f"style= takes an image (path, HxWx3 numpy array, PIL image) or a list of them, "
        f"got {type(style).__name__}"
    )


# --- keywords --------------------------------------------------------------------------------


def resolve_settings(
    settings: Settings | None, keywords: Mapping[str, Any], command: str, function: Any
) -> Settings:
    """`settings` (default: `command`'s defaults) with the flat keywords applied, by the
    settings' metadata (config.settings_from_flat). A keyword that is neither a setting of
    `command` nor a parameter of `function` is refused with the valid ones listed."""
    _require(settings, Settings | None, "settings", "a nst_video.Settings")
    known = command_settings(command)
    unknown = [key for key in keywords if key not in known]
    if unknown:
        own = [
            p.name
            for p in inspect.signature(function).parameters.values()
            if p.kind == p.KEYWORD_ONLY
        ]
        raise unknown_choice(f"{function.__name__} keyword", unknown[0], [*own, *known])
    return settings_from_flat(settings, command=command, **keywords)


# --- errors in API terms ---------------------------------------------------------------------

# `--flag` in a message, and the word after it, which is its value when it looks like one.
_FLAG = re.compile(r"(?<![\w-])(?P<flag>--[a-z][a-z0-9-]*)(?P<next> [^\s;,)]+)?")
# The API's own switches (stylize_video's); the settings' come from their metadata.
_SWITCHES = ("overwrite", "restart")


def api_terms(message: str) -> str:
    """A message written for the command line, with each `--flag` as the keyword this API
    takes (`--weights FILE` -> `weights=FILE`, `--overwrite` -> `overwrite=True`,
    `--no-audio` -> `audio=False`)."""
    keywords, words = _keywords_of_flags()

    def keyword(match: re.Match[str]) -> str:
        text = keywords.get(match["flag"], match["flag"][2:].replace("-", "_") + "=")
        after = match["next"] or ""
        word = after.strip().rstrip(":.")
        takes = text.endswith("=")
        if takes and word and (any(c.isdigit() for c in word) or word.isupper() or word in words):
            return text + after.strip()  # `--size 64` -> `size=64`, `--init flow` -> `init=flow`
        return text + after

    return _FLAG.sub(keyword, message)


@functools.cache
def _keywords_of_flags() -> tuple[dict[str, str], frozenset[str]]:
    """Each option's flag as a keyword (`--no-audio`: `audio=False`, a yes/no setting's:
    `name=True`, others: `name=` for the value to follow), and the words options take."""
    keywords = {f"--{name}": f"{name}=True" for name in _SWITCHES}
    words: set[str] = set()
    for command in COMMANDS:
        for name, setting in command_settings(command).items():
            cli = setting.cli
            if cli and cli.invert:
                keywords[setting.flag] = f"{name}=False"
            else:
                keywords[setting.flag] = f"{name}=True" if setting.hint is bool else f"{name}="
            words.update(cli.choices or () if cli else ())
    return keywords, frozenset(words)


@contextlib.contextmanager
def api_errors() -> Iterator[None]:
    """Refusals raised inside, re-raised (same class, same traceback) in API terms."""
    try:
        yield
    except NstError as exc:
        exc.args = (api_terms(str(exc)),)
        raise


# --- engines ---------------------------------------------------------------------------------


def make_engine(
    styles: Sequence[ImageInput],
    settings: Settings,
    weights: str | Path | None = None,
    callback: Callback = ignore,
) -> Engine:
    """Validate settings and paths, load weights and style images, and build the engine.

    `callback` hears a Message when the weights are fetched first."""
    validate_settings(settings, len(styles))
    check_inputs(styles, weights)
    style_images = [as_rgb(s, "style") for s in styles]
    device = pick_device(settings.compute.device)
    precision = resolve_precision(settings.compute.precision, device)
    configure_backend(device, precision)  # process-wide: the app's choice
    model = settings.loss.model
    engine = Engine(load_state_dict(weights, model, callback), style_images, settings, device)
    if not engine.network_is_finite():
        raise WeightsError(
            f"the network produced NaN or infinite values with the weights from "
            f"{weights_source(weights, model)}: the file is damaged or not {model}'s; "
            "download it again or pass another --weights"
        )
    return engine


def engine_for(job: Job) -> Engine:
    """The engine of a render job (its styles, settings and weights): the factory the CLI gives
    render_video, which also sends it to Ray tasks."""
    return make_engine(list(job.styles), job.settings, job.weights)


def initial_image(content: np.ndarray, init: str, seed: int) -> np.ndarray:
    """Start point: the content, seeded noise, or an image file resized to the content."""
    if init == "content":
        return content
    if init == "noise":
        return noise_like(content, seed)
    return resize_to(read_image(init), content.shape)


def stylize_array(engine: Engine, content: np.ndarray, callback: Callback = ignore) -> Stylized:
    image = engine.image
    layers = engine.loss.content_layers + engine.loss.style_layers
    long_side = image_long_side(image.size, max(content.shape[:2]))
    check_frame_size(content.shape[:2], long_side, layers, image)
    content = resize_long_side(content, long_side)
    init = initial_image(content, image.init, image.seed)
    return engine.stylize(content, init, engine.optim.iterations, callback=callback)


# --- images ----------------------------------------------------------------------------------


def stylize_image(
    content: ImageInput,
    style: ImageInput | Sequence[ImageInput],
    *,
    settings: Settings | None = None,
    weights: PathInput | None = None,
    progress: Callback | None = None,
    **keywords: Any,
) -> np.ndarray:
    """Stylize one image; returns it as an HxWx3 uint8 RGB array.

    `content` and `style` (one image or a list, blended) are each a file path, an HxWx3 numpy
    array (uint8, or float in [0, 1]) or a PIL image. `keywords` are the settings by their
    flat names (`style_weight=5, iterations=200, size=256, model="vgg16"`); they override
    `settings` (nested Settings, default: the defaults). `weights` is a local file for the
    model (default: $NST_VIDEO_WEIGHTS, else its download, fetched once and cached).
    `progress`, if given, receives the engine's events (nst_video.progress).
    """
    with api_errors():
        callback = _callback(progress)
        resolved = resolve_settings(settings, keywords, IMAGE, stylize_image)
        styles = style_list(style)
        image = as_rgb(content, "content")  # before the weights load: a bad input costs nothing
        engine = make_engine(styles, resolved, _path_arg(weights, "weights"), callback)
        return stylize_array(engine, image, callback).image


# --- videos ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoResult:
    """What stylize_video did. `rendered` counts the frame renders of this call (with
    passes > 1, each pass's); `reused` the clip's frames that were finished before it."""

    output: str
    work_dir: Path
    total: int
    rendered: int
    reused: int
    seconds: float
    report: Path | None


def stylize_video(
    input: PathInput,
    style: PathInput | Sequence[PathInput],
    output: PathInput,
    *,
    work_dir: PathInput | None = None,
    progress: Callback | None = None,
    settings: Settings | None = None,
    weights: PathInput | None = None,
    report: PathInput | None = None,
    overwrite: bool = False,
    restart: bool = False,
    workers: int = 1,
    ray_address: str | None = None,
    **keywords: Any,
) -> VideoResult:
    """Stylize a clip or image sequence into `output` (a video file, or a folder of PNG frames
    when given as a string ending in '/'), as `nst-video video` does, with its checks.

    Resumable: the work directory (`work_dir`, default OUTPUT.nst-work) keeps each finished
    frame; calling again with the same arguments continues, reusing them. Other settings are
    refused unless `restart=True`; files nst-video did not write are never replaced unless
    `overwrite=True`. `keywords` are the video settings by their flat names
    (`iterations=100, first_iterations=300, size=256, style_weight=5`), over `settings`.
    `report` writes per-frame statistics (JSON lines). `progress` receives the events.
    """
    began = time.perf_counter()
    with api_errors():
        callback = _callback(progress)
        resolved = resolve_settings(settings, keywords, VIDEO, stylize_video)
        styles = [_style_path(s) for s in style_list(style)]
        for name, value in (("overwrite", overwrite), ("restart", restart)):
            _require(value, bool, name, "True or False")
        _require(workers, int, "workers", "a whole number")
        _require(ray_address, str | None, "ray_address", "an address (text)")
        job = video_job(
            _path_arg(input, "input", text=True),
            styles,
            _path_arg(output, "output", text=True),
            _path_arg(weights, "weights"),
            _path_arg(report, "report"),
            resolved,
        )
        done = render_video(
            job,
            _path_arg(work_dir, "work_dir"),
            engine_for,
            overwrite=overwrite,
            restart=restart,
            callback=callback,
            parallel=Parallel(workers, ray_address),
        )
    return VideoResult(
        output=done.output,
        work_dir=done.work_dir,
        total=done.total,
        rendered=done.rendered,
        reused=max(done.total - done.rendered, 0),
        seconds=time.perf_counter() - began,
        report=Path(job.report) if job.report else None,
    )


def _style_path(style: object) -> PathInput:
    if isinstance(style, str | os.PathLike):
        return style
    raise InputError(
        f"style= of a video must be image files, got {type(style).__name__}: the work directory "
        "records them to resume; save the image first"
    )


def _path_arg(value: object, name: str, text: bool = False) -> Any:
    """A path argument as a Path (None stays None; `text`: as given, str, for an input that
    may be a pattern or an output whose trailing '/' means frames)."""
    if value is None and not text:
        return None
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        got = repr(value) if isinstance(value, str) else type(value).__name__
        raise OptionError(f"{name}= takes a path (str or pathlib.Path), got {got}")
    return os.fspath(value) if text else Path(value)


def _callback(progress: object) -> Callback:
    if progress is None:
        return ignore
    if not callable(progress):
        raise OptionError(
            f"progress= takes a function called with each event, got {type(progress).__name__}"
        )
    return progress  # type: ignore[return-value]


def _require(value: object, kind: Any, name: str, what: str) -> None:
    """An API argument of the wrong type: an OptionError naming it, not a TypeError later."""
    wrong_bool = isinstance(value, bool) and kind is int  # True is an int to Python
    if wrong_bool or not isinstance(value, kind):
        plain = value is None or isinstance(value, str | int | float)
        got = repr(value) if plain else type(value).__name__
        raise OptionError(f"{name}= takes {what}, got {got}")


def video_job(
    input: PathInput,
    styles: Sequence[PathInput],
    output: PathInput,
    weights: PathInput | None,
    report: PathInput | None,
    settings: Settings,
) -> Job:
    """A video's render job (the CLI's `video` and stylize_video), its paths absolute so that
    a resume works from any directory; with a style schedule (style_at) and no `styles`, the
    schedule's style images."""
    video = absolute_styling(settings.video)
    settings = replace(settings, video=video)
    return Job(
        absolute(input),
        tuple(absolute(s) for s in styles) or tuple(styles_of(video, [])),
        absolute(output),
        absolute(weights) if weights is not None else None,
        absolute(report) if report is not None else None,
        settings,
    )


def absolute(path: PathInput) -> str:
    """Absolute path, keeping a trailing separator (it means 'directory output')."""
    text = os.fspath(path)
    resolved = os.path.abspath(text)
    return resolved + os.sep if text.endswith(("/", os.sep)) else resolved


# --- batches (the CLI's `image` with several inputs) ------------------------------------------


@dataclass(frozen=True)
class BatchItem:
    content: Path
    output: Path
    style_weight: float | None = None  # None: the engine's; else a sweep's value (sweep_items)


def sweep_path(output: Path, style_weight: float) -> Path:
    """Where a style weight sweep writes one value's result: out.png -> out.sw3.png."""
    return output.with_name(f"{output.stem}.sw{style_weight:g}{output.suffix}")


def sweep_items(content: Path, output: Path, style_weights: Sequence[float]) -> list[BatchItem]:
    """One content image stylized once per style weight, each to its sweep_path."""
    return [BatchItem(content, sweep_path(output, w), w) for w in style_weights]


def stylize_batch(
    engine: Engine, items: Sequence[BatchItem], overwrite: bool = False, callback: Callback = ignore
) -> list[ImageFailed]:
    """Stylize each item with the engine's cached targets (at the item's style weight, if it
    has one); a bad file is reported and skipped."""
    failures: list[ImageFailed] = []
    for item in items:
        start = time.perf_counter()
        try:
            refuse_existing(item.output, overwrite)
            weighted = (
                engine if item.style_weight is None else engine.with_style_weight(item.style_weight)
            )
            done = stylize_array(weighted, read_image(item.content), callback)
            write_image(item.output, done.image)
        except NstError as exc:
            failure = ImageFailed(str(item.content), str(exc))
            failures.append(failure)
            callback(failure)
            continue
        callback(
            ImageDone(
                str(item.content),
                str(item.output),
                done.optimization.evaluations,
                time.perf_counter() - start,
                done.optimization.loss,
            )
        )
    return failures
