"""Loss terms against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from nst_video.core import losses


def test_gram_hand_computed() -> None:
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    # Rows are flattened channels [1,2,3,4] and [0,1,0,1]; products averaged over 4 positions.
    expected = torch.tensor([[30.0 / 4, 6.0 / 4], [6.0 / 4, 2.0 / 4]])
    torch.testing.assert_close(losses.gram(features), expected)


def test_gram_is_size_independent_for_a_tiled_map() -> None:
    features = torch.randn(1, 4, 3, 5, generator=torch.Generator().manual_seed(0))
    tiled = features.repeat(1, 1, 2, 3)
    torch.testing.assert_close(losses.gram(tiled), losses.gram(features))


def test_relative_sq_error_hand_values() -> None:
    value, target = torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0])
    assert losses.relative_sq_error(value, target).item() == pytest.approx(4.0)
    value, target = torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0])
    assert losses.relative_sq_error(value, target).item() == pytest.approx(2.0 / 4.0)
    assert losses.relative_sq_error(target, target).item() == 0.0
    assert losses.content_loss(value, target).item() == pytest.approx(0.5)


def test_relative_sq_error_of_a_zero_target_is_finite() -> None:
    value = losses.relative_sq_error(torch.ones(3), torch.zeros(3))
    assert torch.isfinite(value)


def test_style_loss_uses_layer_weights_as_given() -> None:
    grams = {"a": torch.tensor([2.0]), "b": torch.tensor([1.0]), "c": torch.tensor([9.0])}
    targets = {"a": torch.tensor([1.0]), "b": torch.tensor([2.0]), "c": torch.tensor([1.0])}
    # a: 1/1 = 1, b: 1/4 = 0.25; c has no weight, so it is not counted.
    value = losses.style_loss(grams, targets, {"a": 0.25, "b": 0.75})
    assert value.item() == pytest.approx(0.25 * 1.0 + 0.75 * 0.25)
    assert losses.style_loss(grams, targets, {}).item() == 0.0


def test_style_targets_loss_is_zero_at_the_target() -> None:
    features = {"relu1_1": torch.rand(1, 3, 4, 4), "relu2_1": torch.rand(1, 5, 2, 2)}
    targets = losses.StyleTargets(
        {name: losses.gram(f) for name, f in features.items()},
        {"relu1_1": 0.5, "relu2_1": 0.5},
    )
    assert targets.loss(features).item() == pytest.approx(0.0, abs=1e-12)
    doubled = {name: 2 * f for name, f in features.items()}
    # Gram of 2f is 4G: relative error (4G - G)^2 / G^2 = 9 per layer, weights sum to 1.
    assert targets.loss(doubled).item() == pytest.approx(9.0, rel=1e-5)


def test_tv_loss_hand_value() -> None:
    image = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # Horizontal diffs 1, 2 -> mean square 2.5; vertical diffs 2, 3 -> 6.5.
    assert losses.tv_loss(image).item() == pytest.approx(9.0)
    assert losses.tv_loss(torch.full((1, 3, 4, 4), 0.3)).item() == 0.0


def test_temporal_loss_masked_pixels_do_not_count() -> None:
    warped = torch.zeros(1, 3, 1, 2)
    image = torch.ones(1, 3, 1, 2)
    image[..., 1] = 100.0  # inconsistent pixel: any difference there is ignored
    mask = torch.tensor([[[[1.0, 0.0]]]])
    # Pixel 0: 3 channels * 1^2; pixel 1: weight 0; mean over 6 values.
    assert losses.temporal_loss(image, warped, mask).item() == pytest.approx(0.5)
    half = torch.tensor([[[[0.5, 0.0]]]])
    assert losses.temporal_loss(image, warped, half).item() == pytest.approx(0.25)


def test_range_loss() -> None:
    inside = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])
    assert losses.range_loss(inside).item() == 0.0
    outside = torch.tensor([[[[-0.5, 1.5], [0.5, 1.0]]]])
    assert losses.range_loss(outside).item() == pytest.approx((0.25 + 0.25) / 4)


def test_blend_grams_normalizes_weights() -> None:
    first = {"a": torch.tensor([[4.0]]), "b": torch.tensor([[0.0]])}
    second = {"a": torch.tensor([[8.0]]), "b": torch.tensor([[2.0]])}
    for blend in ((3.0, 1.0), (6.0, 2.0)):
        blended = losses.blend_grams([first, second], blend)
        assert set(blended) == {"a", "b"}
        assert blended["a"].item() == pytest.approx(5.0)
        assert blended["b"].item() == pytest.approx(0.5)


def test_normalized_layer_weights() -> None:
    assert losses.normalized_layer_weights(["a", "b"], [1.0, 3.0]) == pytest.approx(
        {"a": 0.25, "b": 0.75}
    )
    assert losses.normalized_layer_weights(["a", "b", "c", "d"], None) == pytest.approx(
        dict.fromkeys("abcd", 0.25)
    )
    with pytest.raises(ValueError):
        losses.normalized_layer_weights(["a", "b"], [1.0])


def test_yiq_round_trip() -> None:
    image = torch.rand(1, 3, 4, 5)
    torch.testing.assert_close(losses.yiq_to_rgb(losses.rgb_to_yiq(image)), image)
    grey = torch.full((1, 3, 2, 2), 0.4)
    yiq = losses.rgb_to_yiq(grey)
    torch.testing.assert_close(yiq[:, 0], torch.full((1, 2, 2), 0.4))
    torch.testing.assert_close(yiq[:, 1:], torch.zeros(1, 2, 2, 2), atol=1e-6, rtol=0)


def test_keep_colors_takes_luminance_from_stylized_and_chroma_from_content() -> None:
    generator = torch.Generator().manual_seed(0)
    # Mid-range, low-saturation inputs so no output pixel is clamped.
    stylized = 0.3 + 0.4 * torch.rand(1, 3, 6, 6, generator=generator)
    content = 0.45 + 0.1 * torch.rand(1, 3, 6, 6, generator=generator)
    kept = losses.keep_colors(stylized, content)
    assert kept.min() > 0 and kept.max() < 1
    out, sty, con = (losses.rgb_to_yiq(t) for t in (kept, stylized, content))
    torch.testing.assert_close(out[:, :1], sty[:, :1], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, 1:], con[:, 1:], atol=1e-5, rtol=0)
    assert (out[:, 1:] - sty[:, 1:]).abs().max() > 0.05  # the inputs' chroma really differ


def test_keep_colors_clamps_to_unit_range() -> None:
    stylized = torch.ones(1, 3, 2, 2)
    content = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    kept = losses.keep_colors(stylized, content)
    assert kept.min() >= 0 and kept.max() <= 1


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_and_its_gradient_match_the_plain_product(layout: torch.memory_format) -> None:
    # gram() has a hand-written backward (one matmul) and reads either layout as a view; both
    # must equal autograd's F F^T / n and its two-matmul gradient.
    generator = torch.Generator().manual_seed(0)
    base = torch.rand(1, 6, 4, 5, dtype=torch.float64, generator=generator)
    features = base.clone(memory_format=layout).requires_grad_(True)
    assert features.is_contiguous(memory_format=layout)
    assert torch.autograd.gradcheck(losses.gram, (features,))
    weights = torch.rand(6, 6, dtype=torch.float64, generator=generator)  # asymmetric upstream
    value = losses.gram(features)
    (value * weights).sum().backward()
    ours = features.grad.clone()
    plain_in = base.clone().requires_grad_(True)
    flat = plain_in.reshape(6, 20)
    plain = flat @ flat.t() / 20
    (plain * weights).sum().backward()
    torch.testing.assert_close(value, plain, rtol=1e-12, atol=0)
    torch.testing.assert_close(ours, plain_in.grad, rtol=1e-12, atol=1e-15)
    assert ours.is_contiguous(memory_format=layout)  # the gradient stays in the features' layout


def _gaussian(mean: list[float], cov: list[list[float]]) -> losses.GaussianTarget:
    """A target from its mean and covariance, through the moments the engine passes."""
    m, c = torch.tensor(mean), torch.tensor(cov)
    return losses.GaussianTarget.from_moments(m, c + torch.outer(m, m))


def test_w2_loss_one_channel_hand_value() -> None:
    # Positions 0, 2, 0, 2: mean 1, variance 1. Target: mean 3, variance 4 (sd 2).
    # W2^2 = (1 - 3)^2 + (1 - 2)^2 = 5; the target's own distance from zero is 9 + 4 = 13.
    features = torch.tensor([[[[0.0, 2.0], [0.0, 2.0]]]])
    value = losses.w2_loss(features, _gaussian([3.0], [[4.0]]))
    assert value.item() == pytest.approx(5.0 / 13.0, rel=1e-5)


def test_w2_loss_two_channels_hand_value() -> None:
    # Channel 0: 0, 2, 0, 2 (mean 1, var 1); channel 1: 1, 1, 3, 3 (mean 2, var 1);
    # uncorrelated. Target: same means, variances 4 and 1:
    # W2^2 = (1 - 2)^2 + (1 - 1)^2 = 1; energy 1 + 4 (means) + 4 + 1 (variances) = 10.
    features = torch.tensor([[[[0.0, 2.0], [0.0, 2.0]], [[1.0, 1.0], [3.0, 3.0]]]])
    value = losses.w2_loss(features, _gaussian([1.0, 2.0], [[4.0, 0.0], [0.0, 1.0]]))
    assert value.item() == pytest.approx(0.1, rel=1e-5)


def test_w2_loss_is_zero_at_the_target_and_hand_value_for_swapped_axes() -> None:
    features = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    mean = losses.feature_mean(features)
    own = losses.GaussianTarget.from_moments(mean, losses.gram(features))
    assert losses.w2_loss(features, own).item() == pytest.approx(0.0, abs=1e-5)
    # A rotated covariance (correlated channels): W2 between N(0, diag(4, 1)) and the same
    # rotated by 90 degrees, N(0, diag(1, 4)), is (2 - 1)^2 + (1 - 2)^2 = 2; energy 5.
    rotated = torch.tensor([[[[2.0, -2.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, -1.0]]]])
    # Positions (2,0), (-2,0), (0,1), (0,-1): mean 0, covariance diag(2, 0.5); scaled below.
    features = rotated * torch.tensor([2**0.5, 2**0.5]).view(1, 2, 1, 1)  # diag(4, 1)
    target = _gaussian([0.0, 0.0], [[1.0, 0.0], [0.0, 4.0]])
    assert losses.w2_loss(features, target).item() == pytest.approx(2.0 / 5.0, rel=1e-4)


def test_w2_loss_gradient_is_finite_for_flat_features() -> None:
    # Constant activations have a zero covariance, where the square root's slope is infinite.
    features = torch.ones(1, 2, 3, 3, requires_grad=True)
    target = _gaussian([0.5, 2.0], [[1.0, 0.3], [0.3, 2.0]])
    losses.w2_loss(features, target).backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()
    assert features.grad.abs().sum() > 0


def test_w2_targets_weigh_layers() -> None:
    features = {"a": torch.tensor([[[[0.0, 2.0], [0.0, 2.0]]]]), "b": torch.ones(1, 1, 2, 2)}
    targets = losses.W2Targets(
        {"a": _gaussian([3.0], [[4.0]]), "b": _gaussian([1.0], [[0.0]])}, {"a": 0.5, "b": 0.5}
    )
    # a: 5/13 as above; b: constant 1 against a point at 1, distance 0.
    assert targets.loss(features).item() == pytest.approx(0.5 * 5.0 / 13.0, rel=1e-4)
