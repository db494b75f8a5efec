"""The optimizer loop: exact budget, early stop, best iterate, divergence, and robustness."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pytest
import torch
from torch import Tensor

from nst_video.config import ComputeConfig, ImageConfig, LossConfig, OptimConfig, Settings
from nst_video.core import device, losses
from nst_video.core.engine import Engine, to_tensor
from nst_video.core.optimize import optimize
from nst_video.core.vgg import VGGFeatures
from nst_video.errors import DivergenceError, OptionError
from nst_video.progress import Event, Iteration

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")
CONTENT_LAYER = "relu2_1"


class Recorder:
    """Wraps a loss function and keeps every evaluated loss and image."""

    def __init__(self, loss_fn: Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]):
        self.loss_fn = loss_fn
        self.values: list[float] = []
        self.images: list[Tensor] = []

    def __call__(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        total, terms = self.loss_fn(x)
        self.values.append(total.item())
        self.images.append(x.detach().clone())
        return total, terms


@pytest.fixture(scope="module")
def vgg(state_dict: Mapping[str, Tensor]) -> VGGFeatures:
    return VGGFeatures(state_dict, STYLE_LAYERS)


@pytest.fixture(scope="module")
def images(make_image: Callable[..., np.ndarray]) -> tuple[Tensor, Tensor]:
    device = torch.device("cpu")
    return to_tensor(make_image(32, 40, 5), device), to_tensor(make_image(32, 32, 6), device)


def vgg_loss(vgg: VGGFeatures, content: Tensor, style: Tensor) -> Recorder:
    with torch.no_grad():
        content_target = vgg(content)[CONTENT_LAYER]
        style_grams = {n: losses.gram(f) for n, f in vgg(style).items()}
    targets = losses.StyleTargets(style_grams, losses.normalized_layer_weights(STYLE_LAYERS, None))

    def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        features = vgg(x)
        terms = {
            "content": losses.content_loss(features[CONTENT_LAYER], content_target),
            "style": targets.loss(features),
        }
        total = terms["content"] + 30.0 * terms["style"] + 1e3 * losses.range_loss(x)
        return total, terms

    return Recorder(loss_fn)


def quadratic(target: Tensor) -> Recorder:
    def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        value = (x - target).pow(2).sum()
        return value, {"quadratic": value}

    return Recorder(loss_fn)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_loss_decreases_with_vgg_within_an_exact_budget(
    vgg: VGGFeatures, images: tuple[Tensor, Tensor], optimizer: str
) -> None:
    content, style = images
    recorder = vgg_loss(vgg, content, style)
    config = OptimConfig(optimizer=optimizer, tolerance=0.0)
    result = optimize(recorder, content, 12, config)
    assert result.evaluations == 12
    assert len(recorder.values) == 12
    assert result.stop == "budget"
    assert result.loss < 0.9 * recorder.values[0]
    assert set(result.terms) == {"content", "style"}
    assert all(math.isfinite(v) for v in result.terms.values())


@pytest.mark.parametrize(("log_every", "stopped_at"), [(1, 3), (4, 4)])
def test_early_stop_before_the_budget(log_every: int, stopped_at: int) -> None:
    recorder = quadratic(torch.full((1, 3, 4, 4), 0.5))
    # Any improvement is below a 100% relative tolerance, so it converges once the window is
    # full (evaluation 3); Adam's losses are read `log_every` at a time, so it is seen then.
    config = OptimConfig(optimizer="adam", tolerance=1.0, window=2, log_every=log_every)
    result = optimize(recorder, torch.zeros(1, 3, 4, 4), 50, config)
    assert result.stop == "converged"
    assert result.evaluations == stopped_at
    assert len(recorder.values) == stopped_at


def test_no_early_stop_while_improving() -> None:
    recorder = quadratic(torch.full((1, 3, 4, 4), 0.5))
    config = OptimConfig(optimizer="adam", adam_lr=0.001, tolerance=1e-6, window=2)
    result = optimize(recorder, torch.zeros(1, 3, 4, 4), 10, config)
    assert result.stop == "budget"
    assert result.evaluations == 10


def test_returns_the_best_iterate_clamped() -> None:
    # Adam with a large step oscillates around the target, so the last iterate is not the best;
    # the target lies outside [0, 1] so the returned image must also be clamped.
    target = torch.tensor([1.2, -0.1, 0.5]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    recorder = quadratic(target)
    config = OptimConfig(optimizer="adam", adam_lr=0.7, tolerance=0.0)
    result = optimize(recorder, torch.full((1, 3, 2, 2), 0.5), 15, config)
    best = int(np.argmin(recorder.values))
    assert best != len(recorder.values) - 1
    assert result.loss == min(recorder.values)
    torch.testing.assert_close(result.image, recorder.images[best].clamp(0.0, 1.0))
    assert result.terms["quadratic"] == pytest.approx(result.loss)


def test_best_iterate_with_lbfgs_line_search(
    vgg: VGGFeatures, images: tuple[Tensor, Tensor]
) -> None:
    content, style = images
    recorder = vgg_loss(vgg, content, style)
    result = optimize(recorder, content, 10, OptimConfig(tolerance=0.0))
    best = int(np.argmin(recorder.values))
    assert result.loss == min(recorder.values)
    torch.testing.assert_close(result.image, recorder.images[best].clamp(0.0, 1.0))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_quadratic_converges_to_target(optimizer: str) -> None:
    target = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    config = OptimConfig(optimizer=optimizer, adam_lr=0.05, tolerance=0.0)
    budget = 20 if optimizer == "lbfgs" else 400
    result = optimize(quadratic(target), torch.zeros(1, 3, 4, 4), budget, config)
    torch.testing.assert_close(result.image, target, atol=1e-3, rtol=0)


def test_init_is_not_modified() -> None:
    init = torch.zeros(1, 3, 2, 2)
    optimize(quadratic(torch.ones(1, 3, 2, 2)), init, 5, OptimConfig())
    assert torch.equal(init, torch.zeros(1, 3, 2, 2))


def test_nan_loss_is_a_divergence_error() -> None:
    def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return x.sum() * float("nan"), {}

    with pytest.raises(DivergenceError) as info:
        optimize(loss_fn, torch.zeros(1, 3, 2, 2), 10, OptimConfig())
    assert str(info.value) == (
        "loss became nan at evaluation 1; lower --style-weight or --temporal-weight, "
        "or try --optimizer adam"
    )


def test_infinite_loss_later_is_a_divergence_error() -> None:
    calls = []

    def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        calls.append(1)
        scale = float("inf") if len(calls) == 3 else 1.0
        return (x - 1).pow(2).sum() * scale, {}

    with pytest.raises(DivergenceError, match=r"^loss became inf at evaluation 3; "):
        optimize(loss_fn, torch.zeros(1, 3, 2, 2), 10, OptimConfig(optimizer="adam"))


def test_lbfgs_backs_off_from_an_overflowing_trial_step() -> None:
    """+inf outside a box: trial steps that leave it are rejected by the line search, not
    reported as a divergence (torch.optim.LBFGS ends in nan here)."""

    def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        value = 0.01 * (x * x).sum() - x.sum()
        return torch.where((x.abs() >= 1).any(), math.inf, value), {}

    result = optimize(loss_fn, torch.zeros(1, 3, 2, 2), 60, OptimConfig(tolerance=0.0))
    assert math.isfinite(result.loss) and result.loss < -11.8  # the wall at x = 1: -11.88


def test_lasting_nan_after_the_start_keeps_the_best_finite_iterate() -> None:
    """L-BFGS never accepts a non-finite point: when every step turns nan it stops there."""
    calls = []

    def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        calls.append(x.detach().clone())
        scale = math.nan if len(calls) >= 3 else 1.0
        return (x - 1).pow(2).sum() * scale, {}

    result = optimize(loss_fn, torch.zeros(1, 3, 2, 2), 100, OptimConfig(tolerance=0.0))
    assert result.stop == "converged" and result.evaluations < 100
    assert result.loss == pytest.approx(float((calls[1] - 1).pow(2).sum()))
    torch.testing.assert_close(result.image, calls[1])


def test_progress_events_every_log_every() -> None:
    events: list[Event] = []
    config = OptimConfig(optimizer="adam", tolerance=0.0, log_every=4)
    result = optimize(quadratic(torch.ones(1, 3, 2, 2)), torch.zeros(1, 3, 2, 2), 10, config,
                      events.append)  # fmt: skip
    assert [e.evaluation for e in events if isinstance(e, Iteration)] == [4, 8]
    assert all(isinstance(e, Iteration) and e.budget == 10 for e in events)
    assert events[-1].loss >= result.loss


@pytest.mark.slow
def test_high_style_weight_never_diverges(
    state_dict: Mapping[str, Tensor],
    style_rgb: np.ndarray,
    make_image: Callable[..., np.ndarray],
) -> None:
    """The seed tutorial's style weight (1e6) with L-BFGS on several random contents."""
    settings = Settings(
        loss=LossConfig(style_weight=1e6),
        optim=OptimConfig(iterations=8, log_every=1, tolerance=0.0),
        image=ImageConfig(size=32),
        # The optimizer's own progress: fp32 whatever `auto` means on this CPU (with random
        # weights at 32 px, bf16 features move a loss of 3e6 by less than 20% in 8 steps).
        compute=ComputeConfig(precision="fp32"),
    )
    engine = Engine(state_dict, [style_rgb], settings, torch.device("cpu"))
    for seed in range(5):
        content = make_image(24, 32, 100 + seed)
        events: list[Event] = []
        done = engine.stylize(content, content, 8, callback=events.append)
        initial = events[0].loss  # best after evaluation 1 == loss of the start image
        assert math.isfinite(done.optimization.loss)
        # The best iterate can never be worse than the start; demand real progress instead.
        assert done.optimization.loss < 0.8 * initial
        assert done.optimization.evaluations == 8
        pixels = done.optimization.image
        assert pixels.min() >= 0.0 and pixels.max() <= 1.0


def test_adam_reads_the_device_only_every_log_every(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real_read = device.to_host
    monkeypatch.setattr(device, "to_host", lambda *v: reads.append(len(v)) or real_read(*v))
    config = OptimConfig(optimizer="adam", tolerance=0.0, log_every=5)
    result = optimize(quadratic(torch.ones(1, 3, 2, 2)), torch.zeros(1, 3, 2, 2), 12, config)
    # Two full batches, the rest once the budget ends, then the best iterate's terms.
    assert reads == [5, 5, 2, 1]
    assert result.evaluations == 12


def test_log_every_must_be_positive() -> None:
    with pytest.raises(OptionError, match=r"^log every must be >= 1, got 0$"):
        OptimConfig(log_every=0).validate()
