"""VGG16/VGG19 feature extractors with named layers, built from a `features.N.*` state dict
(core/weights.py says where that comes from)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from nst_video.config import check_padding, check_pooling
from nst_video.errors import WeightsError
from nst_video.models import (
    CAFFE_MEAN_BGR,
    DEFAULT_MODEL,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ModelSpec,
    check_layers,
    model_spec,
    models_fitting,
)

# torch's names for config.PADDINGS: zero is what the networks were trained with; replicate
# continues the image (and every feature map) past its edge instead.
PADDING_MODES = {"zero": "zeros", "replicate": "replicate"}


def _build_features(
    cfg: tuple[int | str, ...], depth: int, pooling: str, padding: str = "zero"
) -> nn.Sequential:
    """torchvision's `features` Sequential cut to `depth` modules (indices keep their keys);
    `padding` fills each convolution's 1 px border (config.PADDINGS)."""
    mode = PADDING_MODES[padding]
    modules: list[nn.Module] = []
    channels = 3
    for item in cfg:
        if item == "M":
            # Gatys et al. found average pooling gives smoother results; max is torchvision's own.
            pool = nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2)
            modules.append(pool)
        else:
            conv = nn.Conv2d(channels, int(item), 3, padding=1, padding_mode=mode)
            modules += [conv, nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*modules[:depth])


class VGGFeatures(nn.Module):
    """Frozen VGG that returns the activations of named layers for RGB images in [0, 1].

    The model's own input convention (torchvision's normalization or Caffe's BGR 0-255 minus the
    mean) is applied inside, so callers always pass RGB in [0, 1].
    """

    def __init__(
        self,
        state_dict: Mapping[str, Tensor],
        layers: Iterable[str],
        pooling: str = "avg",
        model: str = DEFAULT_MODEL,
        padding: str = "zero",
    ):
        super().__init__()
        check_pooling(pooling)
        check_padding(padding)
        self.spec = model_spec(model)
        wanted = tuple(dict.fromkeys(layers))
        check_layers(wanted, model)
        if not wanted:
            raise WeightsError("no VGG layer requested")
        self.layers = wanted
        names = self.spec.layer_names
        depth = max(names.index(name) for name in wanted) + 1
        self.features = _build_features(self.spec.cfg, depth, pooling, padding)
        _load_features(self.features, state_dict, self.spec)
        if self.spec.caffe:
            # x * 255 - mean, in BGR order: scale and shift per channel after the flip below.
            scale, shift = (255.0,) * 3, CAFFE_MEAN_BGR
        else:
            scale = tuple(1.0 / s for s in IMAGENET_STD)
            shift = tuple(m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True))
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1))
        self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def preprocess(self, image: Tensor) -> Tensor:
        """RGB in [0, 1] to the network's input convention."""
        if self.spec.caffe:
            image = image.flip(1)  # RGB -> BGR
        return image * self.scale - self.shift

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        x = self.preprocess(image)
        out: dict[str, Tensor] = {}
        for name, module in zip(self.spec.layer_names, self.features, strict=False):
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out


def _conv_count(state_dict: Mapping[str, Tensor]) -> int:
    """Convolutions in a `features.N.weight` dict (4-d weights; classifier keys don't count)."""
    return sum(
        1
        for key, value in state_dict.items()
        if key.startswith("features.") and key.endswith(".weight") and value.dim() == 4
    )


def _architecture_hint(state_dict: Mapping[str, Tensor], spec: ModelSpec) -> str:
    fitting = models_fitting(_conv_count(state_dict))
    if not fitting or spec.name in fitting:
        return f"expected the {spec.name} state dict ({spec.file_name})"
    choices = " or ".join(f"--model {name}" for name in fitting)
    return f"this file holds a {model_spec(fitting[0]).family.upper()}; pass {choices}"


def _load_features(
    features: nn.Sequential, state_dict: Mapping[str, Tensor], spec: ModelSpec
) -> None:
    """Copy `features.*` tensors (any classifier keys are ignored) after checking they fit."""
    count = _conv_count(state_dict)
    if count != spec.conv_count and models_fitting(count):
        raise WeightsError(
            f"weights do not fit --model {spec.name}: " + _architecture_hint(state_dict, spec)
        )
    own = features.state_dict()
    picked: dict[str, Tensor] = {}
    for key, param in own.items():
        source = state_dict.get(f"features.{key}")
        if source is None:
            raise WeightsError(
                f"weights file lacks features.{key}; " + _architecture_hint(state_dict, spec)
            )
        if tuple(source.shape) != tuple(param.shape):
            raise WeightsError(
                f"features.{key} has shape {tuple(source.shape)}, {spec.name} needs "
                f"{tuple(param.shape)}; " + _architecture_hint(state_dict, spec)
            )
        picked[key] = source.float()
    features.load_state_dict(picked)


def random_state_dict(seed: int = 0, model: str = DEFAULT_MODEL) -> dict[str, Tensor]:
    """A `features.*` state dict with random (Kaiming) weights, for tests and benchmarks."""
    spec = model_spec(model)
    generator = torch.Generator().manual_seed(seed)
    features = _build_features(spec.cfg, len(spec.layer_names), "max")
    state: dict[str, Tensor] = {}
    for key, param in features.state_dict().items():
        if key.endswith("weight"):
            fan_in = param[0].numel()
            value = torch.randn(param.shape, generator=generator) * (2.0 / fan_in) ** 0.5
        else:
            value = torch.zeros(param.shape)
        state[f"features.{key}"] = value
    return state
