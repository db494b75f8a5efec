"""The frame loop's per-frame plan and the temporal consistency it buys on a moving clip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nst_video import flow
from nst_video.api import make_engine
from nst_video.checkpoint import Job, WorkDir
from nst_video.config import ImageConfig, Settings, VideoConfig
from nst_video.engine import Engine
from nst_video.frames import read_image, write_image
from nst_video.job import render_video
from nst_video.render import plan_frame

VIDEO = VideoConfig()


@pytest.fixture(scope="module")
def moving(make_moving_frames: Callable[..., list]) -> list[np.ndarray]:
    return make_moving_frames(3, 64, 48)


# --- plan_frame ----------------------------------------------------------------------------------


def test_first_frame_starts_from_content_with_first_budget(moving: list[np.ndarray]) -> None:
    plan = plan_frame(moving[0], None, None, VIDEO)
    assert plan.kind == "content"
    assert plan.budget == VIDEO.first_iterations
    assert plan.temporal is None
    assert np.array_equal(plan.init, moving[0])


def test_later_frame_starts_from_warped_previous_output(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    prev_out = make_image(48, 64, 5)
    plan = plan_frame(moving[1], moving[0], prev_out, VIDEO)
    assert plan.kind == "warped"
    assert plan.budget == VIDEO.iterations
    assert plan.temporal is not None
    assert plan.consistent is not None and plan.consistent > 0.8
    # The pattern moved 2 px right, so the previous output must have moved with it.
    moved = plan.init[:, 10:-10].astype(int) - prev_out[:, 8:-12].astype(int)
    assert np.abs(moved).mean() < 3.0
    unmoved = plan.init[:, 10:-10].astype(int) - prev_out[:, 10:-10].astype(int)
    assert np.abs(unmoved).mean() > 10.0
    kept = plan.temporal.mask > 0.5
    assert np.array_equal(plan.temporal.warped[kept], plan.init[kept])


def test_flow_none_starts_from_the_unwarped_previous_output(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    prev_out = make_image(48, 64, 5)
    plan = plan_frame(moving[1], moving[0], prev_out, VideoConfig(flow="none"))
    assert plan.kind == "previous"
    assert plan.budget == VIDEO.iterations
    assert plan.temporal is not None
    assert np.array_equal(plan.temporal.mask, np.ones((48, 64), np.float32))
    assert np.array_equal(plan.init, prev_out)
    assert np.array_equal(plan.temporal.warped, prev_out)


def test_init_content_renders_frames_independently(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    video = VideoConfig(init="content", first_iterations=7, iterations=3)
    plan = plan_frame(moving[1], moving[0], make_image(48, 64, 5), video)
    assert plan.kind == "content"
    assert plan.budget == 7
    assert plan.temporal is None
    assert np.array_equal(plan.init, moving[1])


def test_hard_cut_restarts_from_content(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    unrelated = make_image(48, 64, 11)
    video = VideoConfig(first_iterations=7, iterations=3)
    plan = plan_frame(unrelated, moving[0], make_image(48, 64, 5), video)
    assert plan.kind == "cut"
    assert plan.budget == 7
    assert plan.temporal is None
    assert np.array_equal(plan.init, unrelated)


def test_disoccluded_pixels_start_from_content(moving: list[np.ndarray]) -> None:
    black = np.zeros_like(moving[0])
    plan = plan_frame(moving[1], moving[0], black, VIDEO)
    ff = flow.frame_flow(moving[0], moving[1], "dis")
    assert plan.temporal is not None
    assert np.array_equal(plan.temporal.mask, ff.mask)
    # Pixels that entered at the left edge have no history in the previous output.
    assert (ff.mask[:, 0] < 0.5).all()
    new, old = ff.mask < 0.5, ff.mask > 0.5
    assert np.array_equal(plan.init[new], moving[1][new])
    assert np.array_equal(plan.init[old], np.zeros_like(plan.init[old]))


# --- whole renders -------------------------------------------------------------------------------


def _engine_factory(weights: Path) -> Callable[[Job], Engine]:
    def factory(job: Job) -> Engine:
        return make_engine(list(job.styles), job.settings, weights)

    return factory


def _render(
    frames_dir: Path, style: Path, out: Path, weights: Path, init: str
) -> tuple[list[np.ndarray], list[str]]:
    video = VideoConfig(first_iterations=30, iterations=10, init=init)
    settings = Settings(image=ImageConfig(size=48, device="cpu"), video=video)
    job = Job(str(frames_dir), (str(style),), f"{out}/", str(weights), None, settings)
    result = render_video(job, None, _engine_factory(weights))
    files = sorted(out.glob("*.png"))
    assert result.rendered == result.total == len(files)
    work = WorkDir(result.work_dir)
    kinds = [work.frame_stats(i)["init"] for i in range(result.total)]
    return [read_image(p) for p in files], kinds


def _warping_error(outputs: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    pairs = zip(outputs[:-1], outputs[1:], inputs[:-1], inputs[1:], strict=True)
    return float(
        np.mean([flow.warping_error(a, b, flow.frame_flow(x, y, "dis")) for a, b, x, y in pairs])
    )


def test_flow_warm_start_flickers_much_less_than_independent_frames(
    tmp_path: Path,
    weights_file: Path,
    make_moving_frames: Callable[..., list],
    make_image: Callable[..., np.ndarray],
) -> None:
    frames = make_moving_frames(6, 48, 32)
    frames_dir = tmp_path / "in"
    frames_dir.mkdir()
    for index, frame in enumerate(frames):
        write_image(frames_dir / f"f{index:03d}.png", frame)
    style = tmp_path / "style.png"
    write_image(style, make_image(40, 40, 3))

    flowed, kinds = _render(frames_dir, style, tmp_path / "flow", weights_file, "flow")
    independent, _ = _render(frames_dir, style, tmp_path / "content", weights_file, "content")

    assert kinds == ["content"] + ["warped"] * 5  # smooth motion is never a scene cut
    flowed_error = _warping_error(flowed, frames)
    independent_error = _warping_error(independent, frames)
    assert independent_error > 1e-4  # the comparison means something: independent frames flicker
    assert flowed_error < 0.5 * independent_error, (flowed_error, independent_error)
