"""Loss terms as pure functions, plus the style targets a render computes once and reuses.

Every term is normalized so that its value is a dimensionless relative error: the defaults then
give a comparable degree of stylization across image sizes, style images and weight files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


class _Gram(torch.autograd.Function):
    """X^T X / n for X = (positions, channels), with a one-matmul backward: autograd's own treats
    the two operands as distinct and spends a second C x C x n product on the same gradient."""

    @staticmethod
    def forward(ctx: Any, rows: Tensor, positions: int) -> Tensor:
        ctx.save_for_backward(rows)
        ctx.positions = positions
        return rows.t() @ rows / positions

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (rows,) = ctx.saved_tensors
        # Scaling the C x C factor, not the C x n product, saves a pass over the features.
        sym = (grad + grad.t()) / ctx.positions
        if rows.stride(0) == 1:  # a transposed view of (C, n) features: answer in that layout
            return (sym @ rows.t()).t(), None
        return rows @ sym, None


def gram(features: Tensor) -> Tensor:
    """Gram matrix of (1, C, H, W) features, averaged over positions (size-independent).

    Channels-last features (the engine's layout on every device) are already a contiguous
    (positions, channels) matrix X, and X^T X runs 1.5-2.5x faster on the CPU than the F F^T of
    the (C, n) layout for the wide shallow layers (64 x 49152 at 256 px); both are read as views.
    """
    _, channels, height, width = features.shape
    if features.is_contiguous(memory_format=torch.channels_last):
        rows = features.permute(0, 2, 3, 1).reshape(height * width, channels)
    else:
        rows = features.reshape(channels, height * width).t()
    return _Gram.apply(rows, height * width)


def relative_sq_error(value: Tensor, target: Tensor) -> Tensor:
    """||value - target||^2 / ||target||^2: 1.0 means 'as far as the target is from zero'."""
    # Departure from Gatys: normalizing by the target's energy replaces per-layer magic constants.
    return (value - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    return relative_sq_error(features, target)


def style_loss(
    grams: Mapping[str, Tensor], targets: Mapping[str, Tensor], layer_weights: Mapping[str, float]
) -> Tensor:
    """Weighted sum of relative Gram errors; layer weights are used as given."""
    total = sum(
        weight * relative_sq_error(grams[name], targets[name])
        for name, weight in layer_weights.items()
    )
    return total if isinstance(total, Tensor) else torch.zeros(())


def tv_loss(image: Tensor) -> Tensor:
    """Mean squared difference between neighbouring pixels (image in [0, 1])."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def temporal_loss(image: Tensor, warped: Tensor, mask: Tensor) -> Tensor:
    """Ruder et al. 2016 short-term loss: mean over pixels and channels of c * (x - w)^2.

    `mask` is (1, 1, H, W) consistency weights in [0, 1]; pixels are in [0, 1], not 0-255.
    """
    return (mask * (image - warped).pow(2)).mean()


def range_loss(image: Tensor) -> Tensor:
    """Mean squared distance of the pixels from [0, 1].

    Departure from the seed tutorial: instead of clamping inside the L-BFGS closure (which breaks
    its line search and history), out-of-range pixels get a smooth penalty L-BFGS can follow.
    """
    return (image - image.clamp(0.0, 1.0)).pow(2).mean()


@dataclass(frozen=True)
class StyleTargets:
    """Blended Gram targets per style layer for one output size; reused for every frame."""

    grams: dict[str, Tensor]
    layer_weights: dict[str, float]

    def loss(self, features: Mapping[str, Tensor]) -> Tensor:
        grams = {name: gram(features[name]) for name in self.grams}
        return style_loss(grams, self.grams, self.layer_weights)


def feature_mean(features: Tensor) -> Tensor:
    """Mean activation per channel of (1, C, H, W) features: (C,)."""
    return features.mean(dim=(0, 2, 3))


# Eigenvalues below this fraction of the largest are treated as this: the square root's slope
# is infinite at 0, and fp32 eigenvalues of a rank-deficient covariance come out slightly
# negative or tiny at random.
_EIGEN_FLOOR = 1e-7


def _sqrt_psd(matrix: Tensor) -> Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = torch.linalg.eigh(matrix)
    values = values.clamp_min(0.0).sqrt()
    return (vectors * values) @ vectors.t()


@dataclass(frozen=True)
class GaussianTarget:
    """A style layer's activations as a Gaussian: its mean, the square root of its covariance,
    and |mean|^2 + tr(cov), the squared W2 distance of the Gaussian from a point at zero."""

    mean: Tensor
    cov_sqrt: Tensor
    cov_trace: Tensor
    energy: Tensor

    @classmethod
    def from_moments(cls, mean: Tensor, second_moment: Tensor) -> GaussianTarget:
        """From the channel means and the mean of x x^T (the Gram matrix of `gram`): the
        moments blend linearly, so a blend of styles is the mixture's Gaussian."""
        cov = second_moment - torch.outer(mean, mean)
        cov = (cov + cov.t()) / 2
        trace = torch.trace(cov)
        return cls(mean, _sqrt_psd(cov), trace, mean.pow(2).sum() + trace)


def w2_loss(features: Tensor, target: GaussianTarget) -> Tensor:
    """Squared 2-Wasserstein distance between Gaussian fits of `features`' positions and the
    target, relative to the target's distance from zero (as relative_sq_error is):

        |m - m_t|^2 + tr(C) + tr(C_t) - 2 tr((C_t^1/2 C C_t^1/2)^1/2)

    The mean-plus-covariance style loss of crowsonkb/style-transfer-pytorch (our own
    derivation): unlike the Gram matrix it does not mix the mean into the covariance.
    """
    mean = feature_mean(features)
    cov = gram(features) - torch.outer(mean, mean)
    product = target.cov_sqrt @ cov @ target.cov_sqrt
    values = torch.linalg.eigvalsh((product + product.t()) / 2)
    floor = values.detach().abs().max() * _EIGEN_FLOOR + 1e-12
    cross = values.clamp_min(floor).sqrt().sum()
    distance = (mean - target.mean).pow(2).sum() + torch.trace(cov) + target.cov_trace
    return (distance - 2 * cross) / target.energy.clamp_min(1e-12)


@dataclass(frozen=True)
class W2Targets:
    """Gaussian targets per style layer (--style-loss w2); the same interface as StyleTargets."""

    gaussians: dict[str, GaussianTarget]
    layer_weights: dict[str, float]

    def loss(self, features: Mapping[str, Tensor]) -> Tensor:
        total = sum(
            weight * w2_loss(features[name], self.gaussians[name])
            for name, weight in self.layer_weights.items()
        )
        return total if isinstance(total, Tensor) else torch.zeros(())


def blend_grams(
    per_style: Sequence[Mapping[str, Tensor]], blend: Sequence[float]
) -> dict[str, Tensor]:
    """Weighted mean of several styles' Gram matrices (weights normalized to sum to 1)."""
    total = float(sum(blend))
    return {
        name: sum(w / total * grams[name] for w, grams in zip(blend, per_style, strict=True))
        for name in per_style[0]
    }


def normalized_layer_weights(
    layers: Sequence[str], weights: Sequence[float] | None
) -> dict[str, float]:
    """Layer weights scaled to sum to 1, so the style weight means the same for any layer set."""
    raw = list(weights) if weights is not None else [1.0] * len(layers)
    total = float(sum(raw))
    return {name: w / total for name, w in zip(layers, raw, strict=True)}


# --- color handling for --preserve-colors (luminance-only transfer) ---------------------------

_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rgb_to_yiq(image: Tensor) -> Tensor:
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_YIQ).to(image), image)


def keep_colors(stylized: Tensor, content: Tensor) -> Tensor:
    """Luminance of the stylized image with the chrominance (I, Q) of the content."""
    y = rgb_to_yiq(stylized)[:, :1]
    iq = rgb_to_yiq(content)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp(0.0, 1.0)
