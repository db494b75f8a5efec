"""Optical flow, warping and the forward-backward consistency check of Ruder et al. (2016).

Flows are HxWx2 float32 arrays of (dx, dy) in pixels. A flow F computed from ``src`` to ``dst``
satisfies ``dst(x + F(x)) ~= src(x)``, so ``warp(dst, F)`` pulls ``dst`` back onto ``src``'s grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from nst_video.config import WARP_INTERPOLATIONS, check_flow_method, check_scene_cut_threshold
from nst_video.errors import unknown_choice

# Resampling kernels for `warp`. Bilinear suits flows, masks and the warping-error metric; it is
# a low-pass filter, though, and a warm-start chain resamples its own output hundreds of times.
_INTERPOLATIONS = {
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}

Flow = np.ndarray

# OpenCV's DIS flow refuses frames under 12 px and crashed (segfault) on 14x40 and 15x200;
# 16 px worked at every shape tried. Farneback needs 2 px.
FLOW_MIN_SIDE = 16


@dataclass(frozen=True)
class SideNeed:
    """A short side, in pixels, that something besides the network needs (said in errors)."""

    side: int
    what: str


def size_need(init: str, method: str) -> SideNeed | None:
    """What a render's optical flow needs of its frames (--init, --flow): none without flow."""
    return SideNeed(FLOW_MIN_SIDE, "optical flow") if init == "flow" and method != "none" else None


# Farneback: 4 pyramid levels at scale 0.5 reach motions of ~30 px on a 15 px window, enough
# for consecutive video frames; the other values are OpenCV's documented typical settings.
_FARNEBACK_PARAMS = {
    "pyr_scale": 0.5,
    "levels": 4,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.1,
    "flags": 0,
}

# Thresholds from Ruder et al. (2016), section 3.2.
_DISOCCLUSION_REL = 0.01
_DISOCCLUSION_ABS = 0.5
_BOUNDARY_REL = 0.01
_BOUNDARY_ABS = 0.002

# Largest per-channel color difference (colors in [0, 1]) between a frame and its warped
# predecessor that still counts as "the same surface": well above sensor and compression noise,
# well below the typical difference between unrelated shots.
_MATCH_TOLERANCE = 0.1


def _check_frames(src: np.ndarray, dst: np.ndarray) -> None:
    if src.shape != dst.shape:
        raise ValueError(f"frames differ in shape: {src.shape} vs {dst.shape}")
    if src.ndim != 3 or src.shape[2] != 3:
        raise ValueError(f"expected HxWx3 RGB frames, got shape {src.shape}")
    if src.dtype != np.uint8 or dst.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {src.dtype} and {dst.dtype}")


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def _dis_flow(src: np.ndarray, dst: np.ndarray) -> Flow:
    # MEDIUM rather than a hand-tuned finer setting: on a 320x240 synthetic shift it is ~7x
    # faster for under 0.01 px extra endpoint error. A fresh instance per call keeps calls
    # independent (no state carried between frames or threads).
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_gray(src), _gray(dst), None)


def _farneback_flow(src: np.ndarray, dst: np.ndarray) -> Flow:
    return cv2.calcOpticalFlowFarneback(_gray(src), _gray(dst), None, **_FARNEBACK_PARAMS)


def compute_flow(src: np.ndarray, dst: np.ndarray, method: str = "dis") -> Flow:
    """Flow F with ``dst(x + F(x)) ~= src(x)`` between two HxWx3 uint8 RGB frames."""
    check_flow_method(method)
    _check_frames(src, dst)
    if method == "none":
        return np.zeros((*src.shape[:2], 2), np.float32)
    flow = _dis_flow(src, dst) if method == "dis" else _farneback_flow(src, dst)
    return np.asarray(flow, dtype=np.float32)


def _sample_maps(flow: Flow) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampling coordinates x + flow(x), one map per axis."""
    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image: np.ndarray, flow: Flow, interpolation: str = "linear") -> np.ndarray:
    """Backward warp ``out(x) = image(x + flow(x))``, edges replicated; bilinear by default,
    or "cubic" / "lanczos" (8x8 Lanczos, for images warped again and again).

    cv2.remap quantizes sub-pixel positions to 1/32 px; that is far below what style transfer
    can see and keeps warping a few milliseconds per frame. uint8 results saturate to 0..255;
    float results of the sharper kernels can overshoot the input's range slightly.
    """
    if interpolation not in _INTERPOLATIONS:
        raise unknown_choice("warp interpolation", interpolation, WARP_INTERPOLATIONS)
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    map_x, map_y = _sample_maps(np.asarray(flow, dtype=np.float32))
    out = cv2.remap(
        np.ascontiguousarray(image),
        map_x,
        map_y,
        interpolation=_INTERPOLATIONS[interpolation],
        borderMode=cv2.BORDER_REPLICATE,
    )
    # cv2 drops a trailing singleton channel axis.
    return out.reshape(image.shape)


def _squared_norm(flow: Flow) -> np.ndarray:
    return flow[..., 0] ** 2 + flow[..., 1] ** 2


def _disoccluded(forward: Flow, backward: Flow) -> np.ndarray:
    # A consistent point goes back along `backward` and returns along `forward` to where it
    # started, so the two vectors cancel; the relative term tolerates larger error for fast motion.
    w_tilde = warp(forward, backward)
    mismatch = _squared_norm(w_tilde + backward)
    tolerance = _DISOCCLUSION_REL * (_squared_norm(w_tilde) + _squared_norm(backward))
    return mismatch > tolerance + _DISOCCLUSION_ABS


def _motion_boundary(backward: Flow) -> np.ndarray:
    grad_sq = np.zeros(backward.shape[:2], np.float32)
    for channel in range(2):
        d_dy, d_dx = np.gradient(backward[..., channel])
        grad_sq += d_dx**2 + d_dy**2
    return grad_sq > _BOUNDARY_REL * _squared_norm(backward) + _BOUNDARY_ABS


# Samples up to half a pixel outside the frame still land on the (replicated) edge pixel: only
# farther ones are really new content. Counting sub-pixel outward flow as "left the frame"
# masked the whole border on near-static shots, and refilling it from the content cost about
# 60 extra evaluations per frame.
_EDGE_SLACK = 0.5


def _leaves_frame(backward: Flow) -> np.ndarray:
    height, width = backward.shape[:2]
    map_x, map_y = _sample_maps(backward)
    low, high_x, high_y = -_EDGE_SLACK, width - 1 + _EDGE_SLACK, height - 1 + _EDGE_SLACK
    return (map_x < low) | (map_x > high_x) | (map_y < low) | (map_y > high_y)


def consistency_mask(forward: Flow, backward: Flow) -> np.ndarray:
    """HxW float32 weights: 1 where the flows agree, 0 at disocclusions and motion boundaries.

    ``backward`` runs from frame i to frame i-1 and ``forward`` from frame i-1 to frame i.
    Points that ``backward`` sends outside the frame are 0 too: nothing there to carry over.
    """
    if forward.shape != backward.shape:
        raise ValueError(f"flows differ in shape: {forward.shape} vs {backward.shape}")
    forward = np.asarray(forward, dtype=np.float32)
    backward = np.asarray(backward, dtype=np.float32)
    bad = _disoccluded(forward, backward) | _motion_boundary(backward) | _leaves_frame(backward)
    return (~bad).astype(np.float32)


def long_term_masks(masks: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Ruder et al.'s long-term weights: c_long(k) = max(c(k) - sum of c(j) over the given
    offsets j < k, 0), where c(k) is the consistency mask between frame t and frame t-k.

    Each pixel is so constrained by the nearest earlier frame in which it was visible and
    reliably tracked; with 0/1 masks the results are 0/1 and disjoint. Keys are offsets.
    """
    out: dict[int, np.ndarray] = {}
    covered: np.ndarray | None = None
    for offset in sorted(masks):
        c = np.asarray(masks[offset], dtype=np.float32)
        out[offset] = c if covered is None else np.maximum(c - covered, 0.0)
        covered = c if covered is None else covered + c
    return out


@dataclass(frozen=True, eq=False)
class FrameFlow:
    """Flow from frame i back to frame i-1 and the weights saying where it can be trusted.

    ``matched`` (HxW bool, optional) marks pixels where frame i agrees in color with the warped
    frame i-1; only scene-cut detection uses it, because flow methods return small, smooth and
    hence self-consistent flows between unrelated images.
    """

    backward: Flow
    mask: np.ndarray
    matched: np.ndarray | None = None

    @property
    def consistent_fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0


def _color_match(prev: np.ndarray, cur: np.ndarray, backward: Flow) -> np.ndarray:
    warped = warp(_unit_range(prev), backward)
    return np.abs(_unit_range(cur) - warped).max(axis=2) <= _MATCH_TOLERANCE


def frame_flow(prev: np.ndarray, cur: np.ndarray, method: str = "dis") -> FrameFlow:
    """Backward flow (cur -> prev) and its consistency mask for the pair of input frames."""
    if method == "none":
        _check_frames(prev, cur)
        height, width = cur.shape[:2]
        return FrameFlow(
            backward=np.zeros((height, width, 2), np.float32),
            mask=np.ones((height, width), np.float32),
        )
    backward = compute_flow(cur, prev, method)
    forward = compute_flow(prev, cur, method)
    return FrameFlow(
        backward=backward,
        mask=consistency_mask(forward, backward),
        matched=_color_match(prev, cur, backward),
    )


def is_scene_cut(motion: FrameFlow, threshold: float = 0.5) -> bool:
    """True when less than ``threshold`` of the frame is reliably tracked from the previous one.

    A pixel is reliable when it passes the consistency check and, if ``motion.matched`` is set,
    also matches in color. Across a cut most pixels fail one or the other, while even fast
    camera motion keeps most of the frame reliable. Method "none" never reports a cut.
    """
    check_scene_cut_threshold(threshold)
    reliable = motion.mask > 0.5
    if motion.matched is not None:
        reliable &= motion.matched
    fraction = float(reliable.mean()) if reliable.size else 0.0
    return fraction < threshold


def _unit_range(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32)


def warping_error(prev_out: np.ndarray, cur_out: np.ndarray, motion: FrameFlow) -> float:
    """Mean squared difference between ``cur_out`` and the warped ``prev_out`` (Lai et al. 2018).

    Averaged over consistent pixels (mask > 0.5) and channels, with colors in [0, 1];
    0.0 when no pixel is consistent.
    """
    if prev_out.shape != cur_out.shape:
        raise ValueError(f"outputs differ in shape: {prev_out.shape} vs {cur_out.shape}")
    valid = motion.mask > 0.5
    if not valid.any():
        return 0.0
    # Warp in float so uint8 inputs are not rounded before the comparison.
    warped = warp(_unit_range(prev_out), motion.backward)
    diff = (_unit_range(cur_out) - warped)[valid]
    return float(np.mean(np.square(diff, dtype=np.float64)))


def pair_flows(
    prev: np.ndarray, cur: np.ndarray, method: str = "dis"
) -> tuple[FrameFlow, FrameFlow]:
    """``frame_flow(prev, cur)`` and ``frame_flow(cur, prev)`` from the same two flows.

    A backward pass warps frame i+1's output onto frame i (the second), and decides a scene cut
    between them as the forward pass did (the first), so every pass agrees on the cuts.
    """
    if method == "none":
        still = frame_flow(prev, cur, method)
        return still, still
    backward = compute_flow(cur, prev, method)
    forward = compute_flow(prev, cur, method)
    ahead = FrameFlow(
        backward, consistency_mask(forward, backward), _color_match(prev, cur, backward)
    )
    behind = FrameFlow(
        forward, consistency_mask(backward, forward), _color_match(cur, prev, forward)
    )
    return ahead, behind
