"""VGG19 feature extractor with named layers, loadable from torchvision's ImageNet weights."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from nst_video.errors import WeightsError, unknown_choice

# torchvision's ImageNet VGG19; the 8 hex digits in the name are the sha256 prefix torch.hub checks.
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
WEIGHTS_ENV = "NST_VIDEO_WEIGHTS"
WEIGHTS_URL_ENV = "NST_VIDEO_WEIGHTS_URL"
POOLING = ("avg", "max")

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's vgg19 "E" configuration: channels per conv, "M" for a pooling layer.
_CFG = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    block, conv = 1, 0
    for item in _CFG:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()


def check_layers(layers: Iterable[str]) -> None:
    for name in layers:
        if name not in LAYER_NAMES:
            raise unknown_choice("VGG19 layer", name, LAYER_NAMES)


def _build_features(depth: int, pooling: str) -> nn.Sequential:
    """torchvision's `features` Sequential cut to `depth` modules (indices keep their keys)."""
    modules: list[nn.Module] = []
    channels = 3
    for item in _CFG:
        if item == "M":
            # Gatys et al. found average pooling gives smoother results; max is torchvision's own.
            pool = nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2)
            modules.append(pool)
        else:
            modules += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*modules[:depth])


class VGGFeatures(nn.Module):
    """Frozen VGG19 that returns the activations of named layers for images in [0, 1]."""

    def __init__(
        self, state_dict: Mapping[str, Tensor], layers: Iterable[str], pooling: str = "avg"
    ):
        super().__init__()
        if pooling not in POOLING:
            raise unknown_choice("pooling", pooling, POOLING)
        wanted = tuple(dict.fromkeys(layers))
        check_layers(wanted)
        if not wanted:
            raise WeightsError("no VGG layer requested")
        self.layers = wanted
        depth = max(LAYER_NAMES.index(name) for name in wanted) + 1
        self.features = _build_features(depth, pooling)
        _load_features(self.features, state_dict)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        x = (image - self.mean) / self.std
        out: dict[str, Tensor] = {}
        for name, module in zip(LAYER_NAMES, self.features, strict=False):
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out


def _load_features(features: nn.Sequential, state_dict: Mapping[str, Tensor]) -> None:
    own = features.state_dict()
    picked: dict[str, Tensor] = {}
    for key, param in own.items():
        source = state_dict.get(f"features.{key}")
        if source is None:
            raise WeightsError(
                f"weights file lacks features.{key}; expected torchvision's VGG19 state dict "
                "(vgg19-dcbb9e9d.pth)"
            )
        if tuple(source.shape) != tuple(param.shape):
            raise WeightsError(
                f"features.{key} has shape {tuple(source.shape)}, VGG19 needs "
                f"{tuple(param.shape)}; is this a VGG19 file?"
            )
        picked[key] = source.float()
    features.load_state_dict(picked)


def _read_weights_file(path: Path) -> Mapping[str, Tensor]:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a corrupt or foreign file
        raise WeightsError(f"cannot read weights file {path}: {type(exc).__name__}") from exc
    if not isinstance(data, Mapping):
        raise WeightsError(f"{path} does not hold a state dict")
    return data


def _download_weights(url: str) -> Mapping[str, Tensor]:
    try:
        return torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=True, check_hash=True, weights_only=True
        )
    except Exception as exc:  # URLError, HTTPError, hash mismatch (RuntimeError), OSError...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(
            f"cannot get VGG19 weights from {url} ({reason}); download vgg19-dcbb9e9d.pth "
            f"elsewhere and pass --weights FILE or set {WEIGHTS_ENV}=FILE"
        ) from exc


def load_state_dict(weights: str | Path | None = None) -> Mapping[str, Tensor]:
    """Weights from `weights`, else $NST_VIDEO_WEIGHTS, else torchvision's URL through torch.hub.

    The download is hash-checked and cached under $TORCH_HOME. Never falls back to random weights.
    """
    chosen = weights or os.environ.get(WEIGHTS_ENV)
    if chosen:
        return _read_weights_file(Path(chosen).expanduser())
    return _download_weights(os.environ.get(WEIGHTS_URL_ENV) or VGG19_URL)


def random_state_dict(seed: int = 0) -> dict[str, Tensor]:
    """A VGG19 `features.*` state dict with random (Kaiming) weights, for tests and benchmarks."""
    generator = torch.Generator().manual_seed(seed)
    features = _build_features(len(LAYER_NAMES), "max")
    state: dict[str, Tensor] = {}
    for key, param in features.state_dict().items():
        if key.endswith("weight"):
            fan_in = param[0].numel()
            value = torch.randn(param.shape, generator=generator) * (2.0 / fan_in) ** 0.5
        else:
            value = torch.zeros(param.shape)
        state[f"features.{key}"] = value
    return state
