"""L-BFGS with a strong-Wolfe line search that reads values off the device only to branch.

torch.optim.LBFGS passes each history dot product to `Tensor.add_` as a Python number, so one
iteration with a full history waits for the device about 2 x history_size times; on a GPU every
wait drains the queue. Here the inverse-Hessian product uses the compact form of Byrd, Nocedal
and Schnabel (1994): a few matrix-vector products and two small triangular solves, queued without
a single read. Per evaluation the line search reads two numbers (loss, slope) in one copy; per
iteration, one more read gives the new direction's slope and size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from nst_video.core import device

# Wolfe constants of Nocedal & Wright (Algorithm 3.5): sufficient decrease and curvature.
C1, C2 = 1e-4, 0.9
MAX_SEARCH = 25  # evaluations per line search
MIN_CURVATURE = 1e-10  # pairs with s.y below this would make the estimate indefinite
# A first step that moves no variable by this much may change the loss by less than the
# rounding of a bf16 or TF32 evaluation (a 1024 px frame: 1/|g|_1 moved pixels by ~1e-5 of
# their [0, 1] range); it is tried once more at this size: about one grey level.
VISIBLE_STEP = 1.0 / 255.0

Evaluate = Callable[[], Tensor]  # loss at the current x, with x.grad filled in
# Told each evaluated loss as soon as it is on the host, and whether it is a line-search trial
# (a step the search may still reject) rather than the starting point.
Observe = Callable[[float, bool], None]


@dataclass(frozen=True)
class _Point:
    """One evaluation along the search line x0 + t d."""

    t: float
    f: float
    slope: float  # directional derivative g . d
    grad: Tensor


class History:
    """The newest `size` curvature pairs (s, y) in ring buffers, with their inner products kept
    current so that applying the inverse-Hessian estimate needs no loop over the pairs."""

    def __init__(self, size: int):
        self.size = size
        self.count = 0  # pairs pushed since the last reset
        self._s = self._y = torch.empty(0)
        self._sy = self._yy = torch.empty(0)  # [i, j] = s_i . y_j and y_i . y_j, by slot

    def __len__(self) -> int:
        return min(self.count, self.size)

    def reset(self) -> None:
        self.count = 0

    def push(self, s: Tensor, y: Tensor) -> None:
        if self._s.numel() == 0:  # allocated on first use: short runs never need it
            self._s = s.new_zeros(self.size, s.numel())
            self._y = s.new_zeros(self.size, s.numel())
            # The small matrices in fp64 where the device has it (MPS has not).
            acc = torch.float32 if s.device.type == "mps" else torch.float64
            self._sy = s.new_zeros(self.size, self.size, dtype=acc)
            self._yy = s.new_zeros(self.size, self.size, dtype=acc)
        k = self.count % self.size
        self._s[k], self._y[k] = s, y
        acc = self._sy.dtype
        yy = (self._y @ y).to(acc)
        self._sy[:, k] = (self._s @ y).to(acc)
        self._sy[k, :] = (self._y @ s).to(acc)
        self._yy[:, k] = yy
        self._yy[k, :] = yy
        self.count += 1

    def apply(self, g: Tensor) -> Tensor:
        """H g for the current estimate H of the inverse Hessian (g itself with no pairs)."""
        n = len(self)
        if n == 0:
            return g.clone()
        # Chronological order of the slots in use; while filling, slots 0..n-1 are in order.
        first = (self.count - n) % self.size
        order = (torch.arange(n, device=g.device) + first) % self.size
        s, y = self._s[:n], self._y[:n]  # all slots are in use once the ring wraps
        newest = (self.count - 1) % self.size
        gamma = self._sy[newest, newest] / self._yy[newest, newest]  # H0 = gamma I
        sy = self._sy[order][:, order]
        r = torch.triu(sy)
        acc = self._sy.dtype
        u = (s @ g).to(acc)[order]
        w = (y @ g).to(acc)[order]
        v = torch.linalg.solve_triangular(r, u[:, None], upper=True)[:, 0]
        rhs = torch.diagonal(sy) * v + gamma * (self._yy[order][:, order] @ v) - gamma * w
        p = torch.linalg.solve_triangular(r.T, rhs[:, None], upper=False)[:, 0]
        # Back from chronological order to slots, then H g = gamma g + S p - gamma Y v.
        zeros = torch.zeros(n, dtype=acc, device=g.device)
        coef_s = zeros.index_copy(0, order, p).to(g.dtype)
        coef_y = zeros.index_copy(0, order, -gamma * v).to(g.dtype)
        return g * gamma.to(g.dtype) + s.T @ coef_s + y.T @ coef_y


def minimize(
    evaluate: Evaluate, x: Tensor, history: History, observe: Observe, scale: Tensor | None = None
) -> None:
    """Minimize over `x` (a leaf tensor, changed in place) until `evaluate` raises (the caller
    owns the budget and the stopping rule) or no step along the gradient lowers the loss.
    `history` starts empty. `scale` (positive, x's shape) preconditions: L-BFGS runs in the
    variables x / scale, so its initial inverse Hessian is gamma * scale^2 rather than gamma."""
    flat = x.detach().view(-1)
    p = None if scale is None else scale.detach().reshape(-1).to(flat.dtype)
    f_dev = evaluate()
    g = _grad(x)
    f = device.to_host(f_dev)[0]
    observe(f, False)
    d = _direction(history, g, p)
    while True:
        slope, d_max, x_max, g_l1 = device.to_host(
            g.dot(d), d.abs().max(), flat.abs().max(), (g if p is None else g * p).abs().sum()
        )
        if not slope < 0.0 and len(history):
            # Rounding made H g useless (not a descent direction): start again from the gradient.
            history.reset()
            d = _direction(history, g, p)
            continue
        # With curvature pairs a unit step is the natural one; without, a step that moves the
        # (scaled) variables by about 1 / |g|_1 in all, as torch.optim.LBFGS starts.
        scaled = len(history) > 0
        step = 1.0 if scaled else (min(1.0, 1.0 / g_l1) if g_l1 > 0 else 1.0)
        base = flat.clone()
        at = _Line(evaluate, x, flat, base, d, observe)
        start, resolution = _Point(0.0, f, slope, g), _resolution(x_max, d_max, flat)
        found = _search(at, start, step, resolution)
        if found.t == 0.0 and not scaled and step * d_max < VISIBLE_STEP:
            flat.copy_(base)
            found = _search(at, start, VISIBLE_STEP / d_max, resolution)
        if found.t == 0.0:
            flat.copy_(base)
            if not scaled:
                return  # not even the gradient decreases the loss at this precision: done
            # The curvature pairs mislead: start again from the gradient.
            history.reset()
            d = _direction(history, g, p)
            continue
        if at.last_t != found.t:  # the search ended on an earlier, better point
            torch.add(base, d, alpha=found.t, out=flat)
        # y.s from the slopes already read: (g1 - g0) . (t d) = t (slope1 - slope0)
        if found.t * (found.slope - slope) > MIN_CURVATURE:  # s.y is the same in both variables
            s, y = d * found.t, found.grad - g
            history.push(s if p is None else s / p, y if p is None else y * p)
        f, g = found.f, found.grad
        d = _direction(history, g, p)


def _direction(history: History, g: Tensor, p: Tensor | None) -> Tensor:
    """-H g, with H the estimate in the scaled variables z = x / p carried back to x."""
    if p is None:
        return -history.apply(g)
    return -(history.apply(g * p) * p)


def _resolution(x_max: float, d_max: float, flat: Tensor) -> float:
    """The smallest step along d that still changes x at its floating-point precision."""
    if not d_max > 0.0:
        return 0.0
    return torch.finfo(flat.dtype).eps * max(1.0, x_max) / d_max


def _grad(x: Tensor) -> Tensor:
    if x.grad is None:
        raise RuntimeError("the objective must fill in x.grad")
    return x.grad.detach().reshape(-1)


class _Line:
    """Evaluates along x = base + t d, remembering the last t written into x."""

    def __init__(self, evaluate: Evaluate, x: Tensor, flat: Tensor, base: Tensor, d: Tensor,
                 observe: Observe):  # fmt: skip
        self.evaluate, self.x, self.flat, self.base, self.d = evaluate, x, flat, base, d
        self.observe = observe
        self.last_t = math.nan

    def __call__(self, t: float) -> _Point:
        with torch.no_grad():
            torch.add(self.base, self.d, alpha=t, out=self.flat)
        self.last_t = t
        f = self.evaluate()
        g = _grad(self.x)
        value, slope = device.to_host(f, g.dot(self.d))
        self.observe(value, True)
        return _Point(t, value, slope, g)


def _search(phi: Callable[[float], _Point], start: _Point, t: float, width: float = 0.0) -> _Point:
    """A step satisfying the strong Wolfe conditions (Nocedal & Wright, Algorithm 3.5), or the
    best point seen when the evaluations run out or the bracket is narrower than `width`;
    `start` (t = 0) when nothing decreased."""
    prev = start
    for i in range(MAX_SEARCH):
        new = phi(t)
        if not _sufficient(start, new) or (i > 0 and new.f >= prev.f):
            return _zoom(phi, start, prev, new, MAX_SEARCH - i - 1, width)
        if abs(new.slope) <= -C2 * start.slope:
            return new
        if new.slope >= 0.0:
            return _zoom(phi, start, new, prev, MAX_SEARCH - i - 1, width)
        # Still descending: extrapolate, by at least 10% and at most 10x.
        t = _cubic(prev, new, 1.1 * new.t, 10.0 * new.t)
        prev = new
    return prev


def _zoom(phi: Callable[[float], _Point], start: _Point, lo: _Point, hi: _Point,
          evaluations: int, width: float) -> _Point:  # fmt: skip
    """Shrinks the bracket [lo, hi] (lo: the lowest point meeting sufficient decrease)."""
    for _ in range(evaluations):
        a, b = sorted((lo.t, hi.t))
        if b - a <= max(width, 1e-12 * b):
            break
        # Stay 10% inside the bracket so that it shrinks even when the cubic hugs one end.
        new = phi(_cubic(lo, hi, a + 0.1 * (b - a), b - 0.1 * (b - a)))
        if not _sufficient(start, new) or new.f >= lo.f:
            hi = new
            continue
        if abs(new.slope) <= -C2 * start.slope:
            return new
        if new.slope * (hi.t - lo.t) >= 0.0:
            hi = lo
        lo = new
    return lo


def _sufficient(start: _Point, new: _Point) -> bool:
    return new.f <= start.f + C1 * new.t * start.slope


def _cubic(a: _Point, b: _Point, low: float, high: float) -> float:
    """Minimizer of the cubic through a and b (values and slopes), kept in [low, high]."""
    d1 = a.slope + b.slope - 3.0 * (a.f - b.f) / (a.t - b.t)
    disc = d1 * d1 - a.slope * b.slope
    denominator = b.slope - a.slope + 2.0 * math.copysign(math.sqrt(max(disc, 0.0)), b.t - a.t)
    if disc < 0.0 or denominator == 0.0 or not math.isfinite(denominator):
        return (low + high) / 2.0
    d2 = math.copysign(math.sqrt(disc), b.t - a.t)
    t = b.t - (b.t - a.t) * (b.slope + d2 - d1) / denominator
    return min(max(t, low), high) if math.isfinite(t) else (low + high) / 2.0
