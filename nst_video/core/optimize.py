"""Optimize an image's pixels against a loss: L-BFGS (default) or Adam, with early stopping."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import Tensor

from nst_video.config import OptimConfig
from nst_video.core import device, lbfgs
from nst_video.errors import DivergenceError
from nst_video.progress import ITERATE, TERMS, Callback, Iteration, ignore, wants

LossFn = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]


@dataclass(frozen=True)
class OptimizeResult:
    image: Tensor  # (1, 3, H, W) in [0, 1], the best iterate seen
    evaluations: int
    loss: float
    terms: dict[str, float]
    stop: str  # budget | converged


class _Stop(Exception):
    """Raised from inside an evaluation to end the optimizer at an exact evaluation count."""


class _Tracker:
    """Counts evaluations, keeps the best iterate, and decides when to stop.

    L-BFGS hands over each loss already on the host (its line search needs it). Adam's losses
    stay on the device and are read `log_every` at a time; the best iterate is kept there too.
    """

    def __init__(self, x: Tensor, budget: int, config: OptimConfig, callback: Callback):
        self.budget, self.config, self.callback = budget, config, callback
        self.evaluations = 0
        self.best_loss = float("inf")
        self.best_image = x.detach().clone()
        self.best_terms: dict[str, Tensor] = {}
        self.history: list[float] = []  # best loss after each evaluation read so far
        self.stop = "budget"
        self.terms: dict[str, Tensor] = {}  # of the latest evaluation
        self._pending: list[Tensor] = []  # Adam: losses not read yet
        self._best_on_device: Tensor | None = None

    def before_evaluation(self) -> None:
        if self.evaluations >= self.budget or self.stop == "converged":
            raise _Stop
        self.evaluations += 1

    def record(self, x: Tensor, loss: float, trial: bool) -> None:
        """An evaluation whose loss is on the host: the best iterate is decided here. A non-finite
        line-search trial is no divergence: the search rejects it and backs off, and L-BFGS
        never moves to such a point."""
        if math.isfinite(loss) and loss < self.best_loss:
            self.best_image.copy_(x.detach())
            self.best_terms = {k: v.detach() for k, v in self.terms.items()}
        self._read([loss], nonfinite_ok=trial)

    def push(self, loss: Tensor, x: Tensor) -> None:
        """An evaluation whose loss stays on the device; read every `log_every` evaluations."""
        loss = loss.detach()
        if self._best_on_device is None:
            self._best_on_device = torch.full_like(loss, math.inf)
        better = loss < self._best_on_device  # false for nan: a diverged step is never kept
        self._best_on_device = torch.where(better, loss, self._best_on_device)
        self.best_image = torch.where(better, x.detach(), self.best_image)
        self.best_terms = {
            k: torch.where(better, v.detach(), self.best_terms.get(k, v.detach()))
            for k, v in self.terms.items()
        }
        self._pending.append(loss)
        if len(self._pending) >= self.config.log_every:
            self.settle()

    def settle(self) -> None:
        if self._pending:
            values = device.to_host(*self._pending)
            self._pending.clear()
            self._read(values)

    def _read(self, values: list[float], nonfinite_ok: bool = False) -> None:
        """Losses of the latest `len(values)` evaluations, in order."""
        first = self.evaluations - len(values) + 1
        for evaluation, loss in enumerate(values, start=first):
            if math.isfinite(loss):
                self.best_loss = min(self.best_loss, loss)
            elif not nonfinite_ok:
                raise DivergenceError(
                    f"loss became {loss} at evaluation {evaluation}; lower --style-weight or "
                    "--temporal-weight, or try --optimizer adam"
                )
            self.history.append(self.best_loss)
            if evaluation % self.config.log_every == 0:
                self.callback(
                    Iteration(evaluation, self.budget, self.best_loss, self._terms(), self._image())
                )
            if self._converged():
                self.stop = "converged"

    def _terms(self) -> dict[str, float] | None:
        """The best iterate's terms on the host, only for a callback that asks for them."""
        if not wants(self.callback, TERMS) or not self.best_terms:
            return None
        names = list(self.best_terms)
        return dict(zip(names, device.to_host(*self.best_terms.values()), strict=True))

    def _image(self) -> np.ndarray | None:
        """The best iterate as HxWx3 uint8, only for a callback that asks for it."""
        if not wants(self.callback, ITERATE):
            return None
        array = self.best_image.detach()[0].clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()
        return np.rint(array * 255.0).astype(np.uint8)

    def _converged(self) -> bool:
        window = self.config.window
        if len(self.history) <= window:
            return False
        before = self.history[-window - 1]
        return (before - self.best_loss) <= self.config.tolerance * abs(before)


def optimize(
    loss_fn: LossFn,
    init: Tensor,
    budget: int,
    config: OptimConfig,
    callback: Callback = ignore,
    scale: Tensor | None = None,
) -> OptimizeResult:
    """Minimize `loss_fn` over the pixels, starting at `init`, in at most `budget` evaluations.
    `scale` (positive, init's shape): L-BFGS's diagonal preconditioner (lbfgs.minimize); Adam
    keeps its own per-pixel step sizes and ignores it."""
    x = init.detach().clone().contiguous().requires_grad_(True)
    tracker = _Tracker(x, budget, config, callback)
    history = lbfgs.History(config.history_size)

    def evaluate() -> Tensor:
        tracker.before_evaluation()
        x.grad = None  # a fresh gradient tensor: L-BFGS keeps earlier ones
        total, tracker.terms = loss_fn(x)
        total.backward()
        return total

    try:
        if config.optimizer == "adam":
            _adam(evaluate, x, tracker, config.adam_lr)
        else:
            lbfgs.minimize(evaluate, x, history, partial(tracker.record, x), scale)
            tracker.stop = "converged"  # returned: no step lowers the loss any more
    except _Stop:
        pass
    tracker.settle()
    names = list(tracker.best_terms)
    terms = (
        dict(zip(names, device.to_host(*tracker.best_terms.values()), strict=True)) if names else {}
    )
    return OptimizeResult(
        image=tracker.best_image.clamp_(0.0, 1.0),
        evaluations=tracker.evaluations,
        loss=tracker.best_loss,
        terms=terms,
        stop=tracker.stop,
    )


def _adam(evaluate: Callable[[], Tensor], x: Tensor, tracker: _Tracker, lr: float) -> None:
    adam = torch.optim.Adam([x], lr=lr)
    while True:
        tracker.push(evaluate(), x)
        adam.step()
