"""Region-guided style targets (Gatys et al. 2017, "Controlling Perceptual Factors in Neural
Style Transfer"): each style's Gram target applies to its region of the frame only.

A region is a guide mask in [0, 1] at the frame's size. At each style layer it is shrunk to the
layer's grid by area averaging (adaptive average pooling: the share of each feature cell the
region covers), and the layer's guided Gram is the mask-weighted mean of the per-position outer
products, sum_p m_p f_p f_p^T / sum_p m_p: a 0/1 mask gives the plain Gram of the region's
features, a uniform mask the plain Gram of all. Each region's term is weighted by its share of
the frame (mean of its mask), so masks covering the frame once weigh as one unmasked style, and
a keep mask's (1 - mask) guide weights the style term by (1 - mask) position by position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from nst_video.core.losses import _Gram, relative_sq_error

# A region smaller than this share of a layer's cells is absent there: its Gram is undefined.
EMPTY = 1e-6


def layer_mask(mask: Tensor, shape: tuple[int, int]) -> Tensor:
    """(1, 1, H, W) mask shrunk to a layer's (h, w) grid by area averaging."""
    # Area averaging: a cell's weight is the share of it inside the region, as average pooling
    # shrinks the features themselves.
    return F.adaptive_avg_pool2d(mask, shape)


def guided_gram(features: Tensor, mask: Tensor) -> Tensor:
    """Gram matrix of (1, C, h, w) features weighted by a (1, 1, h, w) mask and normalized by
    the mask's mass: sum_p m_p f_p f_p^T / sum_p m_p."""
    _, channels, height, width = features.shape
    if features.is_contiguous(memory_format=torch.channels_last):
        rows = features.permute(0, 2, 3, 1).reshape(height * width, channels)
    else:
        rows = features.reshape(channels, height * width).t()
    weights = mask.reshape(height * width, 1)
    # sqrt(m) on both factors of each outer product is m on the product.
    return _Gram.apply(rows * weights.sqrt(), weights.sum())


@dataclass(frozen=True)
class GuidedTargets:
    """Per-style Gram targets, each for its own region; built per frame (the masks change)."""

    grams: Sequence[Mapping[str, Tensor]]  # one {layer: Gram} per region
    masks: Sequence[Tensor]  # one (1, 1, H, W) mask per region, at the canvas's size
    layer_weights: Mapping[str, float]

    def loss(self, features: Mapping[str, Tensor]) -> Tensor:
        total = torch.zeros((), device=self.masks[0].device)
        for grams, mask in zip(self.grams, self.masks, strict=True):
            share = mask.mean()
            if float(share) < EMPTY:
                continue
            for name, weight in self.layer_weights.items():
                layer = features[name]
                m = layer_mask(mask, layer.shape[-2:])
                if float(m.mean()) < EMPTY:
                    continue
                error = relative_sq_error(guided_gram(layer, m), grams[name])
                total = total + share * weight * error
        return total


def region_masks(
    style_masks: Sequence[Tensor] | None, keep: Tensor | None, n_styles: int, like: Tensor
) -> list[Tensor]:
    """One guide per style: its --style-mask (or the whole frame), times (1 - keep mask)."""
    ones = torch.ones_like(like)
    masks = list(style_masks) if style_masks is not None else [ones] * n_styles
    if keep is not None:
        masks = [m * (1.0 - keep) for m in masks]
    return masks
