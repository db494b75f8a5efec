"""The multi-pass algorithm (--passes N, pipeline/passes.py): the blend and the temporal term by
hand, the pass order, scene cuts, bounded memory, resumes (SIGKILL in the second pass) and
parallel segments."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from clip_inputs import Inputs, inputs_fixture
from PIL import Image

from nst_video.api import make_engine
from nst_video.config import ComputeConfig, ImageConfig, Settings, VideoConfig
from nst_video.core.engine import Engine, Stylized, Temporal
from nst_video.core.optimize import OptimizeResult
from nst_video.errors import OptionError
from nst_video.pipeline.distributed import render_segment_task
from nst_video.pipeline.job import render_video
from nst_video.pipeline.passes import render_passes
from nst_video.pipeline.start import Earlier, Neighbour, later_start, pass_neighbour
from nst_video.pipeline.sweep import LaterPass, pass_order, reversed_contents
from nst_video.progress import Event, FrameStarted, Message
from nst_video.video import flow
from nst_video.video.segments import Segment
from nst_video.workdir.manifest import Job
from nst_video.workdir.store import FrameStore, WorkDir, frame_digest

VIDEO = VideoConfig(passes=3)
CPU = ComputeConfig(device="cpu")
FRAME_NAME = "{:06d}.png"
TIMEOUT = 180.0


# --- the scheme by hand ---------------------------------------------------------------------------


def test_later_start_blends_own_and_warped_neighbour_by_mask_and_pass_blend() -> None:
    own = np.full((1, 3, 3), 51, np.uint8)  # 0.2
    warped = np.full((1, 3, 3), 255, np.uint8)  # 1.0
    mask = np.array([[1.0, 0.5, 0.0]], np.float32)
    video = VideoConfig(passes=3, pass_blend=0.5, pass_iterations=7)
    start = later_start(own, Neighbour(warped, mask, 0.5), 2, video, "own")
    # delta * c = 0.5, 0.25, 0: 0.5 * 1 + 0.5 * 0.2 = 0.6; 0.25 + 0.75 * 0.2 = 0.4; 0.2.
    assert np.allclose(start.image[0, :, 0], [0.6, 0.4, 0.2], atol=1e-6)
    assert (start.init, start.budget, start.consistent) == ("blended", 7, 0.5)
    assert start.temporal is not None
    assert start.temporal.warped is warped and start.temporal.mask is mask


def test_temporal_term_joins_from_its_pass_and_a_frame_without_neighbour_keeps_its_own() -> None:
    own = np.zeros((2, 2, 3), np.uint8)
    neighbour = Neighbour(np.ones((2, 2, 3), np.uint8), np.ones((2, 2), np.float32), 1.0)
    video = VideoConfig(passes=4, temporal_from_pass=3)
    assert later_start(own, neighbour, 2, video, "own").temporal is None
    assert isinstance(later_start(own, neighbour, 3, video, "own").temporal, Temporal)
    alone = later_start(own, None, 3, video, "cut")
    assert (alone.init, alone.temporal) == ("cut", None)
    assert alone.image is own


def test_passes_alternate_direction() -> None:
    frames = range(3, 7)
    assert list(pass_order(frames, 1)) == [3, 4, 5, 6]
    assert list(pass_order(frames, 2)) == [6, 5, 4, 3]
    assert list(pass_order(frames, 3)) == [3, 4, 5, 6]


def test_pair_flows_are_the_frame_flows_of_both_orders(
    make_moving_frames: Callable[..., list],
) -> None:
    first, second = make_moving_frames(2, 48, 32)
    ahead, behind = flow.pair_flows(first, second)
    for got, want in (
        (ahead, flow.frame_flow(first, second)),
        (behind, flow.frame_flow(second, first)),
    ):
        assert np.array_equal(got.backward, want.backward)
        assert np.array_equal(got.mask, want.mask)
        assert np.array_equal(got.matched, want.matched)
    # behind pulls frame 1 back onto frame 0: the texture moved 2 px right.
    assert abs(float(np.median(behind.backward[..., 0])) - 2.0) < 0.3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"passes": 0}, "--passes must be in 1..99, got 0"),
        ({"passes": 2, "pass_blend": 1.5}, "--pass-blend must be in [0, 1], got 1.5"),
        ({"pass_blend": float("nan")}, "--pass-blend must be in [0, 1], got nan"),
        (
            {"temporal_from_pass": 1},
            "--temporal-from-pass must be >= 2, got 1: pass 1 is the single-pass render, "
            "which always has the temporal term",
        ),
        ({"pass_iterations": 0}, "--pass-iterations must be >= 1, got 0"),
        (
            {"passes": 2, "init": "content"},
            "--passes 2 needs --init flow: with --init content every frame is rendered on its "
            "own, so a pass has no neighbour to blend in",
        ),
    ],
)
def test_bad_pass_settings_are_one_line(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionError) as caught:
        VideoConfig(**changes)
    assert str(caught.value) == message


# --- a pass with a stand-in engine -------------------------------------------------------------


class ListSource:
    """Frames from a list; each read hands out fresh copies, tracked while they live."""

    def __init__(self, frames: list[np.ndarray]):
        self.frames_list = frames
        self.path = "list"
        self.size = (frames[0].shape[1], frames[0].shape[0])
        self.fps = Fraction(24)
        self.frame_count = len(frames)
        self.has_audio = False
        self.files: list[Path] = []
        self.warning: str | None = None
        self.alive: list[weakref.ref[np.ndarray]] = []
        self.reads: list[tuple[int, int]] = []

    def frames(self, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        stop = self.frame_count if count is None else min(self.frame_count, start + count)
        self.reads.append((start, stop - start))
        for index in range(start, stop):
            frame = self.frames_list[index].copy()
            self.alive.append(weakref.ref(frame))
            yield frame

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames()

    def live(self) -> int:
        gc.collect()
        return sum(ref() is not None for ref in self.alive)


@dataclass
class StandIn:
    """An engine that returns its start image, recording what each frame was given."""

    settings: Settings
    seen: list[tuple[bool, str]]

    def stylize(
        self,
        content: np.ndarray,
        init: np.ndarray,
        budget: int,
        temporal: Temporal | None = None,
        callback: Callable[[Event], None] | None = None,
        refine: bool = False,
        guide: object = None,  # a schedule's or masks' (none here)
    ) -> Stylized:
        image = init if init.dtype == np.uint8 else np.rint(init * 255).astype(np.uint8)
        self.seen.append((temporal is not None, "refine" if refine else "first"))
        result = OptimizeResult(torch.zeros(1), budget, 0.0, {}, "budget")
        return Stylized(image, result)


def _stand_in(video: VideoConfig) -> StandIn:
    return StandIn(Settings(compute=CPU, video=video), [])


@pytest.mark.slow
@pytest.mark.parametrize("offsets", [(1,), (1, 2, 4)])
def test_a_backward_pass_holds_a_bounded_number_of_frames(
    tmp_path: Path, make_moving_frames: Callable[..., list], offsets: tuple[int, ...]
) -> None:
    frames = make_moving_frames(14, 48, 32)
    source = ListSource(frames)
    previous, store = FrameStore(tmp_path / "p1"), FrameStore(tmp_path / "p2")
    for index, frame in enumerate(frames):
        previous.save_frame(index, frame, {})
    live: list[int] = []

    def watch(event: Event) -> None:
        if isinstance(event, FrameStarted):
            live.append(source.live())

    video = replace(VIDEO, flow="farneback", temporal_offsets=offsets)
    engine = _stand_in(video)
    loop = LaterPass(engine, video, source, previous, store, range(14), 2, 48, watch, chunk=3)  # type: ignore[arg-type]
    assert loop.run() == 14
    assert store.done_frames(range(14)) == list(range(14))
    # Read in chunks of 3 frames, last chunk first; at most the chunk, the read-ahead queue
    # (2), the one being queued, the frame in hand and the neighbours at the offsets (the
    # largest offset's worth) live at once, never 14.
    assert source.reads == [(11, 3), (8, 3), (5, 3), (2, 3), (0, 2)]
    assert len(live) == 14 and max(live) <= 3 + 2 + 1 + 1 + max(offsets)


@pytest.mark.slow
def test_reversed_contents_keeps_at_most_a_chunk(make_moving_frames: Callable[..., list]) -> None:
    source = ListSource(make_moving_frames(10, 48, 32))
    order, live = [], []
    for index, _digest, _frame in reversed_contents(source, range(1, 10), 48, chunk=4):  # type: ignore[arg-type]
        order.append(index)
        live.append(source.live())
    assert order == list(range(9, 0, -1))
    assert max(live) <= 4 + 1  # the chunk being handed out and the one just taken


def test_no_blend_or_temporal_term_across_a_scene_cut(
    tmp_path: Path, make_moving_frames: Callable[..., list]
) -> None:
    # Frames 0-2 and 3-5 are two unrelated shots.
    shot = make_moving_frames(3, 48, 32)
    other = [np.ascontiguousarray(f[::-1, ::-1, ::-1]) for f in make_moving_frames(3, 48, 32, 3)]
    frames = [*shot, *other]
    work = WorkDir(tmp_path)
    video = VideoConfig(passes=3, first_iterations=2, iterations=2)
    engine = _stand_in(video)
    source = ListSource(frames)
    render_passes(engine, video, source, lambda n: work.pass_frames(n, 3), range(6), 48)  # type: ignore[arg-type]
    inits = [work.frames.read_stats(i)["init"] for i in range(6)]  # type: ignore[index]
    # Pass 3 runs forwards: frame 0 has no neighbour, frame 3 sits after the cut.
    assert inits == ["own", "blended", "blended", "cut", "blended", "blended"]
    pass_two = engine.seen[6:12]  # backward: 5, 4, 3, 2 (after the cut), 1, 0
    assert [t for t, _ in pass_two] == [False, True, True, False, True, True]
    assert all(how == "refine" for _, how in engine.seen[6:])
    assert not (tmp_path / "passes").exists()  # every earlier pass deleted once done


class Occluded:
    """Zero flows whose consistency masks are given by hand per (from, to) pair of frames; a
    frame's number is its input's first value / 10. Pairs not listed are unreliable (0)."""

    def __init__(self, height: int, width: int, masks: dict[tuple[int, int], np.ndarray]):
        self.shape, self.masks = (height, width), masks

    def frame_flow(self, prev: np.ndarray, cur: np.ndarray, method: str = "dis") -> flow.FrameFlow:
        pair = (int(prev[0, 0, 0]) // 10, int(cur[0, 0, 0]) // 10)
        mask = self.masks.get(pair, np.zeros(self.shape, np.float32))
        return flow.FrameFlow(np.zeros((*self.shape, 2), np.float32), mask)

    def pair_flows(self, prev: np.ndarray, cur: np.ndarray, method: str = "dis") -> tuple:
        return self.frame_flow(prev, cur), self.frame_flow(cur, prev)


@pytest.mark.parametrize("offsets", [(1,), (1, 2, 4)])
def test_a_backward_pass_takes_frames_i_plus_2_and_4_where_i_plus_1_was_occluded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offsets: tuple[int, ...]
) -> None:
    height, width = 4, 6
    left = np.zeros((height, width), np.float32)
    left[:, : width // 2] = 1.0
    top = np.zeros((height, width), np.float32)
    top[: height // 2] = 1.0
    ones = np.ones((height, width), np.float32)
    occluded = Occluded(
        height,
        width,
        {
            (4, 3): 1.0 - left,  # frame 3's left half is hidden in frame 4 ...
            (5, 3): ones,  # ... but seen in frame 5 (offset 2)
            (7, 3): ones,  # (and in 7: offset 4, but 2 is nearer)
            (3, 2): 1.0 - top,  # frame 2's top half is hidden in frames 3 and 4 ...
            (6, 2): ones,  # ... and seen in frame 6 (offset 4)
        },
    )
    monkeypatch.setattr(flow, "frame_flow", occluded.frame_flow)
    monkeypatch.setattr(flow, "pair_flows", occluded.pair_flows)
    monkeypatch.setattr(flow, "is_scene_cut", lambda motion, threshold=0.5: False)
    frames = [np.full((height, width, 3), 10 * i, np.uint8) for i in range(8)]
    previous, store = FrameStore(tmp_path / "p1"), FrameStore(tmp_path / "p2")
    for index in range(8):
        previous.save_frame(index, np.full((height, width, 3), 100 + 15 * index, np.uint8), {})
    video = replace(VIDEO, temporal_offsets=offsets)
    engine = _stand_in(video)
    loop = LaterPass(engine, video, ListSource(frames), previous, store, range(8), 2, width)  # type: ignore[arg-type]
    assert loop.run() == 8
    out = {i: store.load_frame(i)[..., 0] for i in range(8)}  # type: ignore[index]
    own = {i: 100 + 15 * i for i in range(8)}
    # Frames 4-7 see nothing reliable in their neighbours: their own previous results.
    assert all((out[i] == own[i]).all() for i in range(4, 8))
    # Frame 3's right half comes from frame 4 (offset 1) either way; its hidden left half from
    # frame 5 with offsets 1,2,4, from its own last result with offset 1 alone.
    assert (out[3][:, width // 2 :] == own[4]).all()
    assert (out[3][:, : width // 2] == (own[5] if len(offsets) > 1 else own[3])).all()
    # Frame 2's bottom half takes frame 3's result; its top half (hidden in 3 and 4) frame 6's.
    assert (out[2][height // 2 :] == out[3][height // 2 :]).all()
    assert (out[2][: height // 2] == (own[6] if len(offsets) > 1 else own[2])).all()
    recovered = store.read_stats(3).get("recovered")  # type: ignore[union-attr]
    assert recovered == (0.5 if len(offsets) > 1 else None)


def main_adjacent_neighbour(
    content: np.ndarray, earlier: list[Earlier], step: int, video: VideoConfig
) -> Neighbour | None:
    """main's later-pass target before the passes honoured --temporal-offsets (offset 1 only),
    kept here as the reference a render with --temporal-offsets 1 must reproduce."""
    (adjacent,) = [e for e in earlier if e.offset == 1]
    if step > 0:
        motion = flow.frame_flow(adjacent.input, content, video.flow)
        ordered = motion
    else:
        ordered, motion = flow.pair_flows(content, adjacent.input, video.flow)
    if flow.is_scene_cut(ordered, video.scene_cut_threshold):
        return None
    warped = flow.warp(adjacent.output, motion.backward, video.warp_interpolation)
    return Neighbour(warped, motion.mask, motion.consistent_fraction)


@pytest.mark.slow
def test_with_offset_1_later_passes_render_as_the_adjacent_neighbour_did(
    tmp_path: Path,
    weights_file: Path,
    style_rgb: np.ndarray,
    make_moving_frames: Callable[..., list],
) -> None:
    # Five frames of a moving texture, then two of another: both directions meet the cut.
    shot = make_moving_frames(5, 32, 24)
    other = [np.ascontiguousarray(f[::-1, ::-1, ::-1]) for f in make_moving_frames(2, 32, 24, 3)]
    frames = [*shot, *other]
    video = VideoConfig(
        passes=3, first_iterations=4, iterations=2, pass_iterations=2, temporal_offsets=(1,)
    )
    settings = Settings(image=ImageConfig(size=32), compute=CPU, video=video)
    settings = replace(settings, optim=replace(settings.optim, iterations=4))
    style = tmp_path / "style.png"
    Image.fromarray(style_rgb).save(style)
    engine = make_engine([str(style)], settings, str(weights_file))
    results = []
    for name, target in (("now", pass_neighbour), ("main", main_adjacent_neighbour)):
        work = WorkDir(tmp_path / name)
        stores = lambda n, work=work: work.pass_frames(n, 3)  # noqa: E731
        source = ListSource(frames)
        render_passes(engine, video, source, stores, range(len(frames)), 32, target=target)  # type: ignore[arg-type]
        results.append(frame_bytes(work.frames_dir))
    assert len(results[0]) == len(frames) and results[0] == results[1]


# --- whole renders with the random VGG ------------------------------------------------------------


COUNT, WIDTH, HEIGHT = 6, 48, 32


inputs = inputs_fixture("passes", COUNT, (WIDTH, HEIGHT))


def video_args(inputs: Inputs, output: Path, *extra: str) -> list[str]:
    return [
        "video", str(inputs.clip), "-s", str(inputs.style), "--size", "32",
        "--first-iterations", "6", "--iterations", "3", "--pass-iterations", "3",
        "--passes", "3", "--temporal-offsets", "1,2,4", "--weights", str(inputs.weights),
        "-o", str(output), "--quiet", *extra,
    ]  # fmt: skip


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NST_VIDEO_DEBUG"}
    return {**env, "OMP_NUM_THREADS": "1"}


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nst_video", *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def frame_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("[0-9]*.png"))}


@pytest.fixture(scope="module")
def reference(inputs: Inputs) -> dict[str, bytes]:
    output = inputs.root / "ref.mp4"
    done = run_cli(video_args(inputs, output), inputs.root)
    assert done.returncode == 0, done.stderr
    work = inputs.root / "ref.mp4.nst-work"
    assert not (work / "passes").exists()
    return frame_bytes(work / "frames")


@pytest.mark.slow
def test_sigkill_in_the_second_pass_then_resume_gives_the_same_frames(
    inputs: Inputs, reference: dict[str, bytes], tmp_path: Path
) -> None:
    output = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.nst-work"
    second = work / "passes" / "02"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nst_video", *video_args(inputs, output)],
        cwd=tmp_path,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(list(second.glob("[0-9]*.png"))) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "the render never reached its second pass"
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    done_in_two = len(list(second.glob("[0-9]*.png")))
    assert 2 <= done_in_two < COUNT, "killed outside the second pass"
    assert not frame_bytes(work / "frames")  # the final pass had not begun

    status = run_cli(["status", str(work), "--json"], tmp_path)
    assert status.returncode == 0, status.stderr
    step = json.loads(status.stdout)["pass"]
    assert (step["number"], step["of"], step["total"]) == (2, 3, COUNT)
    assert step["done"] >= done_in_two  # a save may have landed after the count above
    text = run_cli(["status", str(work)], tmp_path).stdout
    assert text.startswith(f"pass 2/3 ({step['done']}/{COUNT} frames); 0/{COUNT} frames done")

    done = run_cli(["resume", str(work), "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert frame_bytes(work / "frames") == reference
    assert not (work / "passes").exists()
    assert json.loads((work / "frames" / "000000.json").read_text())["pass"] == 3


@pytest.mark.slow
def test_more_passes_change_the_frames_and_one_pass_is_the_single_pass_render(
    inputs: Inputs, reference: dict[str, bytes], tmp_path: Path
) -> None:
    single = run_cli(video_args(inputs, tmp_path / "one.mp4", "--passes", "1"), tmp_path)
    assert single.returncode == 0, single.stderr
    frames = frame_bytes(tmp_path / "one.mp4.nst-work" / "frames")
    assert sorted(frames) == sorted(reference)
    assert frames[FRAME_NAME.format(0)] != reference[FRAME_NAME.format(0)]
    stats = json.loads((tmp_path / "one.mp4.nst-work" / "frames" / "000001.json").read_text())
    assert "pass" not in stats and stats["init"] == "warped"


def _job(inputs: Inputs, output: Path, video: VideoConfig) -> Job:
    settings = Settings(image=ImageConfig(size=32), compute=CPU, video=video)
    settings = replace(settings, optim=replace(settings.optim, iterations=video.first_iterations))
    weights = str(inputs.weights)  # the work directory records the weights' content hash
    return Job(
        str(inputs.sequence), (str(inputs.style),), str(output) + "/", weights, None, settings
    )


@pytest.mark.slow
def test_each_segment_runs_its_own_passes_over_its_frames(inputs: Inputs, tmp_path: Path) -> None:
    video = VideoConfig(passes=2, first_iterations=6, iterations=3, pass_iterations=3)
    factory = _factory(inputs.weights)
    # What segment 0 (frames 0-2, no warm-up) renders is a 3-frame render of the clip.
    alone = render_video(
        _job(inputs, tmp_path / "alone", replace(video, frames=3)), tmp_path / "a.work", factory
    )
    assert alone.rendered == 6  # 3 frames, 2 passes
    work = WorkDir(tmp_path / "seg.work")
    job = _job(inputs, tmp_path / "seg", video)
    segments = [Segment(0, 0, 3, 0), Segment(1, 3, 6, 2)]
    for segment in segments:
        rendered = render_segment_task(
            job.to_dict(), str(work.path), segment.as_dict(), 32, factory
        )
        assert rendered == 2 * len(segment.frames)
    assert frame_bytes(work.frames_dir).keys() == {FRAME_NAME.format(i) for i in range(6)}
    first = {n: b for n, b in frame_bytes(work.frames_dir).items() if n < FRAME_NAME.format(3)}
    assert first == frame_bytes(tmp_path / "a.work" / "frames")
    # Segment 1's warm-up frames (1, 2) went through both of its passes into its own folder.
    assert frame_bytes(work.segment_dir(1)).keys() == {FRAME_NAME.format(1), FRAME_NAME.format(2)}
    assert not (work.segment_dir(0) / "passes").exists()
    assert not (work.segment_dir(1) / "passes").exists()


def _factory(weights: Path) -> Callable[[Job], Engine]:
    def factory(job: Job) -> Engine:
        return make_engine(list(job.styles), job.settings, weights)

    return factory


def _messages(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, Message)]


def test_dropping_a_range_discards_an_earlier_pass_whole_but_only_the_range_in_frames(
    tmp_path: Path,
) -> None:
    # A work directory named like the folder of the earlier passes: frames/ is still the
    # render's own, holding frames of other ranges too.
    work = WorkDir(tmp_path / "passes")
    final, earlier = work.pass_frames(3, 3), work.pass_frames(2, 3)
    frame = np.zeros((4, 6, 3), np.uint8)
    for index in range(4):
        final.save_frame(index, frame, {})
        earlier.save_frame(index, frame, {})
    final.drop_all(range(1, 3))
    earlier.drop_all(range(1, 3))
    assert final.done_frames(range(4)) == [0, 3]
    assert earlier.done_frames(range(4)) == [] and not work.passes_dir.exists()


def test_another_frame_range_or_a_changed_input_renders_the_later_passes_again(
    tmp_path: Path, make_moving_frames: Callable[..., list]
) -> None:
    source = ListSource(make_moving_frames(6, 48, 32))
    work = WorkDir(tmp_path)
    video = VideoConfig(passes=3, first_iterations=2, iterations=2)
    engine = _stand_in(video)

    def render(indices: range) -> list[str]:
        events: list[Event] = []
        stores = lambda n: work.pass_frames(n, 3)  # noqa: E731
        render_passes(engine, video, source, stores, indices, 48, events.append)  # type: ignore[arg-type]
        return _messages(events)

    render(range(6))
    assert render(range(6))[-1] == "pass 3 of 3 (forward)"  # nothing to redo
    shorter = render(range(4))
    assert shorter[0] == "the frame range changed: rendering passes 2-3 again"
    assert shorter[1] == "pass 1 of 3 (forward)"  # pass 1 was deleted after pass 2: all again
    assert work.frames.read_stats(3)["range"] == [0, 4]  # type: ignore[index]
    source.frames_list[2] = source.frames_list[2][::-1].copy()
    changed = render(range(4))
    assert (
        changed[0] == "input frames changed since frames were rendered: rendering passes 2-3 again"
    )
    assert work.frames.read_stats(2)["input"] == frame_digest(source.frames_list[2])  # type: ignore[index]


def test_restart_discards_every_pass_and_only_our_files(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    frame = np.zeros((4, 4, 3), np.uint8)
    work.pass_frames(2, 3).save_frame(0, frame, {})
    segment = Segment(1, 4, 8, 2)
    work.segment_pass_frames(segment, 1, 3).save_frame(2, frame, {})
    assert work.has_pass_frames()
    foreign = tmp_path / "passes" / "01" / "notes.txt"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("not ours")
    work.discard_frames()
    assert not work.has_pass_frames()
    assert not (tmp_path / "passes" / "02").exists()
    assert not (work.segment_dir(1) / "passes").exists()
    assert foreign.read_text() == "not ours"
