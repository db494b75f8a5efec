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
from nst_video.core.lbfgs import Memory
from nst_video.errors import Interrupted, OptionError, OutputError
from nst_video.media import open_source, read_image, write_image
from nst_video.pipeline.job import render_video
from nst_video.pipeline.render import FrameLoop, FrameSaver, frame_start
from nst_video.progress import Event, FrameDone, FrameStarted
from nst_video.video import flow
from nst_video.workdir.manifest import Job
from nst_video.workdir.store import FrameStore, WorkDir

VIDEO = VideoConfig()
CPU = ComputeConfig(device="cpu")


@pytest.fixture(scope="module")
def moving(make_moving_frames: Callable[..., list]) -> list[np.ndarray]:
    return make_moving_frames(3, 64, 48)


# --- frame_start ---------------------------------------------------------------------------------


def test_first_frame_starts_from_content_with_first_budget(moving: list[np.ndarray]) -> None:
    start = frame_start(moving[0], None, None, VIDEO)
    assert start.init == "content"
    assert start.budget == VIDEO.first_iterations
    assert start.temporal is None
    assert np.array_equal(start.image, moving[0])


def test_later_frame_starts_from_warped_previous_output(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    prev_out = make_image(48, 64, 5)
    start = frame_start(moving[1], moving[0], prev_out, VIDEO)
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
    start = frame_start(moving[1], moving[0], prev_out, video)
    ff = flow.frame_flow(moving[0], moving[1], video.flow)
    assert start.temporal is not None
    assert np.array_equal(start.temporal.warped, flow.warp(prev_out, ff.backward, interpolation))


def test_flow_none_starts_from_the_unwarped_previous_output(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    prev_out = make_image(48, 64, 5)
    start = frame_start(moving[1], moving[0], prev_out, VideoConfig(flow="none"))
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
    start = frame_start(moving[1], moving[0], make_image(48, 64, 5), video)
    assert start.init == "content"
    assert start.budget == 7
    assert start.temporal is None
    assert np.array_equal(start.image, moving[1])


def test_hard_cut_restarts_from_content(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray]
) -> None:
    unrelated = make_image(48, 64, 11)
    video = VideoConfig(first_iterations=7, iterations=3)
    start = frame_start(unrelated, moving[0], make_image(48, 64, 5), video)
    assert start.init == "cut"
    assert start.budget == 7
    assert start.temporal is None
    assert np.array_equal(start.image, unrelated)


def test_disoccluded_pixels_start_from_content(moving: list[np.ndarray]) -> None:
    black = np.zeros_like(moving[0])
    start = frame_start(moving[1], moving[0], black, VIDEO)
    ff = flow.frame_flow(moving[0], moving[1], "dis")
    assert start.temporal is not None
    assert np.array_equal(start.temporal.mask, ff.mask)
    # Pixels that entered at the left edge have no history in the previous output.
    assert (ff.mask[:, 0] < 0.5).all()
    new, old = ff.mask < 0.5, ff.mask > 0.5
    assert np.array_equal(start.image[new], moving[1][new])
    assert np.array_equal(start.image[old], np.zeros_like(start.image[old]))


MEMORY = Memory(0.125)


@pytest.mark.parametrize(
    ("case", "carried"),
    [("first", False), ("independent", False), ("cut", False), ("warped", True),
     ("unwarped", True)],
)  # fmt: skip
def test_only_a_warm_started_frame_takes_the_previous_lbfgs_memory(
    moving: list[np.ndarray], make_image: Callable[..., np.ndarray], case: str, carried: bool
) -> None:
    prev_out = make_image(48, 64, 5)
    content, prev_in, video = moving[1], moving[0], VIDEO
    if case == "first":
        prev_in = prev_out = None
    elif case == "independent":
        video = VideoConfig(init="content")
    elif case == "cut":
        content = make_image(48, 64, 11)
    elif case == "unwarped":
        video = VideoConfig(flow="none")
    start = frame_start(content, prev_in, prev_out, video, memory=MEMORY)
    expected = {"first": "content", "independent": "content", "cut": "cut"}
    assert start.init == expected.get(case, "previous" if case == "unwarped" else "warped")
    assert start.memory is (MEMORY if carried else None)


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


@pytest.fixture(scope="module")
def small_engine(weights_file: Path, make_image: Callable[..., np.ndarray]) -> Engine:
    video = VideoConfig(first_iterations=4, iterations=2)
    settings = Settings(image=ImageConfig(size=32), compute=CPU, video=video)
    return make_engine([make_image(40, 40, 3)], settings, weights_file)


def _run_loop(
    engine: Engine, clip: Path, work_dir: Path, callback: Callable[[Event], None] = lambda _: None
) -> int:
    source = open_source(str(clip))
    return FrameLoop(
        engine, source, WorkDir(work_dir).frames, range(SAVED_FRAMES), 32, callback
    ).run()


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
    loop = FrameLoop.__new__(FrameLoop)  # only the work dir, source and range are needed
    loop.store, loop.source, loop.indices = work.frames, _Frames(inputs), range(len(kinds))
    assert loop.stale_frames() == stale


def test_unknown_warp_interpolation_is_refused_before_rendering() -> None:
    with pytest.raises(OptionError) as info:
        VideoConfig(warp_interpolation="nearest").validate()
    assert str(info.value) == "unknown warp interpolation 'nearest'; valid: linear, cubic, lanczos"
