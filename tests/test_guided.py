"""Region masks: guided Gram matrices by hand on 2x2 and 4x4 examples, region shares, the keep
mask's (1 - mask) weighting, and the engine's per-frame targets (schedule weights, masks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import Tensor

from nst_video.config import ImageConfig, LossConfig, OptimConfig, Settings
from nst_video.core import losses
from nst_video.core.engine import Engine, FrameGuide, Temporal, to_tensor
from nst_video.core.guided import GuidedTargets, guided_gram, layer_mask, region_masks

CPU = torch.device("cpu")
# One shallow style layer: its 3x3 receptive field keeps a region's gradient inside it.
SETTINGS = Settings(
    loss=LossConfig(content_layers=("relu1_1",), style_layers=("relu1_1",)),
    optim=OptimConfig(iterations=2, tolerance=0.0),
    image=ImageConfig(size=16, margin=0),
)


def t(rows: list[list[float]]) -> Tensor:
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def test_guided_gram_by_hand_2x2() -> None:
    # Two channels at four positions (row-major): (1,2) (3,0) (0,1) (2,2).
    features = torch.tensor([[[1.0, 3.0], [0.0, 2.0]], [[2.0, 0.0], [1.0, 2.0]]])[None]
    mask = t([[1.0, 0.0], [0.5, 0.0]])
    # (1*[[1,2],[2,4]] + 0.5*[[0,0],[0,1]]) / 1.5
    expected = torch.tensor([[2 / 3, 4 / 3], [4 / 3, 3.0]])
    torch.testing.assert_close(guided_gram(features, mask), expected)
    channels_last = features.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(guided_gram(channels_last, mask), expected)


def test_uniform_mask_gives_the_plain_gram() -> None:
    features = torch.randn(1, 3, 4, 4)
    for value in (1.0, 0.3):
        mask = torch.full((1, 1, 4, 4), value)
        torch.testing.assert_close(guided_gram(features, mask), losses.gram(features))


def test_mask_is_area_averaged_to_the_layer_grid() -> None:
    mask = t([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    torch.testing.assert_close(layer_mask(mask, (2, 2)), t([[1.0, 0.0], [0.25, 0.25]]))


def test_each_region_matches_its_own_target_weighted_by_its_share() -> None:
    # One channel [[1,2],[3,4]]: left column's Gram (1+9)/2 = 5, right's (4+16)/2 = 10.
    features = {"a": t([[1.0, 2.0], [3.0, 4.0]])}
    left, right = t([[1.0, 0.0], [1.0, 0.0]]), t([[0.0, 1.0], [0.0, 1.0]])
    grams = [{"a": torch.tensor([[4.0]])}, {"a": torch.tensor([[10.0]])}]
    targets = GuidedTargets(grams, [left, right], {"a": 1.0})
    # 0.5 * (5-4)^2/4^2 + 0.5 * 0
    assert float(targets.loss(features)) == pytest.approx(1 / 32)
    # An empty region adds nothing (its Gram is undefined).
    empty = GuidedTargets(grams, [left, torch.zeros_like(left)], {"a": 1.0})
    assert float(empty.loss(features)) == pytest.approx(1 / 32)


def test_keep_mask_multiplies_every_region_by_one_minus_it() -> None:
    keep = t([[0.0, 1.0], [0.25, 1.0]])
    ones = torch.ones_like(keep)
    (only,) = region_masks(None, keep, 1, keep)
    torch.testing.assert_close(only, t([[1.0, 0.0], [0.75, 0.0]]))
    a, b = region_masks([ones, ones * 0.5], keep, 2, keep)
    torch.testing.assert_close(b, t([[0.5, 0.0], [0.375, 0.0]]))
    torch.testing.assert_close(a, only)


# --- the engine: gradients stay in their regions ------------------------------------------------


def _engine(state_dict: Mapping[str, Tensor], styles: list[np.ndarray]) -> Engine:
    return Engine(state_dict, styles, SETTINGS, CPU)


def _style_gradient(engine: Engine, content: np.ndarray, guide: FrameGuide | None) -> Tensor:
    """Gradient of the style term alone at the content."""
    targets = engine.frame_targets(16, guide)
    x = to_tensor(content, CPU).requires_grad_(True)
    targets.loss(engine.features(x)).backward()
    assert x.grad is not None
    return x.grad[0].abs().sum(0)  # (H, W)


def _halves() -> tuple[np.ndarray, np.ndarray]:
    left = np.zeros((12, 16), np.float32)
    left[:, :8] = 1.0
    return left, 1.0 - left


def test_each_style_shapes_only_its_region(
    state_dict: Mapping[str, Tensor], make_image: object
) -> None:
    content, a, b, c = (make_image(12, 16, seed) for seed in (1, 2, 3, 4))  # type: ignore[operator]
    left, right = _halves()
    guide = FrameGuide(masks=(left, right))
    with_b = _style_gradient(_engine(state_dict, [a, b]), content, guide)
    with_c = _style_gradient(_engine(state_dict, [a, c]), content, guide)
    # relu1_1 sees 3x3 pixels: columns 0-6 reach only left-half features.
    torch.testing.assert_close(with_b[:, :7], with_c[:, :7], rtol=0, atol=0)
    assert not torch.equal(with_b[:, 9:], with_c[:, 9:])
    # Without masks the second style reaches every pixel.
    blend_b = _style_gradient(_engine(state_dict, [a, b]), content, None)
    blend_c = _style_gradient(_engine(state_dict, [a, c]), content, None)
    assert not torch.equal(blend_b[:, :7], blend_c[:, :7])


def test_keep_mask_leaves_its_region_without_style_but_with_temporal_term(
    state_dict: Mapping[str, Tensor], make_image: object
) -> None:
    content, style = make_image(12, 16, 1), make_image(16, 16, 2)  # type: ignore[operator]
    keep, _ = _halves()
    engine = _engine(state_dict, [style])
    kept = _style_gradient(engine, content, FrameGuide(keep=keep))
    assert float(kept[:, :7].abs().max()) == 0.0
    assert float(kept[:, 9:].abs().min()) > 0.0
    # The style term is the unmasked one's on the other half, weighted by its share (0.5).
    plain = engine.frame_targets(16, FrameGuide(masks=(1.0 - keep,)))
    features = engine.features(to_tensor(content, CPU))
    guided = engine.frame_targets(16, FrameGuide(keep=keep))
    assert float(guided.loss(features)) == pytest.approx(float(plain.loss(features)))
    # The temporal term covers the whole frame, kept region included.
    warped = np.full_like(content, 128)
    temporal = Temporal(warped, np.ones((12, 16), np.float32))
    loss_fn = engine.loss_for(content, temporal, 16, FrameGuide(keep=keep))
    x = to_tensor(content, CPU).requires_grad_(True)
    total, terms = loss_fn(x)
    free = engine.loss_for(content, temporal, 16)(to_tensor(content, CPU))[1]
    assert float(terms["temporal"].detach()) == pytest.approx(float(free["temporal"]))
    total.backward()
    assert x.grad is not None and float(x.grad[0, :, :, :7].abs().min()) > 0.0


def test_schedule_weights_blend_the_per_style_targets(
    state_dict: Mapping[str, Tensor], make_image: object
) -> None:
    a, b = make_image(16, 16, 2), make_image(16, 16, 3)  # type: ignore[operator]
    engine = _engine(state_dict, [a, b])
    half = engine.frame_targets(16, FrameGuide(weights=(0.25, 0.75)))
    per_style = engine.style_grams(16)
    expected = 0.25 * per_style[0]["relu1_1"] + 0.75 * per_style[1]["relu1_1"]
    torch.testing.assert_close(half.grams["relu1_1"], expected)  # type: ignore[union-attr]
    only_b = engine.frame_targets(16, FrameGuide(weights=(0.0, 1.0)))
    assert torch.equal(only_b.grams["relu1_1"], per_style[1]["relu1_1"])  # type: ignore[union-attr]
    assert engine.style_passes == 2  # once per style, whatever the frames ask for


def test_masks_of_another_size_follow_the_frame_and_its_margin(
    state_dict: Mapping[str, Tensor], make_image: object
) -> None:
    content, style = make_image(12, 16, 1), make_image(16, 16, 2)  # type: ignore[operator]
    keep = np.zeros((24, 32), np.float32)
    keep[:, :16] = 1.0
    guide = FrameGuide(keep=keep).resized((12, 16), margin=2)
    assert guide.keep is not None and guide.keep.shape == (16, 20)
    assert guide.keep[:, :9].min() == 1.0 and guide.keep[:, 11:].max() == 0.0
    settings = replace(SETTINGS, image=replace(SETTINGS.image, margin=2))
    engine = Engine(state_dict, [style], settings, CPU)
    out = engine.stylize(content, content, 2, guide=FrameGuide(keep=keep))
    assert out.image.shape == content.shape
