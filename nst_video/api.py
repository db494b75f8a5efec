"""Python API: `stylize_image` for one picture, `stylize_batch` for many with shared targets."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from nst_video.config import ComputeConfig, Settings, image_long_side
from nst_video.core.device import configure_backend, pick_device, resolve_precision
from nst_video.core.engine import (
    Engine,
    Stylized,
    check_frame_size,
    noise_like,
    validate_settings,
)
from nst_video.core.weights import load_state_dict
from nst_video.errors import NstError, WeightsError
from nst_video.media.files import refuse_existing
from nst_video.media.images import read_image, write_image
from nst_video.media.paths import check_inputs
from nst_video.models import weights_source
from nst_video.progress import Callback, ImageDone, ImageFailed, ignore
from nst_video.video.resize import resize_long_side, resize_to
from nst_video.workdir.manifest import Job

ImageLike = str | Path | np.ndarray
COMPUTE_FIELDS = tuple(f.name for f in fields(ComputeConfig))


def _as_array(image: ImageLike) -> np.ndarray:
    return image if isinstance(image, np.ndarray) else read_image(image)


def make_engine(
    styles: Sequence[ImageLike],
    settings: Settings,
    weights: str | Path | None = None,
    callback: Callback = ignore,
) -> Engine:
    """Validate settings and paths, load weights and style images, and build the engine.

    `callback` hears a Message when the weights are fetched first."""
    validate_settings(settings, len(styles))
    check_inputs(styles, weights)
    style_images = [_as_array(s) for s in styles]
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


def stylize_image(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    settings: Settings | None = None,
    weights: str | Path | None = None,
    model: str | None = None,
    callback: Callback = ignore,
    **image_options: object,
) -> np.ndarray:
    """Stylize one image; returns HxWx3 uint8 RGB. `image_options` override ImageConfig fields,
    and ComputeConfig's (device, precision).

    `model` (one of models.MODEL_NAMES) overrides `settings.loss.model`; `weights` is a local
    file for that model (default: $NST_VIDEO_WEIGHTS, else its download, fetched once and
    cached).

    >>> out = stylize_image("photo.jpg", "starry.jpg", size=256)  # doctest: +SKIP
    """
    settings = settings or Settings()
    if model is not None:
        settings = replace(settings, loss=replace(settings.loss, model=model))
    compute = {k: image_options.pop(k) for k in COMPUTE_FIELDS if k in image_options}
    if compute:
        settings = replace(settings, compute=replace(settings.compute, **compute))
    if image_options:
        settings = replace(settings, image=replace(settings.image, **image_options))
    styles = [style] if isinstance(style, str | Path | np.ndarray) else list(style)
    engine = make_engine(styles, settings, weights, callback)
    return stylize_array(engine, _as_array(content), callback).image


@dataclass(frozen=True)
class BatchItem:
    content: Path
    output: Path


def stylize_batch(
    engine: Engine, items: Sequence[BatchItem], overwrite: bool = False, callback: Callback = ignore
) -> list[ImageFailed]:
    """Stylize each item with the engine's cached targets; a bad file is reported and skipped."""
    failures: list[ImageFailed] = []
    for item in items:
        start = time.perf_counter()
        try:
            refuse_existing(item.output, overwrite)
            done = stylize_array(engine, read_image(item.content), callback)
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
