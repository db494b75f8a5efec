"""What the user sees of progress: plain lines without a terminal, the bar's details on one."""

from __future__ import annotations

import io

import pytest

from nst_video import progress
from nst_video.errors import plural
from nst_video.progress import (
    FrameDone,
    FrameStarted,
    ImageFailed,
    Iteration,
    Message,
    ProgressReporter,
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
        "frame 4/5 (clip frame 13, cut): 300 evaluations, 10.0 s, ETA 0:00:20",
    ]


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


def _bar(*events: object) -> str:
    stream = io.StringIO()
    with ProgressReporter(False, "frame", 0, stream=stream, terminal=True) as reporter:
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
