from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from nst_video.errors import OptionError
from nst_video.video.flow import (
    FrameFlow,
    compute_flow,
    consistency_mask,
    frame_flow,
    is_scene_cut,
    long_term_masks,
    warp,
    warping_error,
)

SIZE = 64
PAD = 8
SHIFT = (3, -2)  # (dx, dy): content moves 3 px right and 2 px up from src to dst
INTERIOR = (slice(PAD, -PAD), slice(PAD, -PAD))
METHODS = ("dis", "farneback")


def _texture(seed: int, size: int = SIZE, pad: int = 0) -> np.ndarray:
    """Blurred noise: smooth enough for flow to be well defined, varied enough to track."""
    noise = np.random.default_rng(seed).random((size + 2 * pad, size + 2 * pad, 3))
    blurred = cv2.GaussianBlur(noise.astype(np.float32), (0, 0), 2.0)
    scaled = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    return np.round(scaled * 255).astype(np.uint8)


def _shifted_pair() -> tuple[np.ndarray, np.ndarray]:
    big = _texture(0, pad=PAD)
    dx, dy = SHIFT
    src = big[PAD : PAD + SIZE, PAD : PAD + SIZE]
    # dst(x + shift) = src(x)
    dst = big[PAD - dy : PAD - dy + SIZE, PAD - dx : PAD - dx + SIZE]
    return src, dst


def _constant_flow(dx: float, dy: float, size: int = SIZE) -> np.ndarray:
    flow = np.empty((size, size, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(1).random((20, 24, 3), dtype=np.float32),
        np.random.default_rng(2).integers(0, 256, (20, 24, 3), dtype=np.uint8),
        np.random.default_rng(3).random((20, 24), dtype=np.float32),
        np.random.default_rng(4).integers(0, 256, (20, 24, 1), dtype=np.uint8),
    ],
)
def test_warp_with_zero_flow_is_identity(image: np.ndarray) -> None:
    out = warp(image, np.zeros((20, 24, 2), np.float32))
    assert out.dtype == image.dtype
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("offset", [0.5, 0.25])
def test_warp_interpolates_between_neighbors(offset: float) -> None:
    ramp = np.tile(np.array([0.0, 1.0, 4.0, 9.0, 16.0], np.float32), (3, 1))
    flow = np.zeros((3, 5, 2), np.float32)
    flow[..., 0] = offset
    out = warp(ramp, flow)
    expected = (1 - offset) * ramp[:, :-1] + offset * ramp[:, 1:]
    np.testing.assert_allclose(out[:, :-1], expected, rtol=0, atol=1e-6)
    # Past the last column the edge value is replicated.
    np.testing.assert_allclose(out[:, -1], ramp[:, -1])


def _back_and_forth(image: np.ndarray, interpolation: str, steps: int) -> np.ndarray:
    """`steps` warps by +0.25 px, -0.25 px, ... in x: each pair should give the image back."""
    out = image
    for step in range(steps):
        flow = np.zeros((*image.shape[:2], 2), np.float32)
        flow[..., 0] = 0.25 if step % 2 == 0 else -0.25
        out = warp(out, flow, interpolation)
    return out


def test_bilinear_warps_blur_a_texture_and_lanczos_keeps_it() -> None:
    # A 4 px period wave: one bilinear warp by 1/4 px multiplies its amplitude by
    # |0.75 + 0.25 i| = sqrt(0.625), so 20 warps leave 0.625**10 (under 1%) of it.
    wave = np.tile(np.sin(np.pi / 2 * np.arange(32, dtype=np.float32)), (8, 1))
    inner = (slice(None), slice(8, -8))  # away from the replicated edges
    linear = _back_and_forth(wave, "linear", 20)[inner]
    lanczos = _back_and_forth(wave, "lanczos", 20)[inner]
    assert np.abs(linear).max() == pytest.approx(0.625**10, rel=0.05)
    assert 0.9 < np.abs(lanczos).max() < 1.2
    np.testing.assert_allclose(lanczos, wave[inner], atol=0.15)


def test_unknown_warp_interpolation_lists_the_valid_ones() -> None:
    with pytest.raises(OptionError, match="'nearest'.*linear, cubic, lanczos"):
        warp(np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.float32), "nearest")


def test_warp_moves_content_by_flow() -> None:
    image = np.zeros((10, 10), np.float32)
    image[4, 6] = 1.0
    out = warp(image, _constant_flow(2, -1, size=10))
    assert out[5, 4] == 1.0
    assert out.sum() == 1.0


@pytest.mark.parametrize("method", METHODS)
def test_compute_flow_recovers_a_shift(method: str) -> None:
    src, dst = _shifted_pair()
    flow = compute_flow(src, dst, method)
    assert flow.shape == (SIZE, SIZE, 2)
    assert flow.dtype == np.float32
    error = np.hypot(flow[..., 0] - SHIFT[0], flow[..., 1] - SHIFT[1])[INTERIOR]
    assert np.median(error) < 0.5


@pytest.mark.parametrize("method", METHODS)
def test_frame_flow_warps_previous_frame_onto_current(method: str) -> None:
    prev, cur = _shifted_pair()
    motion = frame_flow(prev, cur, method)
    warped = warp(prev.astype(np.float32), motion.backward)
    error = np.abs(warped - cur.astype(np.float32))[INTERIOR]
    assert error.mean() < 2.0
    blind = np.abs(prev.astype(np.float32) - cur.astype(np.float32))[INTERIOR]
    assert blind.mean() > 10 * error.mean()


@pytest.mark.parametrize("method", METHODS)
def test_mask_drops_the_band_that_entered_the_frame(method: str) -> None:
    prev, cur = _shifted_pair()
    motion = frame_flow(prev, cur, method)
    assert motion.mask.shape == (SIZE, SIZE)
    assert motion.mask.dtype == np.float32
    assert np.all(motion.mask[INTERIOR] == 1.0)
    # Content moved right by 3 and up by 2: these pixels had no counterpart in prev.
    assert np.all(motion.mask[:, : SHIFT[0]] == 0.0)
    assert np.all(motion.mask[SIZE + SHIFT[1] :, :] == 0.0)
    assert 0.8 < motion.consistent_fraction < 0.95


def test_consistent_constant_flows_give_ones() -> None:
    mask = consistency_mask(_constant_flow(1.0, 0.75), _constant_flow(-1.0, -0.75))
    np.testing.assert_array_equal(mask[1:, 1:], 1.0)
    # x + backward(x) leaves the frame (by more than half a pixel) on the first row and column.
    np.testing.assert_array_equal(mask[0, :], 0.0)
    np.testing.assert_array_equal(mask[:, 0], 0.0)


@pytest.mark.parametrize(("shift", "masked"), [(-0.4, False), (-0.5, False), (-0.6, True)])
def test_samples_within_half_a_pixel_of_the_edge_still_count(shift: float, masked: bool) -> None:
    mask = consistency_mask(_constant_flow(-shift, 0.0), _constant_flow(shift, 0.0))
    assert (mask[:, 0] == 0.0).all() == masked
    np.testing.assert_array_equal(mask[:, 1:], 1.0)


def test_backward_reversed_in_a_square_is_inconsistent() -> None:
    forward = _constant_flow(1.0, 0.5)
    backward = _constant_flow(-1.0, -0.5)
    backward[20:40, 20:40] = (1.0, 0.5)
    mask = consistency_mask(forward, backward)
    np.testing.assert_array_equal(mask[20:40, 20:40], 0.0)
    np.testing.assert_array_equal(mask[45:, 45:], 1.0)


def test_forward_disagreeing_in_a_square_is_disoccluded() -> None:
    forward = _constant_flow(1.0, 0.5)
    forward[20:30, 20:30] = 0.0
    backward = _constant_flow(-1.0, -0.5)
    mask = consistency_mask(forward, backward)
    # backward sends these pixels into the square where forward does not bring them back.
    np.testing.assert_array_equal(mask[22:29, 22:30], 0.0)
    np.testing.assert_array_equal(mask[35:, 35:], 1.0)
    np.testing.assert_array_equal(mask[1:15, 1:], 1.0)


@pytest.mark.parametrize("channel", [0, 1])
def test_step_in_flow_is_a_motion_boundary(channel: int) -> None:
    # A step of 0.4 px passes the disocclusion test (below its 0.5 px^2 floor),
    # so only the gradient test can reject it.
    backward = np.zeros((SIZE, SIZE, 2), np.float32)
    forward = np.zeros_like(backward)
    if channel == 0:
        backward[:, 32:, 0] = 0.4
    else:
        backward[32:, :, 1] = 0.4
    mask = consistency_mask(forward, backward)
    expected = np.ones((SIZE, SIZE), np.float32)
    if channel == 0:
        expected[:, 31:33] = 0.0
        # x + 0.4 is past the last column, but within the half pixel the edge still covers.
    else:
        expected[31:33, :] = 0.0
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["texture", "noise"])
def test_scene_cut_detected_for_unrelated_frames(method: str, kind: str) -> None:
    prev = _texture(0)
    if kind == "texture":
        cur = _texture(5)
    else:
        cur = np.random.default_rng(6).integers(0, 256, prev.shape, dtype=np.uint8)
    assert is_scene_cut(frame_flow(prev, cur, method))


@pytest.mark.parametrize("method", METHODS)
def test_cut_between_flat_frames_is_caught_by_color(method: str) -> None:
    # Flat frames give zero, perfectly consistent flow: only the color check sees the cut.
    prev = np.full((SIZE, SIZE, 3), 30, np.uint8)
    cur = np.full((SIZE, SIZE, 3), 200, np.uint8)
    motion = frame_flow(prev, cur, method)
    assert motion.consistent_fraction > 0.9
    assert is_scene_cut(motion)


@pytest.mark.parametrize("method", METHODS)
def test_shift_is_not_a_scene_cut(method: str) -> None:
    prev, cur = _shifted_pair()
    assert not is_scene_cut(frame_flow(prev, cur, method))


def test_scene_cut_without_color_check_uses_the_mask() -> None:
    flow = np.zeros((4, 4, 2), np.float32)
    mask = np.zeros((4, 4), np.float32)
    mask[:1] = 1.0
    motion = FrameFlow(backward=flow, mask=mask)
    assert motion.consistent_fraction == 0.25
    assert is_scene_cut(motion)
    assert not is_scene_cut(motion, threshold=0.2)


def test_scene_cut_threshold_must_be_a_fraction() -> None:
    motion = FrameFlow(backward=np.zeros((2, 2, 2), np.float32), mask=np.ones((2, 2), np.float32))
    with pytest.raises(OptionError, match="threshold"):
        is_scene_cut(motion, threshold=1.5)


def test_method_none_gives_zero_flow_and_full_mask() -> None:
    prev, cur = _texture(0), _texture(5)
    np.testing.assert_array_equal(compute_flow(prev, cur, "none"), 0.0)
    motion = frame_flow(prev, cur, "none")
    np.testing.assert_array_equal(motion.backward, 0.0)
    np.testing.assert_array_equal(motion.mask, 1.0)
    assert motion.consistent_fraction == 1.0
    assert not is_scene_cut(motion)


def test_warping_error_is_zero_for_a_perfect_warp() -> None:
    prev_out = _texture(1).astype(np.float32) / 255
    backward = _constant_flow(-2.0, 1.0)
    motion = FrameFlow(backward=backward, mask=consistency_mask(-backward, backward))
    cur_out = warp(prev_out, backward)
    assert warping_error(prev_out, cur_out, motion) == pytest.approx(0.0, abs=1e-12)


def test_warping_error_of_a_constant_offset() -> None:
    prev_out = np.full((SIZE, SIZE, 3), 0.5, np.float32)
    motion = FrameFlow(backward=_constant_flow(0, 0), mask=np.ones((SIZE, SIZE), np.float32))
    assert warping_error(prev_out, prev_out + 0.1, motion) == pytest.approx(0.01, rel=1e-5)


def test_warping_error_scales_uint8_and_ignores_masked_pixels() -> None:
    prev_out = np.full((SIZE, SIZE, 3), 100, np.uint8)
    cur_out = prev_out + np.uint8(51)
    cur_out[:, :10] = 255  # masked out below, so it must not count
    mask = np.ones((SIZE, SIZE), np.float32)
    mask[:, :10] = 0.0
    motion = FrameFlow(backward=_constant_flow(0, 0), mask=mask)
    assert warping_error(prev_out, cur_out, motion) == pytest.approx(0.2**2, rel=1e-5)


def test_warping_error_without_consistent_pixels_is_zero() -> None:
    image = np.zeros((8, 8, 3), np.float32)
    motion = FrameFlow(backward=np.zeros((8, 8, 2), np.float32), mask=np.zeros((8, 8), np.float32))
    assert warping_error(image, image + 1, motion) == 0.0


@pytest.mark.parametrize("call", [compute_flow, frame_flow])
def test_unknown_method_is_named(call: Callable[..., object]) -> None:
    src, dst = _shifted_pair()
    with pytest.raises(OptionError) as info:
        call(src, dst, "lucas-kanade")
    assert str(info.value) == "unknown flow method 'lucas-kanade'; valid: dis, farneback, none"


@pytest.mark.parametrize("method", METHODS)
def test_flow_is_deterministic(method: str) -> None:
    prev, cur = _shifted_pair()
    first, second = frame_flow(prev, cur, method), frame_flow(prev, cur, method)
    np.testing.assert_array_equal(first.backward, second.backward)
    np.testing.assert_array_equal(first.mask, second.mask)
    np.testing.assert_array_equal(compute_flow(prev, cur, method), compute_flow(prev, cur, method))


def test_mismatched_frames_are_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        compute_flow(_texture(0), _texture(0, size=32))


def test_long_term_masks_by_hand() -> None:
    # Four pixels: c(1), c(2), c(4) from the consistency checks between t and t-1, t-2, t-4.
    c1 = np.array([[1.0, 0.0, 0.0, 0.0]], np.float32)
    c2 = np.array([[1.0, 1.0, 0.0, 0.0]], np.float32)
    c4 = np.array([[1.0, 1.0, 1.0, 0.0]], np.float32)
    masks = long_term_masks({4: c4, 1: c1, 2: c2})  # any order in, by offset
    # Each pixel is tied to the nearest frame where it was reliable, and to no other.
    assert masks[1].tolist() == [[1.0, 0.0, 0.0, 0.0]]
    assert masks[2].tolist() == [[0.0, 1.0, 0.0, 0.0]]
    assert masks[4].tolist() == [[0.0, 0.0, 1.0, 0.0]]
    # Fractional weights: c_long(k) subtracts the shorter offsets' c, not their c_long
    # (1 - 0.5 - 0.75 < 0, where subtracting c_long(2) = 0.25 would leave 0.25).
    half = {1: np.full((1, 1), 0.5), 2: np.full((1, 1), 0.75), 4: np.full((1, 1), 1.0)}
    fractional = long_term_masks(half)
    assert [float(fractional[k][0, 0]) for k in (1, 2, 4)] == [0.5, 0.25, 0.0]
    # Offset 1 alone is its own mask, unchanged.
    assert long_term_masks({1: c4})[1].tolist() == c4.tolist()
