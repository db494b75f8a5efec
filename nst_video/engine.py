"""The Gatys engine: a frozen VGG, cached style targets, and one call that stylizes an image.

Works on numpy uint8 RGB at its boundary so the frame loop and the CLI never touch tensors; does
no file I/O and never prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nst_video import losses
from nst_video.config import Settings
from nst_video.frames.images import resize_long_side
from nst_video.optimize import OptimizeResult, optimize
from nst_video.progress import Callback, ignore
from nst_video.vgg import VGGFeatures


def pick_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_tensor(rgb: np.ndarray, device: torch.device) -> Tensor:
    """HxWx3 uint8 (or float in [0, 1]) to a (1, 3, H, W) float32 tensor in [0, 1]."""
    array = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None].to(device)


def to_uint8(image: Tensor) -> np.ndarray:
    array = image.detach()[0].clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()
    return np.rint(array * 255.0).astype(np.uint8)


@dataclass(frozen=True)
class Temporal:
    """Ruder et al.'s temporal target for one frame: previous output warped, and its weights."""

    warped: np.ndarray  # HxWx3 uint8 or float32 in [0, 1]
    mask: np.ndarray  # HxW float32 in [0, 1]


@dataclass(frozen=True)
class Stylized:
    image: np.ndarray  # HxWx3 uint8
    result: OptimizeResult


class Engine:
    """Holds the VGG and the style targets of one render; stylizes any number of images."""

    def __init__(
        self,
        state_dict: Mapping[str, Tensor],
        styles: Sequence[np.ndarray],
        settings: Settings,
        device: torch.device,
    ):
        self.settings = settings
        self.device = device
        loss = settings.loss
        self.vgg = VGGFeatures(
            state_dict, loss.content_layers + loss.style_layers, settings.image.pooling
        ).to(device)
        self.styles = list(styles)
        self.blend = list(settings.image.style_blend or [1.0] * len(self.styles))
        self.layer_weights = losses.normalized_layer_weights(
            loss.style_layers, loss.style_layer_weights
        )
        self._targets: dict[int, losses.StyleTargets] = {}
        self.style_passes = 0  # VGG passes spent on style images, for tests and reports

    def style_targets(self, long_side: int) -> losses.StyleTargets:
        """Gram targets for outputs whose long side is `long_side`, computed once and cached."""
        if long_side not in self._targets:
            scale = self.settings.image.style_scale
            per_style = [
                self._grams(resize_long_side(s, max(1, round(long_side * scale))))
                for s in self.styles
            ]
            grams = losses.blend_grams(per_style, self.blend)
            self._targets[long_side] = losses.StyleTargets(grams, self.layer_weights)
        return self._targets[long_side]

    @torch.no_grad()
    def _grams(self, style: np.ndarray) -> dict[str, Tensor]:
        self.style_passes += 1
        features = self.vgg(to_tensor(style, self.device))
        return {name: losses.gram(features[name]) for name in self.settings.loss.style_layers}

    def stylize(
        self,
        content: np.ndarray,
        init: np.ndarray,
        budget: int,
        temporal: Temporal | None = None,
        callback: Callback = ignore,
    ) -> Stylized:
        """Optimize from `init` (HxWx3) towards `content`'s features and the style targets."""
        content_t = to_tensor(content, self.device)
        targets = self.style_targets(max(content.shape[:2]))
        with torch.no_grad():
            features = self.vgg(content_t)
            content_targets = {n: features[n] for n in self.settings.loss.content_layers}
        loss_fn = self._loss_fn(content_targets, targets, temporal)
        result = optimize(
            loss_fn, to_tensor(init, self.device), budget, self.settings.optim, callback
        )
        image = result.image
        if self.settings.image.preserve_colors:
            image = losses.keep_colors(image, content_t)
        return Stylized(to_uint8(image), result)

    def _loss_fn(
        self,
        content_targets: dict[str, Tensor],
        targets: losses.StyleTargets,
        temporal: Temporal | None,
    ):
        weights = self.settings.loss
        warped = mask = None
        if temporal is not None:
            warped = to_tensor(temporal.warped, self.device)
            mask = torch.from_numpy(temporal.mask.astype(np.float32))[None, None].to(self.device)

        def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            features = self.vgg(x)
            terms = {
                "content": sum(
                    losses.content_loss(features[n], t) for n, t in content_targets.items()
                )
                / len(content_targets),
                "style": targets.loss(features),
                "tv": losses.tv_loss(x),
            }
            total = (
                weights.content_weight * terms["content"]
                + weights.style_weight * terms["style"]
                + weights.tv_weight * terms["tv"]
                + weights.range_weight * losses.range_loss(x)
            )
            if warped is not None:
                terms["temporal"] = losses.temporal_loss(x, warped, mask)
                total = total + weights.temporal_weight * terms["temporal"]
            return total, terms

        return loss_fn


def noise_like(content: np.ndarray, seed: int) -> np.ndarray:
    """Uniform noise image, reproducible across devices (drawn on the CPU)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(content.shape, generator=generator)
    return noise.numpy().astype(np.float32)
