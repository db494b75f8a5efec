"""The Gatys engine: a frozen VGG, cached style targets, and one call that stylizes an image.

Works on numpy uint8 RGB at its boundary so the frame loop and the CLI never touch tensors; does
no file I/O and never prints.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
from torch import Tensor

from nst_video.config import ImageConfig, Settings
from nst_video.core import guided, losses
from nst_video.core.device import pick_device, resolve_precision
from nst_video.core.optimize import LossFn, OptimizeResult, optimize
from nst_video.core.vgg import VGGFeatures
from nst_video.errors import OptionError
from nst_video.models import MODELS
from nst_video.progress import Callback, Event, Iteration, asking, ignore
from nst_video.video.flow import SideNeed
from nst_video.video.levels import level_long_sides, split_budget
from nst_video.video.resize import resize_long_side, resize_to, scaled_shape


def validate_settings(settings: Settings, n_styles: int, check_device: bool = True) -> None:
    """Every option check that needs no file, in one call, before any work starts."""
    settings.loss.validate()
    settings.optim.validate()
    settings.image.validate(n_styles)
    settings.compute.validate()
    if check_device:
        pick_device(settings.compute.device)


# --- smallest frames the network takes ---------------------------------------------------------

# The TV term compares neighbours along both axes, so a side needs 2 pixels.
MIN_SIDE = 2
# VGG19's layer names are a superset of VGG16's, with the poolings at the same places.
LAYER_NAMES = MODELS["vgg19"].layer_names


def poolings_before(layers: Sequence[str]) -> int:
    """Poolings between the input and the deepest of `layers`; each halves the size, rounding
    down, and fails on a side of 1 px, so the short side must be at least 2**poolings."""
    deepest = max(LAYER_NAMES.index(name) for name in layers)
    return sum(name.startswith("pool") for name in LAYER_NAMES[:deepest])


def check_frame_size(
    shape: tuple[int, int],
    long_side: int | None,
    layers: Sequence[str],
    image: ImageConfig | None = None,
    what: str = "the image",
    extra: SideNeed | None = None,
) -> None:
    """Refuse (one line, with the --size or --coarse-start that works) frames of `shape`
    (height, width) that are too small at `long_side` for the layers in use, at the coarsest
    coarse-to-fine level of `image`, or for `extra` (the pipeline's optical flow)."""
    poolings = poolings_before(layers)
    need = max(MIN_SIDE, 2**poolings)
    also = extra.side if extra is not None else 0
    if _fits(shape, long_side or max(shape), image, need, also):
        return
    h, w = scaled_shape(*shape, long_side or max(shape))
    deepest = max(layers, key=LAYER_NAMES.index)
    reason = f"{deepest} follows {poolings} poolings, so the short side must be at least {need} px"
    minimum = _smallest_long_side(shape, need, also)
    verb = "are" if what.endswith("s") else "is"
    coarsest = level_long_sides(long_side or max(shape), image)[0]
    if min(h, w) >= max(need, also):
        # Only the coarse level is too small: start it larger (or not at all).
        raise OptionError(
            f"{what} ({w}x{h} px) {verb} too small at the coarsest coarse-to-fine level "
            f"({coarsest} px long side): {reason}; use --coarse-start {minimum} or more, or 0"
        )
    if extra is not None and min(h, w) < extra.side:
        reason += f", and {extra.what} needs {extra.side} px"
    raise OptionError(
        f"{what} ({w}x{h} px) {verb} too small: {reason}; use --size {minimum} or more"
        " or shallower layers"
    )


def _fits(
    shape: tuple[int, int], long_side: int, image: ImageConfig | None, need: int, also: int
) -> bool:
    """Whether the coarsest level's short side reaches `need` and the full size's `also`."""
    coarsest = scaled_shape(*shape, level_long_sides(long_side, image)[0])
    full = scaled_shape(*shape, long_side)
    return min(coarsest) >= need and min(full) >= also


def _smallest_long_side(shape: tuple[int, int], need: int, also: int) -> int:
    """The smallest output long side that fits at one level (a coarse level can always be
    started there, or later)."""
    aspect = max(shape) / min(shape)
    # A lower bound: a side rounds up from (need - 0.5), never from below need - 1.
    lower = (need - 1) * aspect
    if also:
        lower = max(lower, (also - 1) * aspect)
    long_side = max(1, int(lower))
    while not _fits(shape, long_side, None, need, also):
        long_side += 1
    return long_side


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
    # The x-independent part of several temporal terms folded into this one target (their
    # gradients add up to this target's): added to the reported term, not to the optimized
    # loss, so that the term reads as their sum. 0 for one term and for disjoint 0/1 masks.
    constant: float = 0.0


def _with_margin(
    content: np.ndarray, init: np.ndarray, temporal: Temporal | None, margin: int
) -> tuple[np.ndarray, np.ndarray, Temporal | None]:
    """The frame on a canvas `margin` px larger on each side, the content and start mirrored
    into it (the network's edge falls in the margin, which is cropped away after); the
    temporal term does not reach into the margin."""

    def mirror(a: np.ndarray) -> np.ndarray:
        return cv2.copyMakeBorder(a, margin, margin, margin, margin, cv2.BORDER_REFLECT_101)

    if temporal is not None:
        mask = cv2.copyMakeBorder(
            temporal.mask, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0
        )
        temporal = replace(temporal, warped=mirror(temporal.warped), mask=mask)
    return mirror(content), mirror(init), temporal


@dataclass(frozen=True, eq=False)
class FrameGuide:
    """What one frame of a schedule or a masked render adds to the settings' styles: the blend
    weight of each style at this frame (None: --style-blend's), one region mask per style
    (--style-mask) and a region kept unstyled (--keep-mask), HxW float32 in [0, 1] at the
    frame's size (any size: resized with the frame)."""

    weights: tuple[float, ...] | None = None
    masks: tuple[np.ndarray, ...] | None = None
    keep: np.ndarray | None = None

    @property
    def is_empty(self) -> bool:
        return self.weights is None and self.masks is None and self.keep is None

    def resized(self, shape: tuple[int, int], margin: int = 0) -> FrameGuide:
        """The masks at height x width `shape`, mirrored into a `margin` px canvas as the
        content is (a region goes on into the margin as the picture does)."""

        def fit(mask: np.ndarray) -> np.ndarray:
            mask = resize_to(mask.astype(np.float32), shape)
            if margin:
                mask = cv2.copyMakeBorder(
                    mask, margin, margin, margin, margin, cv2.BORDER_REFLECT_101
                )
            return mask

        masks = None if self.masks is None else tuple(fit(m) for m in self.masks)
        keep = None if self.keep is None else fit(self.keep)
        return FrameGuide(self.weights, masks, keep)


@dataclass(frozen=True)
class Stylized:
    image: np.ndarray  # HxWx3 uint8
    optimization: OptimizeResult  # evaluations spent (all levels), loss, terms, why it stopped


class Engine:
    """Holds the VGG and the style targets of one render; stylizes any number of images."""

    def __init__(
        self,
        state_dict: Mapping[str, Tensor],
        styles: Sequence[np.ndarray],
        settings: Settings,
        device: torch.device,
    ):
        # The settings the engine reads; a render's video settings travel to the pipeline
        # beside it, never through it.
        self.loss, self.optim, self.image = settings.loss, settings.optim, settings.image
        self.device = device
        loss = settings.loss
        self.vgg = VGGFeatures(
            state_dict,
            loss.content_layers + loss.style_layers,
            settings.image.pooling,
            loss.model,
            settings.image.padding,
        ).to(device)
        self.styles = list(styles)
        self.blend = list(settings.image.style_blend or [1.0] * len(self.styles))
        self.layer_weights = losses.normalized_layer_weights(
            loss.style_layers, loss.style_layer_weights
        )
        self._targets: dict[int, losses.StyleTargets | losses.W2Targets] = {}
        self._per_style: dict[int, list[dict[str, Tensor]]] = {}
        self._per_style_means: dict[int, list[dict[str, Tensor]]] = {}  # for --style-loss w2
        # What `auto` means here; a render passes the one its work directory recorded.
        self.precision = resolve_precision(settings.compute.precision, device)
        self.bf16 = self.precision == "bf16"
        # Channels-last on the CPU too: oneDNN's convolutions skip their layout reorders, and the
        # Gram matrices read (positions, channels) directly (README, Speed).
        self.channels_last = device.type in {"cuda", "cpu"}
        if self.channels_last:
            self.vgg = self.vgg.to(memory_format=torch.channels_last)
        self.style_passes = 0  # VGG passes spent on style images, for tests and reports

    def style_targets(self, long_side: int) -> losses.StyleTargets | losses.W2Targets:
        """Gram targets for outputs whose long side is `long_side`, computed once and cached."""
        if long_side not in self._targets:
            grams = losses.blend_grams(self.style_grams(long_side), self.blend)
            if self.loss.style_loss == "w2":
                # Means and second moments blend linearly: the blend is the mixture's Gaussian.
                means = losses.blend_grams(self._per_style_means[long_side], self.blend)
                gaussians = {
                    n: losses.GaussianTarget.from_moments(means[n], grams[n]) for n in grams
                }
                self._targets[long_side] = losses.W2Targets(gaussians, self.layer_weights)
            else:
                self._targets[long_side] = losses.StyleTargets(grams, self.layer_weights)
        return self._targets[long_side]

    def style_grams(self, long_side: int) -> list[dict[str, Tensor]]:
        """Each style image's own Gram targets for outputs of `long_side`, computed once: a
        schedule blends them per frame, region masks use them one per region."""
        if long_side not in self._per_style:
            scale = self.image.style_scale
            side = max(1, round(long_side * scale))
            for number, style in enumerate(self.styles, 1):
                self._check_style_size(number, style.shape[:2], side)
            stats = [self._statistics(resize_long_side(s, side)) for s in self.styles]
            self._per_style[long_side] = [grams for grams, _ in stats]
            self._per_style_means[long_side] = [means for _, means in stats]
        return self._per_style[long_side]

    def frame_targets(
        self, long_side: int, guide: FrameGuide | None = None
    ) -> losses.StyleTargets | losses.W2Targets | guided.GuidedTargets:
        """The style targets of one frame: the render's own without a guide; else blended with
        the guide's weights, or one style per region of its masks (at the canvas's size)."""
        if guide is None or guide.is_empty:
            return self.style_targets(long_side)
        if self.loss.style_loss != "gram":
            raise OptionError(
                f"--style-loss {self.loss.style_loss} does not combine with style schedules or "
                "region masks yet; use --style-loss gram with them"
            )
        per_style = self.style_grams(long_side)
        if guide.masks is None:
            grams = losses.blend_grams(per_style, guide.weights or self.blend)
            if guide.keep is None:
                return losses.StyleTargets(grams, self.layer_weights)
            per_style = [grams]
        masks = [self._mask(m) for m in guide.masks] if guide.masks is not None else None
        keep = self._mask(guide.keep) if guide.keep is not None else None
        like = keep if keep is not None else masks[0]  # type: ignore[index]
        regions = guided.region_masks(masks, keep, len(per_style), like)
        return guided.GuidedTargets(per_style, regions, self.layer_weights)

    def _mask(self, mask: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None].to(
            self.device
        )

    def _check_style_size(self, number: int, shape: tuple[int, int], long_side: int) -> None:
        layers = self.loss.style_layers
        poolings = poolings_before(layers)
        need = max(MIN_SIDE, 2**poolings)
        h, w = scaled_shape(*shape, long_side)
        if min(h, w) < need:
            deepest = max(layers, key=LAYER_NAMES.index)
            raise OptionError(
                f"style image {number} ({w}x{h} px at --style-scale "
                f"{self.image.style_scale:g}) is too small: {deepest} follows "
                f"{poolings} poolings, so its short side must be at least {need} px; raise "
                "--style-scale or --size"
            )

    @torch.no_grad()
    def network_is_finite(self) -> bool:
        """Whether the VGG gives finite activations on a mid-grey image of the smallest size its
        layers take: damaged weights (NaN) would otherwise show up as a diverged loss, with
        advice about loss weights that cannot help."""
        layers = self.loss.content_layers + self.loss.style_layers
        side = max(MIN_SIDE, 2 ** poolings_before(layers))
        grey = torch.full((1, 3, side, side), 0.5, device=self.device)
        return all(bool(torch.isfinite(v).all()) for v in self.features(grey).values())

    @torch.no_grad()
    def _statistics(self, style: np.ndarray) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Gram matrices and channel means of a style image's style layers."""
        self.style_passes += 1
        features = self.features(to_tensor(style, self.device))
        layers = self.loss.style_layers
        grams = {name: losses.gram(features[name]) for name in layers}
        return grams, {name: losses.feature_mean(features[name]) for name in layers}

    def stylize(
        self,
        content: np.ndarray,
        init: np.ndarray,
        budget: int,
        temporal: Temporal | None = None,
        callback: Callback = ignore,
        refine: bool = False,
        guide: FrameGuide | None = None,
    ) -> Stylized:
        """Optimize from `init` (HxWx3) towards `content`'s features and the style targets.

        A frame with no temporal target starts coarse (level_long_sides): each level starts
        from the previous one's result upsampled, with its part of `budget` (split_budget)
        plus what the previous level left unspent. Not with `refine`, for an `init` that is
        already a finished result (a later pass). `guide`: this frame's style weights and
        region masks (a schedule, --style-mask, --keep-mask).
        """
        image = self.image
        long_side = max(content.shape[:2])
        coarse = temporal is None and not refine
        sides = level_long_sides(long_side, image) if coarse else [long_side]
        # Before any work: a pooling error deep in the VGG pass would be a traceback.
        loss = self.loss
        layers = loss.content_layers + loss.style_layers
        check_frame_size(content.shape[:2], None, layers, image if coarse else None)
        budgets = split_budget(budget, len(sides), image.fine_share)
        spent = allowed = 0
        for level, (side, share) in enumerate(zip(sides[:-1], budgets, strict=False)):
            allowed += share
            if allowed <= spent:  # a budget too small to reach this level
                continue
            small = resize_long_side(content, side)
            done = self._stylize_once(
                small,
                resize_to(init, small.shape[:2]),
                allowed - spent,
                None,
                _counting(callback, spent, budget, level, len(sides), side),
                guide=guide,
            )
            spent += done.optimization.evaluations
            init = done.image  # upsampled by the next level
        init = resize_to(init, content.shape[:2])
        last = _counting(callback, spent, budget, len(sides) - 1, len(sides), long_side)
        done = self._stylize_once(content, init, budget - spent, temporal, last, guide)
        if spent:
            total = done.optimization.evaluations + spent
            done = Stylized(done.image, replace(done.optimization, evaluations=total))
        return done

    def with_style_weight(self, weight: float) -> Engine:
        """This engine with another style weight, sharing the VGG and the cached style targets
        (they do not depend on the weight), so a sweep pays for them once."""
        other = copy.copy(self)
        other.loss = replace(self.loss, style_weight=weight)
        return other

    def _stylize_once(
        self,
        content: np.ndarray,
        init: np.ndarray,
        budget: int,
        temporal: Temporal | None,
        callback: Callback,
        guide: FrameGuide | None = None,
    ) -> Stylized:
        # BORDER_REFLECT_101 mirrors without repeating the edge: at most side - 1 px.
        margin = min(self.image.margin, min(content.shape[:2]) - 1)
        long_side = max(content.shape[:2])  # the style's scale follows the frame, not the canvas
        if guide is not None:
            guide = guide.resized(content.shape[:2], margin)
        if margin:
            content, init, temporal = _with_margin(content, init, temporal, margin)
            callback = _cropping(callback, margin)
        loss_fn = self.loss_for(content, temporal, long_side, guide)
        x = to_tensor(init, self.device)
        scale = self._precondition(temporal, x)
        result = optimize(loss_fn, x, budget, self.optim, callback, scale)
        if margin:
            content = content[margin:-margin, margin:-margin]
            result = replace(result, image=result.image[..., margin:-margin, margin:-margin])
        image = result.image
        if self.image.preserve_colors:
            image = losses.keep_colors(image, to_tensor(content, self.device))
        return Stylized(to_uint8(image), result)

    def _precondition(self, temporal: Temporal | None, x: Tensor) -> Tensor | None:
        """L-BFGS's scale for a frame with a temporal target: (1 + a mask)^-1/2 per pixel, with
        a = optim.temporal_precondition (None: plain L-BFGS)."""
        strength = self.optim.temporal_precondition
        if temporal is None or strength == 0.0 or self.loss.temporal_weight == 0.0:
            return None
        mask = torch.from_numpy(temporal.mask.astype(np.float32))[None, None].to(self.device)
        return (1.0 + strength * mask).rsqrt().expand_as(x).contiguous()

    def loss_for(
        self,
        content: np.ndarray,
        temporal: Temporal | None = None,
        long_side: int | None = None,
        guide: FrameGuide | None = None,
    ) -> LossFn:
        """The loss `stylize` minimizes for `content`, over (1, 3, H, W) pixels in [0, 1], with
        the style targets of outputs of `long_side` (default: the content's), and `guide`'s
        weights and masks (at the content's size)."""
        targets = self.frame_targets(long_side or max(content.shape[:2]), guide)
        with torch.no_grad():
            features = self.features(to_tensor(content, self.device))
        content_targets = {n: features[n] for n in self.loss.content_layers}
        return self._loss_fn(content_targets, targets, temporal)

    @torch.no_grad()
    def measure(self, content: np.ndarray, image: np.ndarray) -> dict[str, float]:
        """Unweighted content, style and TV terms of `image` against `content` (for reports)."""
        targets = self.style_targets(max(content.shape[:2]))
        reference = self.features(to_tensor(content, self.device))
        x = to_tensor(image, self.device)
        features = self.features(x)
        layers = self.loss.content_layers
        content_term = sum(losses.content_loss(features[n], reference[n]) for n in layers)
        return {
            "content": float(content_term) / len(layers),
            "style": float(targets.loss(features)),
            "tv": float(losses.tv_loss(x)),
        }

    def features(self, image: Tensor) -> dict[str, Tensor]:
        """VGG activations in fp32; the pass itself may run in bf16, and channels-last on CUDA
        and the CPU."""
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        if not self.bf16:
            return self.vgg(image)
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            features = self.vgg(image)
        # Gram matrices and relative errors stay fp32: they sum many small products.
        return {name: value.float() for name, value in features.items()}

    def _loss_fn(
        self,
        content_targets: dict[str, Tensor],
        targets: losses.StyleTargets | losses.W2Targets | guided.GuidedTargets,
        temporal: Temporal | None,
    ) -> LossFn:
        weights = self.loss
        warped = mask = None
        constant = 0.0
        if temporal is not None:
            constant = temporal.constant
            warped = to_tensor(temporal.warped, self.device)
            mask = torch.from_numpy(temporal.mask.astype(np.float32))[None, None].to(self.device)

        def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            features = self.features(x)
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
                if constant:  # reported, not optimized: a shift would move the early stop
                    terms["temporal"] = terms["temporal"] + constant
            return total, terms

        return loss_fn


def _counting(
    callback: Callback, spent: int, budget: int, level: int, levels: int, side: int
) -> Callback:
    """`callback`, handed Iteration events that count over all levels of one stylize call (the
    optimizer counts each level from 1): `spent` before this level, of `budget` in all."""

    def forward(event: Event) -> None:
        if isinstance(event, Iteration):
            event = replace(
                event,
                evaluation=spent + event.evaluation,
                budget=budget,
                level=level,
                levels=levels,
                side=side,
            )
        callback(event)

    return asking(forward, like=callback)


def _cropping(callback: Callback, margin: int) -> Callback:
    """`callback`, handed the iterates it asked for cropped to the frame, as the result is."""

    def forward(event: Event) -> None:
        if isinstance(event, Iteration) and event.image is not None:
            event = replace(event, image=event.image[margin:-margin, margin:-margin])
        callback(event)

    return asking(forward, like=callback)


def noise_like(content: np.ndarray, seed: int) -> np.ndarray:
    """Uniform noise image, reproducible across devices (drawn on the CPU)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(content.shape, generator=generator)
    return noise.numpy().astype(np.float32)
