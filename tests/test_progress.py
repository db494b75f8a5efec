"""What the user sees of progress: plain lines without a terminal, the bar's details on one."""

from __future__ import annotations

import io
import re

import pytest

from nst_video.cli import progress
from nst_video.cli.progress import ProgressReporter
from nst_video.errors import plural
from nst_video.progress import (
    FrameDone,
    FrameStarted,
    ImageDone,
    ImageFailed,
    Iteration,
    Message,
    format_duration,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_each_finished_frame_is_one_plain_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    stream = io.StringIO()  # not a TTY, like nohup's or CI's stderr
    with ProgressReporter(False, "frame", 0, stream=stream) as reporter:
        reporter(Message("resuming: 2 of 5 frames already done"))
        reporter(FrameStarted(12, 2, 5, "warped", 100))
        reporter(Iteration(10, 100, 3.5))
        clock.now += 30.0
        reporter(FrameDone(12, 3, 5, "warped", 1, 30.0, {}))
        reporter(FrameStarted(13, 3, 5, "cut", 300))
        clock.now += 10.0
        reporter(FrameDone(13, 4, 5, "cut", 300, 10.0, {}))
    assert stream.getvalue().splitlines() == [
        "resuming: 2 of 5 frames already done",
        # ETA from this run's frames only (the 2 done earlier took no time here): 30 s/frame.
        "frame 3/5 (clip frame 12, warped): 1 evaluation, 30.0 s, ETA 0:01:00",
        # The frame left is warm-started: priced at the warm-started frames' 30 s, not at the
        # mean with the cut's 10 s.
        "frame 4/5 (clip frame 13, cut): 300 evaluations, 10.0 s, ETA 0:00:30",
    ]


def test_eta_after_the_first_frame_prices_later_frames_by_their_budget() -> None:
    stream = io.StringIO()
    with ProgressReporter(False, "frame", 0, stream=stream) as reporter:
        reporter(FrameStarted(0, 0, 11, "content", 300, later=100))
        reporter(FrameDone(0, 1, 11, "content", 300, 60.0, {}))
        reporter(FrameStarted(1, 1, 11, "warped", 100, later=100))
        reporter(FrameDone(1, 2, 11, "warped", 100, 12.0, {}))
    assert stream.getvalue().splitlines() == [
        # 60 s / 300 evaluations = 0.2 s each; 10 frames left of 100 evaluations: 200 s.
        "frame 1/11 (clip frame 0, content): 300 evaluations, 60.0 s, ETA 0:03:20",
        # A warm-started frame finished: 12 s each for the 9 left.
        "frame 2/11 (clip frame 1, warped): 100 evaluations, 12.0 s, ETA 0:01:48",
    ]


def test_eta_prices_later_frames_at_the_full_size_pace_after_coarse_levels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    stream = io.StringIO()
    with ProgressReporter(False, "frame", 0, stream=stream) as reporter:
        reporter(FrameStarted(0, 0, 11, "content", 150, later=30))
        reporter(Iteration(100, 150, 0.9, level=0, levels=2, side=512))  # 100 cheap ones
        clock.now += 10.0
        reporter(Iteration(110, 150, 0.8, level=1, levels=2, side=1024))
        clock.now += 40.0
        reporter(Iteration(150, 150, 0.7, level=1, levels=2, side=1024))
        reporter(FrameDone(0, 1, 11, "content", 150, 100.0, {}))
    # 1 s per full-size evaluation (40 s for 40), not 100 s / 150: 10 frames x 30 = 300 s.
    assert stream.getvalue().splitlines() == [
        "frame 1/11 (clip frame 0, content): 150 evaluations, 100.0 s, ETA 0:05:00",
    ]


def test_bar_counts_evaluations_until_the_first_frame_is_done_and_never_shows_0_of_0() -> None:
    shown = _bar(Message("resuming"), FrameStarted(0, 0, 4, "content", 50), Iteration(10, 50, 2.0))
    assert "10/50" in shown and "0/0" not in shown
    assert "frame 0 evaluations" in shown
    shown = _bar(
        FrameStarted(0, 0, 4, "content", 50),
        Iteration(10, 50, 2.0),
        FrameDone(0, 1, 4, "content", 50, 1.0, {}),
        FrameStarted(1, 1, 4, "warped", 20),
        Iteration(10, 20, 1.0),
    )
    assert "1/4" in shown and "0/0" not in shown


def test_single_image_bar_counts_evaluations() -> None:
    shown = _bar(Iteration(20, 200, 5.0), Iteration(40, 200, 4.0), unit="image", total=1)
    assert "40/200" in shown and "0/1" not in shown


def test_bar_counts_on_over_coarse_to_fine_levels_and_names_the_level_size() -> None:
    shown = _bar(
        Iteration(100, 300, 0.9, level=0, levels=2, side=512),
        Iteration(250, 300, 0.8, level=1, levels=2, side=1024),
        unit="image",
        total=1,
    )
    assert "100/300" in shown and "at 512 px loss 0.9" in shown
    assert "250/300" in shown and "at 1024 px loss 0.8" in shown
    # The finished image shows its own loss, not the last level's reading.
    done = _bar(
        Iteration(10, 20, 1.2, level=0, levels=2, side=512),
        ImageDone("a.png", "b.png", 20, 3.0, 0.75),
        unit="image",
        total=1,
    )
    assert "20/20 loss 0.75 " in re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", done)
    # Single scale names no size.
    assert " px" not in _bar(Iteration(40, 200, 4.0, side=512), unit="image", total=1)


def test_parallel_progress_lines_and_quiet_prints_only_failures() -> None:
    stream = io.StringIO()
    with ProgressReporter(False, "frame", 0, stream=stream) as reporter:
        reporter(FrameDone(-1, 1, 8, "segment", 0, 0.0, {}))
    assert stream.getvalue().startswith("frame 1/8, ETA ")
    quiet = io.StringIO()
    with ProgressReporter(True, "image", 2, stream=quiet) as reporter:
        reporter(FrameDone(0, 1, 2, "content", 3, 1.0, {}))
        reporter(ImageFailed("a.png", "a.png is not a readable image"))
        reporter(ImageFailed("b.png", "b.png exists; pass --overwrite to replace it"))
    assert quiet.getvalue().splitlines() == [
        "nst-video: skipped: a.png is not a readable image",
        "nst-video: skipped: b.png exists; pass --overwrite to replace it",
    ]


def _bar(*events: object, unit: str = "frame", total: int = 0) -> str:
    stream = io.StringIO()
    with ProgressReporter(False, unit, total, stream=stream, terminal=True) as reporter:
        for event in events:
            reporter(event)  # type: ignore[arg-type]
    return stream.getvalue()


def test_bar_shows_no_nan_when_a_budget_ends_before_the_first_reading() -> None:
    # 3 evaluations with readings every 10: the frame ends with no loss read.
    shown = _bar(FrameStarted(0, 0, 2, "content", 3), FrameDone(0, 1, 2, "content", 3, 0.5, {}))
    assert "nan" not in shown
    assert "0.5 s/frame" in shown
    read = _bar(
        FrameStarted(0, 0, 2, "content", 30),
        Iteration(10, 30, 1.25),
        FrameDone(0, 1, 2, "content", 30, 0.5, {}),
    )
    assert "0.5 s/frame loss 1.25" in read
    # The next frame reads nothing: it shows no loss, not the previous frame's.
    shown = _bar(
        FrameStarted(0, 0, 2, "content", 30),
        Iteration(10, 30, 1.25),
        FrameDone(0, 1, 2, "content", 30, 0.5, {}),
        FrameStarted(1, 1, 2, "warped", 3),
        FrameDone(1, 2, 2, "warped", 3, 0.25, {}),
    )
    assert "0.2 s/frame" in shown and "0.2 s/frame loss" not in shown and "nan" not in shown


def test_messages_above_the_bar_are_not_wrapped_or_read_as_markup() -> None:
    text = "skipped [red]x[/red] " + "word " * 40
    shown = _bar(Message(text.strip()))
    assert text.strip() in shown


def test_plural_and_duration() -> None:
    assert [plural(n, "frame") for n in (0, 1, 2)] == ["0 frames", "1 frame", "2 frames"]
    assert format_duration(3725.4) == "1:02:05"
    assert format_duration(None) == "unknown"
