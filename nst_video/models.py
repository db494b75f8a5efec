"""The VGG networks nst-video can use: architecture, layer names, input convention, download.

Torch-free on purpose: settings validate model and layer names without importing torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nst_video.errors import unknown_choice

# Channels per 3x3 convolution, "M" for a 2x2 pooling layer (torchvision's configurations D, E).
_VGG16_CFG = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip
_VGG19_CFG = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip

_TORCHVISION = "https://download.pytorch.org/models/"
# The PyTorch conversion of the original Caffe models used by neural-style-pt and jcjohnson's
# tools. Their 8 hex digits follow torchvision's naming (sha256 prefix, checked by torch.hub).
_CAFFE = "https://web.eecs.umich.edu/~justincj/models/"

WEIGHTS_ENV = "NST_VIDEO_WEIGHTS"
WEIGHTS_URL_ENV = "NST_VIDEO_WEIGHTS_URL"
DEFAULT_MODEL = "vgg19"

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB in [0, 1], torchvision's normalization
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # BGR in [0, 255], the VGG authors' training mean


@dataclass(frozen=True)
class ModelSpec:
    """One network: its layers and how its weights expect images."""

    name: str
    family: str  # "vgg16" or "vgg19": the architecture, independent of the input convention
    cfg: tuple[int | str, ...]
    file_name: str  # the default download's file name (its 8 hex digits are a sha256 prefix)
    caffe: bool  # True: BGR, 0-255, minus CAFFE_MEAN_BGR; False: RGB [0, 1], ImageNet mean/std

    @property
    def url(self) -> str:
        return (_CAFFE if self.caffe else _TORCHVISION) + self.file_name

    @property
    def layer_names(self) -> tuple[str, ...]:
        return layer_names(self.cfg)

    @property
    def conv_count(self) -> int:
        return sum(1 for item in self.cfg if item != "M")


def layer_names(cfg: tuple[int | str, ...]) -> tuple[str, ...]:
    """conv/relu/pool names in module order: conv1_1, relu1_1, conv1_2, ..., pool1, conv2_1..."""
    names: list[str] = []
    block, conv = 1, 0
    for item in cfg:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return tuple(names)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("vgg19", "vgg19", _VGG19_CFG, "vgg19-dcbb9e9d.pth", caffe=False),
        ModelSpec("vgg16", "vgg16", _VGG16_CFG, "vgg16-397923af.pth", caffe=False),
        ModelSpec("vgg19-caffe", "vgg19", _VGG19_CFG, "vgg19-d01eb7cb.pth", caffe=True),
        ModelSpec("vgg16-caffe", "vgg16", _VGG16_CFG, "vgg16-00b39a1b.pth", caffe=True),
    )
}
MODEL_NAMES = tuple(MODELS)
POOLING = ("avg", "max")


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise unknown_choice("model", name, MODEL_NAMES)
    return MODELS[name]


def check_layers(layers: tuple[str, ...], model: str) -> None:
    """Every name must be a layer of `model`; the message lists that model's layers."""
    spec = model_spec(model)
    for name in layers:
        if name not in spec.layer_names:
            raise unknown_choice(f"{spec.family.upper()} layer", name, spec.layer_names)


def models_fitting(conv_count: int) -> tuple[str, ...]:
    """The model names whose architecture has `conv_count` convolutions."""
    return tuple(name for name, spec in MODELS.items() if spec.conv_count == conv_count)


def weights_source(weights: str | Path | None, model: str = DEFAULT_MODEL) -> Path | str:
    """Where the weights come from: a local Path (`weights`, else $NST_VIDEO_WEIGHTS) or a URL."""
    chosen = weights or os.environ.get(WEIGHTS_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return os.environ.get(WEIGHTS_URL_ENV) or model_spec(model).url


def chosen_weights(weights: str | Path | None) -> Path | None:
    """The weights file in use: --weights, else $NST_VIDEO_WEIGHTS; None means the download."""
    source = weights_source(weights)
    return source if isinstance(source, Path) else None
