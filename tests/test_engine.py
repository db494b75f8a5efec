"""Engine: cached style targets, blending, colour preservation, output format, determinism."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import Tensor

from nst_video.config import ImageConfig, LossConfig, OptimConfig, Settings
from nst_video.core import losses
from nst_video.core.device import pick_device
from nst_video.core.engine import Engine, Temporal, noise_like, to_tensor, to_uint8
from nst_video.video.resize import resize_long_side

CPU = torch.device("cpu")
# Shallow layers keep every forward pass cheap; the engine logic does not depend on depth.
SETTINGS = Settings(
    loss=LossConfig(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1")),
    optim=OptimConfig(iterations=3, tolerance=0.0),
    image=ImageConfig(size=32),
)


@pytest.fixture(scope="module")
def engine(state_dict: Mapping[str, Tensor], style_rgb: np.ndarray) -> Engine:
    return Engine(state_dict, [style_rgb], SETTINGS, CPU)


def make_engine(
    state_dict: Mapping[str, Tensor], styles: list[np.ndarray], **image: object
) -> Engine:
    settings = replace(SETTINGS, image=replace(SETTINGS.image, **image))
    return Engine(state_dict, styles, settings, CPU)


def test_style_passes_once_per_long_side(
    state_dict: Mapping[str, Tensor],
    style_rgb: np.ndarray,
    make_image: Callable[..., np.ndarray],
) -> None:
    engine = make_engine(state_dict, [style_rgb])
    for seed in range(3):
        content = make_image(24, 32, seed)  # long side 32 every time
        engine.stylize(content, content, 2)
    assert engine.style_passes == 1
    other = make_image(16, 12, 9)  # long side 16
    engine.stylize(other, other, 2)
    engine.stylize(other, other, 2)
    assert engine.style_passes == 2
    assert sorted(engine._targets) == [16, 32]


def test_each_style_passes_once(
    state_dict: Mapping[str, Tensor], style_rgb: np.ndarray, make_image: Callable[..., np.ndarray]
) -> None:
    engine = make_engine(state_dict, [style_rgb, make_image(30, 20, 7)])
    content = make_image(24, 32, 0)
    engine.stylize(content, content, 1)
    engine.stylize(content, content, 1)
    assert engine.style_passes == 2


@pytest.mark.slow
def test_style_blend_is_weighted_mean_of_grams(
    state_dict: Mapping[str, Tensor], style_rgb: np.ndarray, make_image: Callable[..., np.ndarray]
) -> None:
    other = make_image(30, 20, 7)
    first = make_engine(state_dict, [style_rgb]).style_targets(32).grams
    second = make_engine(state_dict, [other]).style_targets(32).grams
    blended = make_engine(state_dict, [style_rgb, other], style_blend=(3.0, 1.0))
    targets = blended.style_targets(32)
    assert set(targets.grams) == {"relu1_1", "relu2_1"}
    for name, gram in targets.grams.items():
        torch.testing.assert_close(gram, 0.75 * first[name] + 0.25 * second[name])
        assert not torch.allclose(first[name], second[name], rtol=0.01)
    equal = make_engine(state_dict, [style_rgb, other]).style_targets(32).grams
    torch.testing.assert_close(equal["relu1_1"], 0.5 * first["relu1_1"] + 0.5 * second["relu1_1"])


def test_w2_targets_are_the_blended_styles_mixture(
    state_dict: Mapping[str, Tensor], style_rgb: np.ndarray, make_image: Callable[..., np.ndarray]
) -> None:
    other = make_image(30, 20, 7)
    w2 = replace(SETTINGS, loss=replace(SETTINGS.loss, style_loss="w2"))
    engine = Engine(
        state_dict,
        [style_rgb, other],
        replace(w2, image=replace(w2.image, style_blend=(3.0, 1.0))),
        CPU,
    )
    targets = engine.style_targets(32)
    assert isinstance(targets, losses.W2Targets)
    stats = [
        make_engine(state_dict, [s])._statistics(resize_long_side(s, 32))
        for s in (style_rgb, other)
    ]
    for name, target in targets.gaussians.items():
        # Mixture of 3/4 and 1/4: means and second moments blend; the covariance follows.
        mean = 0.75 * stats[0][1][name] + 0.25 * stats[1][1][name]
        second = 0.75 * stats[0][0][name] + 0.25 * stats[1][0][name]
        cov = second - torch.outer(mean, mean)
        torch.testing.assert_close(target.mean, mean)
        torch.testing.assert_close(target.cov_trace, torch.trace(cov), rtol=1e-4, atol=1e-6)
        # fp32 rounding leaves tiny negative eigenvalues, which the square root clamps to 0.
        error = (target.cov_sqrt @ target.cov_sqrt - cov).norm() / cov.norm()
        assert error < 1e-3


def test_w2_render_lowers_its_style_term(
    state_dict: Mapping[str, Tensor], style_rgb: np.ndarray, make_image: Callable[..., np.ndarray]
) -> None:
    w2 = replace(SETTINGS, loss=replace(SETTINGS.loss, style_loss="w2", style_weight=10.0))
    engine = Engine(state_dict, [style_rgb], w2, CPU)
    content = make_image(24, 32, 0)
    before = engine.measure(content, content)["style"]
    done = engine.stylize(content, content, 15)
    after = engine.measure(content, done.image)["style"]
    assert after < 0.8 * before
    gram = Engine(state_dict, [style_rgb], SETTINGS, CPU)
    assert gram.measure(content, content)["style"] != pytest.approx(before, rel=1e-3)


@pytest.mark.slow
def test_style_targets_use_the_scaled_style(
    engine: Engine, state_dict: Mapping[str, Tensor], style_rgb: np.ndarray
) -> None:
    half = make_engine(state_dict, [style_rgb], style_scale=0.5).style_targets(32).grams
    # style_rgb is 40x40: scale 0.5 of a 32 px output resizes it to 16x16.
    direct, _ = engine._statistics(resize_long_side(style_rgb, 16))
    for name in half:
        torch.testing.assert_close(half[name], direct[name])
    assert engine.style_targets(32).layer_weights == {"relu1_1": 0.5, "relu2_1": 0.5}


def test_stylize_returns_uint8_of_the_content_shape(
    engine: Engine, make_image: Callable[..., np.ndarray]
) -> None:
    content = make_image(20, 28, 3)
    done = engine.stylize(content, content, 3)
    assert done.image.dtype == np.uint8
    assert done.image.shape == (20, 28, 3)
    assert done.optimization.evaluations == 3
    assert set(done.optimization.terms) == {"content", "style", "tv"}
    np.testing.assert_array_equal(done.image, to_uint8(done.optimization.image))


def test_stylize_changes_the_image(engine: Engine, content_rgb: np.ndarray) -> None:
    done = engine.stylize(content_rgb, content_rgb, 5)
    assert np.abs(done.image.astype(int) - content_rgb.astype(int)).max() > 0


def test_stylize_is_deterministic(engine: Engine, content_rgb: np.ndarray) -> None:
    init = noise_like(content_rgb, seed=4)
    first = engine.stylize(content_rgb, init, 3).image
    second = engine.stylize(content_rgb, init, 3).image
    np.testing.assert_array_equal(first, second)


def _chroma(rgb: np.ndarray) -> Tensor:
    return losses.rgb_to_yiq(to_tensor(rgb, CPU))[:, 1:]


def test_preserve_colors_keeps_the_content_chroma(
    state_dict: Mapping[str, Tensor], style_rgb: np.ndarray, make_image: Callable[..., np.ndarray]
) -> None:
    # Low-saturation mid-grey content: the colour transfer never needs clamping.
    content = (110 + make_image(24, 32, 11) // 8).astype(np.uint8)
    noise = noise_like(content, seed=0)  # starts far from the content's colours
    plain = make_engine(state_dict, [style_rgb]).stylize(content, noise, 3).image
    kept = make_engine(state_dict, [style_rgb], preserve_colors=True)
    kept_image = kept.stylize(content, noise, 3).image
    assert (_chroma(plain) - _chroma(content)).abs().max() > 0.05
    torch.testing.assert_close(_chroma(kept_image), _chroma(content), atol=4 / 255, rtol=0)
    # Luminance comes from the stylized result, not the content.
    luma = losses.rgb_to_yiq(to_tensor(kept_image, CPU))[:, :1]
    plain_luma = losses.rgb_to_yiq(to_tensor(plain, CPU))[:, :1]
    torch.testing.assert_close(luma, plain_luma, atol=4 / 255, rtol=0)


def test_temporal_term_is_added(engine: Engine, content_rgb: np.ndarray) -> None:
    warped = np.zeros_like(content_rgb)
    mask = np.ones(content_rgb.shape[:2], np.float32)
    done = engine.stylize(content_rgb, content_rgb, 2, Temporal(warped, mask))
    assert done.optimization.terms["temporal"] > 0.01
    masked = engine.stylize(content_rgb, content_rgb, 2, Temporal(warped, mask * 0))
    assert masked.optimization.terms["temporal"] == 0.0


def test_noise_like_is_seeded(content_rgb: np.ndarray) -> None:
    a, b, c = noise_like(content_rgb, 1), noise_like(content_rgb, 1), noise_like(content_rgb, 2)
    assert a.shape == content_rgb.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_tensor_round_trip(content_rgb: np.ndarray) -> None:
    tensor = to_tensor(content_rgb, CPU)
    assert tensor.shape == (1, 3, 24, 32) and tensor.dtype == torch.float32
    np.testing.assert_array_equal(to_uint8(tensor), content_rgb)


def test_pick_device() -> None:
    assert pick_device("cpu") == CPU
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}


def test_total_loss_is_the_weighted_sum_of_terms(
    state_dict: Mapping[str, Tensor], style_rgb: np.ndarray, content_rgb: np.ndarray
) -> None:
    loss = replace(
        SETTINGS.loss,
        content_weight=2.0,
        style_weight=3.0,
        tv_weight=5.0,
        temporal_weight=7.0,
        range_weight=0.0,
    )
    engine = Engine(state_dict, [style_rgb], replace(SETTINGS, loss=loss), CPU)
    warped = np.full_like(content_rgb, 128)
    mask = np.ones(content_rgb.shape[:2], np.float32)
    result = engine.stylize(content_rgb, content_rgb, 3, Temporal(warped, mask)).optimization
    terms = result.terms
    assert min(terms.values()) > 0
    expected = (
        2.0 * terms["content"] + 3.0 * terms["style"] + 5.0 * terms["tv"] + 7.0 * terms["temporal"]
    )
    assert result.loss == pytest.approx(expected, rel=1e-5)


def test_w2_with_a_schedule_or_masks_is_refused(
    state_dict: Mapping[str, Tensor], style_rgb: np.ndarray
) -> None:
    """Guided targets are Gram's only: w2 there would silently fall back to Gram."""
    from nst_video.core.engine import FrameGuide
    from nst_video.errors import OptionError

    w2 = replace(SETTINGS, loss=replace(SETTINGS.loss, style_loss="w2"))
    engine = Engine(state_dict, [style_rgb], w2, CPU)
    assert isinstance(engine.frame_targets(32, FrameGuide()), losses.W2Targets)
    with pytest.raises(OptionError) as caught:
        engine.frame_targets(32, FrameGuide(weights=(1.0,)))
    assert str(caught.value) == (
        "--style-loss w2 does not combine with style schedules or region masks yet; "
        "use --style-loss gram with them"
    )
