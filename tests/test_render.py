"""The frame loop's per-frame start and the temporal consistency it buys on a moving clip."""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nst_video.api import make_engine
from nst_video.config import ComputeConfig, ImageConfig, Settings, VideoConfig
from nst_video.core.engine import Engine
from nst_video.errors import Interrupted, OptionError, OutputError
from nst_video.media import open_source, read_image, write_image
from nst_video.pipeline.background import FrameSaver
from nst_video.pipeline.job import render_video
from nst_video.pipeline.start import Earlier, FrameStart, Window, temporal_start
from nst_video.pipeline.sweep import FirstPass, stale_frames
from nst_video.progress import Event, FrameDone, FrameStarted
from nst_video.video import flow
from nst_video.workdir.manifest import Job
from nst_video.workdir.store import FrameStore, WorkDir

VIDEO = VideoConfig()
CPU = ComputeConfig(device="cpu")


@pytest.fixture(scope="module")
def moving(make_moving_frames: Callable[..., list]) -> list[np.ndarray]:
    return make_moving_frames(3, 64, 48)


# --- how a frame starts from the previous one (offset 1) ----------------------------------------


def _from_previous(
    content: np.ndarray,
    prev_in: np.ndarray | None,
    prev_out: np.ndarray | None,
    video: VideoConfig,
) -> FrameStart:
    """temporal_start with the previous frame alone (none for a first frame)."""
    earlier = [] if prev_in is None or prev_out is None else [Earlier(1, prev_in, prev_out)]
    return temporal_start(content, earlier, video)


def test_first_frame_starts_from_content_with_first_budget(moving: list[np.ndarray]) -> None:
    start = _from_previous(moving[0], None, None, VIDEO)
    assert start.init == "content"
    assert start.budget == VIDEO.first_iterations
    assert start.temporal is None
    assert np.array_equal(start.image, moving[0])


def test_later_frame_starts_from_warped_previous_output(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    prev_out = make_image(48, 64, 5)
    start = _from_previous(moving[1], moving[0], prev_out, VIDEO)
    assert start.init == "warped"
    assert start.budget == VIDEO.iterations
    assert start.temporal is not None
    assert start.consistent is not None and start.consistent > 0.8
    # The pattern moved 2 px right, so the previous output must have moved with it.
    moved = start.image[:, 10:-10].astype(int) - prev_out[:, 8:-12].astype(int)
    assert np.abs(moved).mean() < 3.0
    unmoved = start.image[:, 10:-10].astype(int) - prev_out[:, 10:-10].astype(int)
    assert np.abs(unmoved).mean() > 10.0
    kept = start.temporal.mask > 0.5
    assert np.array_equal(start.temporal.warped[kept], start.image[kept])


@pytest.mark.parametrize("interpolation", ["linear", "lanczos"])
def test_previous_output_is_resampled_with_the_configured_kernel(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray], interpolation: str
) -> None:
    prev_out = make_image(48, 64, 5)
    video = VideoConfig(warp_interpolation=interpolation)
    start = _from_previous(moving[1], moving[0], prev_out, video)
    motion = flow.frame_flow(moving[0], moving[1], video.flow)
    assert start.temporal is not None
    assert np.array_equal(
        start.temporal.warped, flow.warp(prev_out, motion.backward, interpolation)
    )


def test_flow_none_starts_from_the_unwarped_previous_output(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    prev_out = make_image(48, 64, 5)
    start = _from_previous(moving[1], moving[0], prev_out, VideoConfig(flow="none"))
    assert start.init == "previous"
    assert start.budget == VIDEO.iterations
    assert start.temporal is not None
    assert np.array_equal(start.temporal.mask, np.ones((48, 64), np.float32))
    assert np.array_equal(start.image, prev_out)
    assert np.array_equal(start.temporal.warped, prev_out)


def test_init_content_renders_frames_independently(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    video = VideoConfig(init="content", first_iterations=7, iterations=3)
    start = _from_previous(moving[1], moving[0], make_image(48, 64, 5), video)
    assert start.init == "content"
    assert start.budget == 7
    assert start.temporal is None
    assert np.array_equal(start.image, moving[1])


def test_hard_cut_restarts_from_content(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    unrelated = make_image(48, 64, 11)
    video = VideoConfig(first_iterations=7, iterations=3)
    start = _from_previous(unrelated, moving[0], make_image(48, 64, 5), video)
    assert start.init == "cut"
    assert start.budget == 7
    assert start.temporal is None
    assert np.array_equal(start.image, unrelated)


def test_disoccluded_pixels_start_from_content(moving: list[np.ndarray]) -> None:
    black = np.zeros_like(moving[0])
    start = _from_previous(moving[1], moving[0], black, VIDEO)
    motion = flow.frame_flow(moving[0], moving[1], "dis")
    assert start.temporal is not None
    assert np.array_equal(start.temporal.mask, motion.mask)
    # Pixels that entered at the left edge have no history in the previous output.
    assert (motion.mask[:, 0] < 0.5).all()
    new, old = motion.mask < 0.5, motion.mask > 0.5
    assert np.array_equal(start.image[new], moving[1][new])
    assert np.array_equal(start.image[old], np.zeros_like(start.image[old]))


# --- whole renders -------------------------------------------------------------------------------


def _engine_factory(weights: Path) -> Callable[[Job], Engine]:
    def factory(job: Job) -> Engine:
        return make_engine(list(job.styles), job.settings, weights)

    return factory


def _render(
    frames_dir: Path, style: Path, out: Path, weights: Path, init: str
) -> tuple[list[np.ndarray], list[str]]:
    video = VideoConfig(first_iterations=30, iterations=10, init=init)
    settings = Settings(image=ImageConfig(size=48), compute=CPU, video=video)
    job = Job(str(frames_dir), (str(style),), f"{out}/", str(weights), None, settings)
    result = render_video(job, None, _engine_factory(weights))
    files = sorted(out.glob("*.png"))
    assert result.rendered == result.total == len(files)
    work = WorkDir(result.work_dir)
    kinds = [work.frames.read_stats(i)["init"] for i in range(result.total)]
    return [read_image(p) for p in files], kinds


def _warping_error(outputs: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    pairs = zip(outputs[:-1], outputs[1:], inputs[:-1], inputs[1:], strict=True)
    return float(
        np.mean([flow.warping_error(a, b, flow.frame_flow(x, y, "dis")) for a, b, x, y in pairs])
    )


@pytest.mark.slow
def test_flow_warm_start_flickers_much_less_than_independent_frames(
    tmp_path: Path,
    weights_file: Path,
    make_moving_frames: Callable[..., list],
    make_image: Callable[..., np.ndarray],
    write_sequence: Callable[..., Path],
) -> None:
    frames = make_moving_frames(6, 48, 32)
    frames_dir = write_sequence(tmp_path / "in", frames)
    style = tmp_path / "style.png"
    write_image(style, make_image(40, 40, 3))

    flowed, kinds = _render(frames_dir, style, tmp_path / "flow", weights_file, "flow")
    independent, _ = _render(frames_dir, style, tmp_path / "content", weights_file, "content")

    assert kinds == ["content"] + ["warped"] * 5  # smooth motion is never a scene cut
    flowed_error = _warping_error(flowed, frames)
    independent_error = _warping_error(independent, frames)
    assert independent_error > 1e-4  # the comparison means something: independent frames flicker
    assert flowed_error < 0.5 * independent_error, (flowed_error, independent_error)


# --- saving frames in the background ------------------------------------------------------------

SAVED_FRAMES = 4


@pytest.fixture(scope="module")
def clip_dir(
    tmp_path_factory: pytest.TempPathFactory,
    make_moving_frames: Callable[..., list],
    write_sequence: Callable[..., Path],
) -> Path:
    frames = make_moving_frames(SAVED_FRAMES, 48, 32)
    return write_sequence(tmp_path_factory.mktemp("saver-clip"), frames)


SMALL_VIDEO = VideoConfig(first_iterations=4, iterations=2)


@pytest.fixture(scope="module")
def small_engine(weights_file: Path, make_image: Callable[..., np.ndarray]) -> Engine:
    settings = Settings(image=ImageConfig(size=32), compute=CPU, video=SMALL_VIDEO)
    return make_engine([make_image(40, 40, 3)], settings, weights_file)


def _run_loop(
    engine: Engine, clip: Path, work_dir: Path, callback: Callable[[Event], None] = lambda _: None
) -> int:
    source = open_source(str(clip))
    store = WorkDir(work_dir).frames
    return FirstPass(engine, SMALL_VIDEO, source, store, range(SAVED_FRAMES), 32, callback).run()


def _pngs(work_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((work_dir / "frames").glob("*.png"))}


def _slow_saves(monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[tuple[str, float]]:
    """Every save sleeps first, so it is still running when the next frame starts; returns a
    log of ("start" | "end", time) entries."""
    real_save = FrameStore.save_frame
    log: list[tuple[str, float]] = []

    def slow(self: FrameStore, index: int, image: np.ndarray, stats: dict) -> None:
        log.append(("start", time.monotonic()))
        time.sleep(seconds)
        real_save(self, index, image, stats)
        log.append(("end", time.monotonic()))

    monkeypatch.setattr(FrameStore, "save_frame", slow)
    return log


@pytest.mark.slow
def test_frames_are_saved_off_the_main_thread_with_the_same_bytes(
    small_engine: Engine, clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reference: each frame saved on the main thread as it finishes, as before.
    with monkeypatch.context() as patch:
        patch.setattr(FrameSaver, "submit", lambda self, *args: self.store.save_frame(*args))
        assert _run_loop(small_engine, clip_dir, tmp_path / "inline") == SAVED_FRAMES
    reference = _pngs(tmp_path / "inline")
    assert len(reference) == SAVED_FRAMES

    real_save, real_load = FrameStore.save_frame, FrameStore.load_frame
    threads: list[threading.Thread] = []
    loads: list[int] = []

    def save(self: FrameStore, index: int, image: np.ndarray, stats: dict) -> None:
        threads.append(threading.current_thread())
        real_save(self, index, image, stats)

    def load(self: FrameStore, index: int) -> np.ndarray | None:
        loads.append(index)
        return real_load(self, index)

    monkeypatch.setattr(FrameStore, "save_frame", save)
    monkeypatch.setattr(FrameStore, "load_frame", load)
    work_dir = tmp_path / "background"
    assert _run_loop(small_engine, clip_dir, work_dir) == SAVED_FRAMES
    assert len(threads) == SAVED_FRAMES
    assert threading.main_thread() not in threads
    assert len(set(threads)) == 1  # one saver thread for the whole loop
    assert not loads  # warm starts come from memory, never from a frame still being written
    assert _pngs(work_dir) == reference
    stats = [WorkDir(work_dir).frames.read_stats(i) for i in range(SAVED_FRAMES)]
    assert [s["frame"] for s in stats if s] == list(range(SAVED_FRAMES))


@pytest.mark.parametrize("failing", [2, SAVED_FRAMES - 1], ids=["next-submit", "loop-end"])
def test_failed_save_surfaces_from_run_with_its_message(
    small_engine: Engine,
    clip_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failing: int,
) -> None:
    real_replace = os.replace

    def full(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name.startswith(f"{failing:06d}."):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full)
    work_dir = tmp_path / "work"
    with pytest.raises(OutputError) as caught:
        _run_loop(small_engine, clip_dir, work_dir)
    assert str(caught.value) == (
        f"disk full while writing {work_dir / 'frames' / f'{failing:06d}.json'}; free space "
        "and run the command again"
    )
    # Nothing after the failed frame is saved: the error stops the loop at the next submit.
    assert sorted(_pngs(work_dir)) == [f"{i:06d}.png" for i in range(failing)]
    assert not [p for p in (work_dir / "frames").iterdir() if p.name.startswith(".")]


def test_interrupt_during_next_frame_keeps_the_frame_being_saved(
    small_engine: Engine, clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = FrameStore.save_frame
    interrupted = threading.Event()

    def save(self: FrameStore, index: int, image: np.ndarray, stats: dict) -> None:
        if index == 1:
            # Still writing frame 1 when frame 2 is interrupted, and for a while after.
            assert interrupted.wait(timeout=30)
            time.sleep(0.3)
        real_save(self, index, image, stats)

    def interrupt_at_frame_2(event: Event) -> None:
        if isinstance(event, FrameStarted) and event.index == 2:
            interrupted.set()
            raise Interrupted(signal.SIGINT)

    monkeypatch.setattr(FrameStore, "save_frame", save)
    with pytest.raises(Interrupted):
        _run_loop(small_engine, clip_dir, tmp_path / "work", interrupt_at_frame_2)
    assert sorted(_pngs(tmp_path / "work")) == ["000000.png", "000001.png"]


def test_at_most_one_save_in_flight(
    small_engine: Engine, clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _slow_saves(monkeypatch, 0.3)
    work = WorkDir(tmp_path / "work")
    unsaved_at_done: list[list[int]] = []

    def check(event: Event) -> None:
        if isinstance(event, FrameDone):
            # Only the frame just handed over may be unsaved: its predecessors are on disk.
            unsaved = [i for i in range(event.index + 1) if not work.frames.has_frame(i)]
            unsaved_at_done.append(unsaved)

    assert _run_loop(small_engine, clip_dir, work.path, check) == SAVED_FRAMES
    assert unsaved_at_done == [[i] for i in range(SAVED_FRAMES)]
    # Saves never overlap: each one ends before the next one starts.
    assert [kind for kind, _ in log] == ["start", "end"] * SAVED_FRAMES
    assert all(a <= b for (_, a), (_, b) in zip(log, log[1:], strict=False))
    assert len(_pngs(work.path)) == SAVED_FRAMES


def test_a_failing_save_does_not_mask_what_stopped_the_loop(
    small_engine: Engine, clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = FrameStore.save_frame

    def fail_frame_1(self: FrameStore, index: int, image: np.ndarray, stats: dict) -> None:
        if index == 1:
            time.sleep(0.2)  # still failing when the interrupt arrives
            raise OutputError("cannot write frame 1")
        real_save(self, index, image, stats)

    def interrupt_at_frame_2(event: Event) -> None:
        if isinstance(event, FrameStarted) and event.index == 2:
            raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(FrameStore, "save_frame", fail_frame_1)
    with pytest.raises(Interrupted):
        _run_loop(small_engine, clip_dir, tmp_path / "work", interrupt_at_frame_2)
    assert sorted(_pngs(tmp_path / "work")) == ["000000.png"]


# --- inputs that changed since their frames were rendered ---------------------------------------


class _Frames:
    """A minimal FrameSource over in-memory frames (only what stale_frames reads)."""

    def __init__(self, frames: list[np.ndarray]):
        self.frames_list = frames

    def frames(self, start: int = 0, count: int | None = None):  # noqa: ANN201
        stop = len(self.frames_list) if count is None else start + count
        return iter(self.frames_list[start:stop])


@pytest.mark.parametrize(
    ("inits", "changed", "stale"),
    [
        ("content warped warped warped warped", [2], [2, 3, 4]),
        # A cut starts from its content alone: the chain of dependants ends before it...
        ("content warped warped warped cut warped", [1], [1, 2, 3]),
        # ...unless the cut follows the changed frame (its cut decision used that input).
        ("content warped warped cut warped", [2], [2, 3, 4]),
        ("content warped cut warped warped cut warped", [0, 5], [0, 1, 5, 6]),
        ("content content content content", [1], [1, 2]),  # --init content: independent
    ],
)
def test_changed_inputs_invalidate_their_frames_and_dependants(
    tmp_path: Path, inits: str, changed: list[int], stale: list[int]
) -> None:
    from nst_video.workdir.store import frame_digest

    kinds = inits.split()
    inputs = [np.full((4, 6, 3), i, np.uint8) for i in range(len(kinds))]
    work = WorkDir(tmp_path / "work")
    for index, kind in enumerate(kinds):
        recorded = inputs[index] + (0 if index not in changed else 100)
        stats = {"init": kind, "input": frame_digest(recorded)}
        work.frames.save_frame(index, inputs[index], stats)
    assert stale_frames(work.frames, _Frames(inputs), range(len(kinds))) == stale


def test_unknown_warp_interpolation_is_refused_before_rendering() -> None:
    with pytest.raises(OptionError) as info:
        VideoConfig(warp_interpolation="nearest").validate()
    assert str(info.value) == "unknown warp interpolation 'nearest'; valid: linear, cubic, lanczos"


# --- long-term temporal offsets (--temporal-offsets) ---------------------------------------------

OFFSETS = (1, 2, 4)


def _still(value: int, height: int = 8, width: int = 8) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def _fixed_flow(mask: np.ndarray) -> flow.FrameFlow:
    """No motion, with the given consistency mask (as a flow computed ahead would come)."""
    return flow.FrameFlow(np.zeros((*mask.shape, 2), np.float32), mask.astype(np.float32))


def test_each_pixel_starts_from_the_nearest_earlier_frame_that_saw_it() -> None:
    # Columns 0-1: reliable from t-1; 2-3: hidden in t-1, seen in t-2; 4-5: seen only in t-4;
    # 6-7: seen in none (disoccluded). c(4) also covers columns 0-3: the nearer frames win.
    c1, c2, c4 = (np.zeros((8, 8), np.float32) for _ in range(3))
    c1[:, :2], c2[:, :4], c4[:, :6] = 1, 1, 1
    c2[:, :2] = 0  # t-2 need not agree where t-1 already did
    earlier = [Earlier(k, _still(k), _still(10 * k)) for k in OFFSETS]
    flows = {1: _fixed_flow(c1), 2: _fixed_flow(c2), 4: _fixed_flow(c4)}
    video = VideoConfig(temporal_offsets=OFFSETS, scene_cut_threshold=0.0)
    start = temporal_start(_still(99), earlier, video, flows)
    assert start.init == "warped" and start.budget == video.iterations
    assert start.image[0, :, 0].tolist() == [10, 10, 20, 20, 40, 40, 99, 99]
    assert start.recovered == 0.5  # columns 2-5 came from offsets 2 and 4
    assert start.temporal is not None
    assert start.temporal.mask[0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    target = np.rint(start.temporal.warped[0, :6, 0] * 255).tolist()
    assert target == [10, 10, 20, 20, 40, 40]
    assert start.temporal.constant == 0.0  # disjoint 0/1 masks: the one term is the sum


def test_the_combined_target_is_the_sum_of_the_per_offset_terms() -> None:
    import torch

    from nst_video.core import losses
    from nst_video.pipeline.start import combined_temporal

    rng = np.random.default_rng(3)
    warps = {k: rng.integers(0, 256, (6, 5, 3)).astype(np.uint8) for k in OFFSETS}
    masks = {k: rng.random((6, 5)).astype(np.float32) for k in OFFSETS}  # overlapping, fractional
    combined = combined_temporal(warps, masks)
    x = torch.rand(1, 3, 6, 5, dtype=torch.float64, requires_grad=True)

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(
            image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1)
        )

    per_offset = sum(
        losses.temporal_loss(x, tensor(w).permute(2, 0, 1)[None], tensor(masks[k])[None, None])
        for k, w in warps.items()
    )
    one = losses.temporal_loss(
        x, tensor(combined.warped).permute(2, 0, 1)[None], tensor(combined.mask)[None, None]
    )
    assert combined.constant > 0  # overlapping fractional masks leave a constant
    total = float(one.detach()) + combined.constant
    assert total == pytest.approx(float(per_offset.detach()), rel=1e-5)
    (grad_sum,) = torch.autograd.grad(per_offset, x)
    (grad_one,) = torch.autograd.grad(one, x)
    assert torch.allclose(grad_sum, grad_one, atol=1e-7)


def test_without_the_previous_frame_or_other_offsets_nothing_changes(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    prev_out = make_image(48, 64, 5)
    video = VideoConfig(temporal_offsets=OFFSETS)
    # No frame at offset 1 (the first frame of a render or after a cut): from the content.
    alone = temporal_start(moving[2], [Earlier(2, moving[0], prev_out)], video)
    assert alone.init == "content" and alone.temporal is None
    # Only offset 1 available (frame 1 of a render): exactly the short-term start.
    one = temporal_start(moving[1], [Earlier(1, moving[0], prev_out)], video)
    short = _from_previous(moving[1], moving[0], prev_out, VIDEO)
    assert one.temporal is not None and short.temporal is not None
    assert np.array_equal(one.image, short.image)
    assert np.array_equal(one.temporal.warped, short.temporal.warped)
    assert np.array_equal(one.temporal.mask, short.temporal.mask)
    # Offsets the settings do not list are ignored.
    short_only = VideoConfig(temporal_offsets=(1,))
    both = [Earlier(1, moving[0], prev_out), Earlier(2, moving[0], make_image(48, 64, 6))]
    unlisted = temporal_start(moving[1], both, short_only)
    assert unlisted.recovered is None and np.array_equal(unlisted.image, short.image)


def test_the_window_keeps_the_largest_offset_and_forgets_across_a_cut() -> None:
    window = Window(4)
    for index in range(6):
        window.push(index, _still(index), _still(index), independent=index == 0)
    assert len(window) == 4
    assert [e.offset for e in window.earlier(6, OFFSETS)] == [4, 2, 1]
    window.push(6, _still(6), _still(6), independent=True)  # a cut
    assert [e.offset for e in window.earlier(7, OFFSETS)] == [1]


# A square moves right over a still, textured background and uncovers what it hid.
SQUARE, STEP, ROW = 8, 4, 18
OCCLUSION_FRAMES = 10
# Columns 24-27 are hidden in frames 7 and 8 (the square at x = 20 and 24) and uncovered in
# frame 9: t-1 and t-2 did not see them, t-4 (frame 5) did.
REVEALED = (slice(ROW + 1, ROW + SQUARE - 1), slice(24, 28))
REVEAL_AT, LAST_SEEN = 9, 6


def _square_x(index: int) -> int:
    return STEP * index - SQUARE


def _occlusion_clip() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The frames and, for each, where the square covers the background."""
    import cv2

    rng = np.random.default_rng(1)
    background = cv2.GaussianBlur(rng.random((48, 64, 3)).astype(np.float32), (0, 0), 2.0)
    background = (background - background.min()) / (background.max() - background.min())
    background = np.rint(background * 255).astype(np.uint8)
    square = np.full((SQUARE, SQUARE, 3), (200, 30, 60), np.uint8)
    frames, covered = [], []
    for index in range(OCCLUSION_FRAMES):
        frame, hidden = background.copy(), np.zeros((48, 64), bool)
        left, right = max(_square_x(index), 0), _square_x(index) + SQUARE
        frame[ROW : ROW + SQUARE, left:right] = square[:, : right - left]
        hidden[ROW : ROW + SQUARE, left:right] = True
        frames.append(frame)
        covered.append(hidden)
    return frames, covered


def _true_flow(
    frames: list[np.ndarray], covered: list[np.ndarray]
) -> Callable[..., flow.FrameFlow]:
    """The clip's exact flow and visibility in place of DIS, which at 64 px blurs an 8 px
    square's motion into its surroundings: this checks the long-term terms, not the flow."""

    def frame_flow(prev: np.ndarray, cur: np.ndarray, method: str = "dis") -> flow.FrameFlow:
        a = next(i for i, f in enumerate(frames) if np.array_equal(f, prev))
        b = next(i for i, f in enumerate(frames) if np.array_equal(f, cur))
        backward = np.zeros((*cur.shape[:2], 2), np.float32)
        backward[covered[b], 0] = _square_x(a) - _square_x(b)
        # Reliable: background seen in both frames, or the square (fully in view in both).
        both = ~covered[a] & ~covered[b]
        square = covered[b] & (_square_x(a) >= 0)
        return flow.FrameFlow(backward, (both | square).astype(np.float32))

    return frame_flow


def _occlusion_video(offsets: tuple[int, ...]) -> VideoConfig:
    return VideoConfig(first_iterations=10, iterations=4, temporal_offsets=offsets)


def _render_in_memory(
    engine: Engine,
    video: VideoConfig,
    frames: list[np.ndarray],
    work_dir: Path,
    callback: Callable = lambda _: None,
) -> list[np.ndarray]:
    store = WorkDir(work_dir).frames
    FirstPass(engine, video, _Frames(frames), store, range(len(frames)), 64, callback).run()
    return [store.load_frame(i) for i in range(len(frames))]


@pytest.fixture(scope="module")
def occlusion_engines(weights_file: Path, make_image: Callable[..., np.ndarray]) -> dict:
    engines = {}
    for offsets in ((1,), OFFSETS):
        video = _occlusion_video(offsets)
        settings = Settings(image=ImageConfig(size=64), compute=CPU, video=video)
        engines[offsets] = make_engine([make_image(40, 40, 3)], settings, weights_file)
    return engines


@pytest.mark.slow
def test_a_revealed_region_comes_back_painted_as_before(
    occlusion_engines: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames, covered = _occlusion_clip()
    assert covered[LAST_SEEN][REVEALED].sum() == 0 and covered[REVEAL_AT][REVEALED].sum() == 0
    assert covered[REVEAL_AT - 1][REVEALED].all() and covered[REVEAL_AT - 2][REVEALED].all()
    monkeypatch.setattr(flow, "frame_flow", _true_flow(frames, covered))
    change = {}
    for offsets, engine in occlusion_engines.items():
        video = _occlusion_video(offsets)
        outputs = _render_in_memory(engine, video, frames, tmp_path / str(len(offsets)))
        before, after = outputs[LAST_SEEN][REVEALED], outputs[REVEAL_AT][REVEALED]
        change[offsets] = float(np.abs(after.astype(float) - before.astype(float)).mean())
    # With offset 1 the region is painted anew from its content; offset 4 remembers it
    # (measured 3.8x less change with channels-last CPU passes, over 4x before; without the
    # long-term terms the two are equal).
    assert change[OFFSETS] * 3 < change[(1,)], change


@pytest.mark.slow
def test_the_loop_holds_no_more_frames_than_the_largest_offset(
    weights_file: Path,
    make_image: Callable[..., np.ndarray],
    make_moving_frames: Callable[..., list],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc
    import weakref

    from nst_video.pipeline import sweep

    frames = make_moving_frames(16, 48, 32)  # far more than the window
    video = VideoConfig(first_iterations=2, iterations=1, temporal_offsets=OFFSETS)
    settings = Settings(image=ImageConfig(size=32), compute=CPU, video=video)
    engine = make_engine([make_image(40, 40, 3)], settings, weights_file)
    outputs: list[weakref.ref] = []
    inputs: list[weakref.ref] = []
    real_stylize, real_resize = engine.stylize, sweep.resize_long_side

    def stylize(*args: object, **kwargs: object) -> object:
        done = real_stylize(*args, **kwargs)
        outputs.append(weakref.ref(done.image))
        return done

    def resize(image: np.ndarray, long_side: int) -> np.ndarray:
        resized = real_resize(image, long_side).copy()  # an array of its own to count
        inputs.append(weakref.ref(resized))
        return resized

    monkeypatch.setattr(engine, "stylize", stylize)
    monkeypatch.setattr(sweep, "resize_long_side", resize)

    # Cheap flows: what is counted here is what the loop keeps, not what DIS makes of it.
    def still(prev: np.ndarray, cur: np.ndarray, method: str = "dis") -> flow.FrameFlow:
        shape = cur.shape[:2]
        return flow.FrameFlow(np.zeros((*shape, 2), np.float32), np.ones(shape, np.float32))

    monkeypatch.setattr(flow, "frame_flow", still)
    held: list[tuple[int, int]] = []

    def count(event: Event) -> None:
        if isinstance(event, FrameStarted):
            gc.collect()
            alive = [sum(r() is not None for r in refs) for refs in (outputs, inputs)]
            held.append((alive[0], alive[1]))

    store = WorkDir(tmp_path / "work").frames
    FirstPass(engine, video, _Frames(frames), store, range(len(frames)), 32, count).run()
    assert len(held) == len(frames)
    # Outputs: the window of the last 4. Inputs: those 4, the frame being rendered and what
    # the background thread has decoded ahead (2 queued, 1 in hand).
    assert max(o for o, _ in held) == max(OFFSETS)
    assert max(i for _, i in held) <= max(OFFSETS) + 4


OFFSETS_VIDEO = VideoConfig(first_iterations=4, iterations=2, temporal_offsets=OFFSETS)


@pytest.fixture(scope="module")
def offsets_engine(weights_file: Path, make_image: Callable[..., np.ndarray]) -> Engine:
    settings = Settings(image=ImageConfig(size=32), compute=CPU, video=OFFSETS_VIDEO)
    return make_engine([make_image(40, 40, 3)], settings, weights_file)


def _cut_clip(make_moving_frames: Callable[..., list]) -> list[np.ndarray]:
    """Ten frames: a moving texture, and from frame 6 on another shot (its negative)."""
    frames = make_moving_frames(10, 48, 32)
    return frames[:6] + [255 - f for f in frames[6:]]


def _loop_pngs(engine: Engine, frames: list[np.ndarray], work_dir: Path) -> dict[str, bytes]:
    store = WorkDir(work_dir).frames
    FirstPass(engine, OFFSETS_VIDEO, _Frames(frames), store, range(len(frames)), 32).run()
    return _pngs(work_dir)


@pytest.mark.slow
def test_offsets_resume_from_finished_frames_byte_identical(
    offsets_engine: Engine,
    make_moving_frames: Callable[..., list],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames = make_moving_frames(10, 48, 32)
    reference = _loop_pngs(offsets_engine, frames, tmp_path / "whole")
    store = WorkDir(tmp_path / "whole").frames
    assert [store.read_stats(i)["recovered"] is not None for i in (1, 5)] == [True, True]
    # Stopped after frame 5: frames 6-9 are missing.
    store.drop_frames(range(6, 10))
    real_load = FrameStore.load_frame
    loads: list[int] = []

    def load(self: FrameStore, index: int) -> np.ndarray | None:
        loads.append(index)
        return real_load(self, index)

    monkeypatch.setattr(FrameStore, "load_frame", load)
    FirstPass(offsets_engine, OFFSETS_VIDEO, _Frames(frames), store, range(10), 32).run()
    assert _pngs(tmp_path / "whole") == reference
    # Frame 6 reaches back 4 frames: those (and only those) are read back from their PNGs.
    assert sorted(set(loads)) == [2, 3, 4, 5]


@pytest.mark.slow
@pytest.mark.parametrize(("changed", "stale"), [(3, [3, 4, 5]), (5, [5, 6, 7, 8, 9])])
def test_a_changed_input_renders_every_frame_that_reaches_back_to_it_again(
    offsets_engine: Engine,
    make_moving_frames: Callable[..., list],
    tmp_path: Path,
    changed: int,
    stale: list[int],
) -> None:
    frames = _cut_clip(make_moving_frames)
    _loop_pngs(offsets_engine, frames, tmp_path / "work")
    store = WorkDir(tmp_path / "work").frames
    assert [store.read_stats(i)["init"] for i in (0, 5, 6, 7)] == [
        "content",
        "warped",
        "cut",
        "warped",
    ]
    edited = list(frames)
    edited[changed] = np.roll(frames[changed], 3, axis=1)
    assert stale_frames(store, _Frames(edited), range(10)) == stale
    FirstPass(offsets_engine, OFFSETS_VIDEO, _Frames(edited), store, range(10), 32).run()
    # Exactly what a render of the edited clip from scratch gives: no frame kept a term
    # against the old input (frames after the cut at 6 never reach back past it).
    assert _pngs(tmp_path / "work") == _loop_pngs(offsets_engine, edited, tmp_path / "fresh")
