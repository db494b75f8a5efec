"""The sync-free L-BFGS: the compact inverse-Hessian product, the line search, convergence, and
how often it reads values off the device."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

from nst_video.config import OptimConfig
from nst_video.core import device, lbfgs
from nst_video.core.optimize import optimize


def two_loop(pairs: list[tuple[Tensor, Tensor]], g: Tensor) -> Tensor:
    """Nocedal & Wright's Algorithm 7.4, the textbook reference for H g."""
    q = g.clone()
    alphas = []
    for s, y in reversed(pairs):
        alpha = s.dot(q) / y.dot(s)
        q -= alpha * y
        alphas.append(alpha)
    s, y = pairs[-1]
    r = q * (s.dot(y) / y.dot(y))
    for (s, y), alpha in zip(pairs, reversed(alphas), strict=True):
        beta = y.dot(r) / y.dot(s)
        r += s * (alpha - beta)
    return r


def curvature_pairs(count: int, n: int, seed: int) -> list[tuple[Tensor, Tensor]]:
    """Pairs from a random SPD Hessian, so every s . y > 0 as in a real run."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=generator, dtype=torch.float64)
    hessian = a @ a.T / n + torch.eye(n, dtype=torch.float64)
    steps = [torch.randn(n, generator=generator, dtype=torch.float64) for _ in range(count)]
    return [(s, hessian @ s) for s in steps]


@pytest.mark.parametrize(("count", "size"), [(1, 5), (3, 5), (5, 5), (9, 4)])
def test_compact_product_equals_the_two_loop_recursion(count: int, size: int) -> None:
    pairs = curvature_pairs(count, 12, seed=count)
    history = lbfgs.History(size)
    for s, y in pairs:
        history.push(s, y)
    g = torch.randn(12, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    # After the ring wraps only the newest `size` pairs count.
    expected = two_loop(pairs[-size:], g)
    torch.testing.assert_close(history.apply(g), expected, rtol=1e-10, atol=1e-12)


def test_reset_forgets_the_pairs() -> None:
    history = lbfgs.History(4)
    for s, y in curvature_pairs(3, 6, seed=1):
        history.push(s, y)
    history.reset()
    g = torch.arange(6, dtype=torch.float64)
    torch.testing.assert_close(history.apply(g), g)
    fresh = curvature_pairs(2, 6, seed=2)
    for s, y in fresh:
        history.push(s, y)
    torch.testing.assert_close(history.apply(g), two_loop(fresh, g), rtol=1e-10, atol=1e-12)


Objective = Callable[[Tensor], Tensor]


def run(
    objective: Objective, x0: Tensor, budget: int, history: int = 10, scale: Tensor | None = None
) -> tuple[Tensor, int]:
    """Minimize with lbfgs.minimize directly; returns the final x and evaluations spent."""
    x = x0.clone().requires_grad_(True)
    spent: list[float] = []

    class Done(Exception):
        pass

    def evaluate() -> Tensor:
        if len(spent) >= budget:
            raise Done
        x.grad = None
        value = objective(x)
        value.backward()
        return value

    with pytest.raises(Done):
        lbfgs.minimize(evaluate, x, lbfgs.History(history), lambda f, trial: spent.append(f), scale)
    return x.detach(), len(spent)


def rosenbrock(x: Tensor) -> Tensor:
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def test_rosenbrock_reaches_its_minimum() -> None:
    x, _ = run(rosenbrock, torch.tensor([-1.2, 1.0], dtype=torch.float64), budget=120)
    torch.testing.assert_close(x, torch.ones(2, dtype=torch.float64), atol=1e-6, rtol=0)


def test_ill_conditioned_quadratic_converges_fast() -> None:
    n = 30
    scales = torch.logspace(0, 3, n, dtype=torch.float64)  # condition number 1000
    target = torch.linspace(-1, 1, n, dtype=torch.float64)

    def quadratic(x: Tensor) -> Tensor:
        return 0.5 * (scales * (x - target) ** 2).sum()

    x, _ = run(quadratic, torch.zeros(n, dtype=torch.float64), budget=150, history=30)
    # torch.optim.LBFGS gets within 5e-5 in 120 evaluations here; gradient descent needs
    # thousands.
    torch.testing.assert_close(x, target, atol=1e-4, rtol=0)


def test_zero_gradient_spends_the_budget_quietly() -> None:
    x, spent = run(lambda x: (x * 0).sum() + 1.0, torch.ones(4), budget=7)
    assert spent == 7
    torch.testing.assert_close(x, torch.ones(4))


def test_failed_gradient_search_ends_at_the_start() -> None:
    """Every trial step is bad (non-finite): the search backs off until its evaluations run out,
    and minimize returns with x exactly where the search began."""
    x0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    x = x0.clone().requires_grad_(True)
    losses: list[float] = []

    def evaluate() -> Tensor:
        # Fail, rather than hang, if minimize keeps searching.
        assert len(losses) < 3 * lbfgs.MAX_SEARCH, "minimize did not give up"
        x.grad = 2 * x.detach()
        return (x.detach() ** 2).sum() if torch.equal(x.detach(), x0) else x.sum() * math.nan

    lbfgs.minimize(evaluate, x, lbfgs.History(5), lambda f, trial: losses.append(f))
    assert len(losses) == 1 + lbfgs.MAX_SEARCH
    assert all(math.isnan(f) for f in losses[1:])
    assert torch.equal(x.detach(), x0)


def test_stops_when_no_step_helps_at_float32_precision() -> None:
    torch.manual_seed(0)
    target = torch.rand(1, 3, 16, 16)
    scale = torch.logspace(0, 2, target.numel()).view_as(target)
    points: list[Tensor] = []

    def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        points.append(x.detach().clone())
        value = (scale * (x - target) ** 2).sum() + 0.1 * torch.sin(5 * x).sum()
        return value, {}

    result = optimize(loss_fn, torch.full_like(target, 0.5), 400, OptimConfig(tolerance=0.0))
    # Converged to float32 resolution well inside the budget, without evaluating a point twice.
    assert result.stop == "converged" and result.evaluations < 250
    assert len({p.numpy().tobytes() for p in points}) == len(points)


def test_a_first_step_lost_in_the_loss_rounding_is_tried_again_one_grey_level_long() -> None:
    """Many pixels, a small gradient each (a 1024 px frame): 1 / |g|_1 moves every pixel by
    1e-5, a change in the loss below the rounding of its evaluation (here quantized to 1e-4,
    as a bf16 pass blurs it). Giving up there returned the content unchanged; the retry moves
    the largest pixel by 1/255 and the loss falls."""
    n = 100_000

    def quantized(x: Tensor) -> Tensor:
        exact = ((x - 0.5) ** 2).mean()
        return exact + (torch.round(exact.detach() * 1e4) / 1e4 - exact.detach())

    x, spent = run(quantized, torch.zeros(n, dtype=torch.float64), budget=40)
    # The first search alone: every pixel moved by 1e-5 changes the loss by 1e-5 < 1e-4.
    assert float(((torch.full((n,), 1e-5) - 0.5) ** 2).mean()) > 0.25 - 1e-4
    assert float(((x - 0.5) ** 2).mean()) < 0.01 and spent == 40


def line(fn: Callable[[float], tuple[float, float]]) -> Callable[[float], lbfgs._Point]:
    def phi(t: float) -> lbfgs._Point:
        f, slope = fn(t)
        return lbfgs._Point(t, f, slope, torch.empty(0))

    return phi


@pytest.mark.parametrize(
    ("fn", "t0"),
    [
        (lambda t: ((t - 3.0) ** 2, 2 * (t - 3.0)), 1.0),  # needs extrapolation
        (lambda t: ((t - 0.01) ** 2, 2 * (t - 0.01)), 1.0),  # overshoots: zoom in
        (lambda t: (math.sin(3 * t) - t / 5, 3 * math.cos(3 * t) - 0.2), 2.0),  # non-convex
    ],
)
def test_search_meets_the_strong_wolfe_conditions(
    fn: Callable[[float], tuple[float, float]], t0: float
) -> None:
    phi = line(fn)
    start = phi(0.0)
    if start.slope > 0:  # search along the descent direction
        phi = line(lambda t: (fn(-t)[0], -fn(-t)[1]))
        start = phi(0.0)
    found = lbfgs._search(phi, start, t0)
    assert found.t > 0
    assert found.f <= start.f + lbfgs.C1 * found.t * start.slope
    assert abs(found.slope) <= -lbfgs.C2 * start.slope


class ScalarReads(TorchDispatchMode):
    """Counts tensor-to-Python-number conversions (.item(), float(), bool(), alpha=tensor):
    each one is a host synchronisation on a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def wavy(target: Tensor) -> Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]:
    def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        value = ((x - target) ** 2).sum() + 0.1 * torch.sin(5 * x).sum()
        return value, {"wavy": value}

    return loss_fn


def test_lbfgs_reads_about_once_per_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real_read = device.to_host
    monkeypatch.setattr(device, "to_host", lambda *v: reads.append(len(v)) or real_read(*v))
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    with ScalarReads() as scalars:
        result = optimize(wavy(target), torch.zeros(1, 3, 8, 8), 40, OptimConfig(tolerance=0))
    assert result.evaluations > 20  # it may converge before the budget
    assert scalars.count == 0  # no hidden .item() anywhere in the loop
    # One read per evaluation, one per iteration (the new direction's slope), the start.
    assert len(reads) <= 2 * result.evaluations + 1


def test_torch_lbfgs_reads_per_history_pair() -> None:
    """What the custom optimizer avoids (documents the reason it exists)."""
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    x = torch.zeros(1, 3, 8, 8, requires_grad=True)
    optimizer = torch.optim.LBFGS([x], max_iter=20, history_size=10,
                                  line_search_fn="strong_wolfe")  # fmt: skip
    loss_fn = wavy(target)

    def closure() -> Tensor:
        optimizer.zero_grad()
        value = loss_fn(x)[0]
        value.backward()
        return value

    with ScalarReads() as scalars:
        optimizer.step(closure)
    evaluations = optimizer.state[x]["func_evals"]
    assert scalars.count > 5 * evaluations


# --- the first steps ---------------------------------------------------------------------------


def losses_of(x0: Tensor, objective: Objective, budget: int) -> list:
    """Every evaluated loss of one run of optimize (L-BFGS, no early stop)."""
    seen: list[float] = []

    def loss_fn(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        value = objective(x)
        seen.append(float(value.detach()))
        return value, {}

    optimize(loss_fn, x0, budget, OptimConfig(tolerance=0.0))
    return seen


def isotropic(x: Tensor) -> Tensor:
    """0.5 c |x - 7|^2 with c = 4: along -g the minimizer is t* = 1/c."""
    return 0.5 * 4.0 * ((x - 7.0) ** 2).sum()


def test_a_cautious_first_step_then_one_pair_lands_on_an_isotropic_minimum() -> None:
    x0 = torch.zeros(10, dtype=torch.float64)  # f = 980, |g|_1 = 280
    # The first trial is t = 1/|g|_1 = t*/70; the search extrapolates 10x (the most it may) to
    # t*/7, where the slope is 6/7 of the start's (strong Wolfe holds: <= 0.9), so that step is
    # taken; its pair gives H = I/c exactly and the unit step then hits the minimum:
    # evaluation 4.
    losses = losses_of(x0, isotropic, 6)
    assert losses[:3] == pytest.approx([980.0, 980.0 * (69 / 70) ** 2, 980.0 * (6 / 7) ** 2])
    assert losses[3] < 1e-20


def test_a_diagonal_scale_that_matches_the_curvature_solves_a_quadratic_in_one_search() -> None:
    # f = 1/2 sum h_i (x_i - c_i)^2: with scale h^-1/2 the scaled problem is isotropic, so the
    # first direction, -scale^2 g, points at the minimum and its line search lands on it.
    n = 12
    h = torch.logspace(0, 3, n, dtype=torch.float64)
    c = torch.linspace(-1, 1, n, dtype=torch.float64)

    def quadratic(x: Tensor) -> Tensor:
        return 0.5 * (h * (x - c) ** 2).sum()

    x0 = torch.zeros(n, dtype=torch.float64)
    scaled, _ = run(quadratic, x0, budget=6, scale=h.rsqrt())
    torch.testing.assert_close(scaled, c, atol=1e-9, rtol=0)
    plain, _ = run(quadratic, x0, budget=6)
    assert (plain - c).abs().max() > 0.1  # the same budget leaves plain L-BFGS far off


def test_the_scale_changes_the_path_not_the_minimum() -> None:
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    scale = torch.tensor([1.0, 0.1], dtype=torch.float64)
    x, _ = run(rosenbrock, x0, budget=150, scale=scale)
    torch.testing.assert_close(x, torch.ones(2, dtype=torch.float64), atol=1e-6, rtol=0)
