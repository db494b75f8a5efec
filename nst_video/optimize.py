"""Optimize an image's pixels against a loss: L-BFGS (default) or Adam, with early stopping."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from nst_video.config import OptimConfig
from nst_video.errors import DivergenceError
from nst_video.progress import Callback, Iteration, ignore

LossFn = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]


@dataclass(frozen=True)
class OptimizeResult:
    image: Tensor  # (1, 3, H, W) in [0, 1], the best iterate seen
    evaluations: int
    loss: float
    terms: dict[str, float]
    stop: str  # budget | converged


class _Stop(Exception):
    """Raised from inside the closure to end L-BFGS at an exact evaluation count."""


class _Tracker:
    """Counts evaluations, keeps the best iterate, and decides when to stop."""

    def __init__(self, x: Tensor, budget: int, config: OptimConfig, callback: Callback):
        self.budget, self.config, self.callback = budget, config, callback
        self.evaluations = 0
        self.best_loss = float("inf")
        self.best_image = x.detach().clone()
        self.best_terms: dict[str, Tensor] = {}
        self.history: list[float] = []  # best loss after each evaluation
        self.stop = "budget"

    def before_evaluation(self) -> None:
        if self.evaluations >= self.budget or self.stop == "converged":
            raise _Stop

    def record(self, loss: float, x: Tensor, terms: dict[str, Tensor]) -> None:
        self.evaluations += 1
        if not math.isfinite(loss):
            raise DivergenceError(
                f"loss became {loss} at evaluation {self.evaluations}; lower --style-weight or "
                "--temporal-weight, or try --optimizer adam"
            )
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_image.copy_(x.detach())
            self.best_terms = {k: v.detach() for k, v in terms.items()}
        self.history.append(self.best_loss)
        if self.evaluations % self.config.log_every == 0:
            self.callback(Iteration(self.evaluations, self.budget, self.best_loss))
        if self._converged():
            self.stop = "converged"

    def _converged(self) -> bool:
        window = self.config.window
        if len(self.history) <= window:
            return False
        before = self.history[-window - 1]
        return (before - self.best_loss) <= self.config.tolerance * abs(before)


def optimize(
    loss_fn: LossFn, init: Tensor, budget: int, config: OptimConfig, callback: Callback = ignore
) -> OptimizeResult:
    """Minimize `loss_fn` over the pixels, starting at `init`, in at most `budget` evaluations."""
    x = init.detach().clone().requires_grad_(True)
    tracker = _Tracker(x, budget, config, callback)

    def closure() -> Tensor:
        tracker.before_evaluation()
        optimizer.zero_grad(set_to_none=True)
        total, terms = loss_fn(x)
        total.backward()
        # L-BFGS reads the loss on the host anyway, so this .item() adds no extra sync.
        tracker.record(total.item(), x, terms)
        return total

    optimizer = _make_optimizer(x, config)
    try:
        while True:
            optimizer.step(closure)
    except _Stop:
        pass
    terms = {k: float(v) for k, v in tracker.best_terms.items()}
    return OptimizeResult(
        image=tracker.best_image.clamp_(0.0, 1.0),
        evaluations=tracker.evaluations,
        loss=tracker.best_loss,
        terms=terms,
        stop=tracker.stop,
    )


def _make_optimizer(x: Tensor, config: OptimConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam([x], lr=config.adam_lr)
    # Strong-Wolfe line search guarantees sufficient decrease at every step: with the seed
    # tutorial's fixed step (lr=1, no line search) L-BFGS can overshoot and diverge into noise.
    # Tolerances are zero because _Tracker owns stopping; max_iter is effectively unbounded.
    return torch.optim.LBFGS(
        [x],
        lr=1.0,
        max_iter=1_000_000,
        max_eval=1_000_000,
        history_size=config.history_size,
        tolerance_grad=0.0,
        tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )
