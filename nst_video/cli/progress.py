"""The progress presenter: turns the core's progress events into a rich bar on a terminal, or
plain lines elsewhere. The events themselves are nst_video/progress.py's (the engine emits them
and never prints)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from nst_video.errors import plural
from nst_video.progress import (
    Event,
    FrameDone,
    FrameStarted,
    ImageDone,
    ImageFailed,
    Iteration,
    Message,
    format_duration,
)


def failure_line(event: ImageFailed) -> str:
    """One line per skipped file; the path once, even when the reason names it too."""
    if event.path in event.reason:
        return f"nst-video: skipped: {event.reason}"
    return f"nst-video: skipped {event.path}: {event.reason}"


class ProgressReporter:
    """Turns events into progress on stderr (CLI side; the engine never prints): a rich bar on a
    terminal, one plain line per finished frame or image elsewhere (nohup, batch jobs, CI logs).
    """

    def __init__(
        self,
        quiet: bool,
        unit: str,
        total: int,
        done: int = 0,
        stream: TextIO | None = None,
        terminal: bool | None = None,
    ):
        self.quiet, self.unit = quiet, unit
        self.total, self.done = total, done
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = _isatty(self.stream) if terminal is None else terminal
        self._progress = None
        self._task = None
        self._loss: float | None = None  # last loss read in the current frame
        self._clock = _Clock()
        # The bar counts evaluations for a single image, and for a video until its first frame
        # of this run is done (the first frame is long: frames would sit at 0 with no ETA);
        # then frames, with the speed samples of the evaluation phase dropped.
        self._evaluations = unit == "image" and total == 1 or unit == "frame"

    def __enter__(self) -> ProgressReporter:
        if not self.quiet and self.terminal:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream, force_terminal=True),
                transient=False,
            )
            self._task = self._progress.add_task(
                self.unit + "s", total=self.total, completed=self.done, detail=""
            )
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._progress is not None and self._progress.live.is_started:
            if exc_type is not None:
                # Erase the bar so a failure reads as the CLI's single `nst-video: error:` line.
                self._progress.live.transient = True
            self._progress.stop()

    def __call__(self, event: Event) -> None:
        if self._progress is None or self._task is None:
            if isinstance(event, ImageFailed):
                self._line(failure_line(event))
            elif not self.quiet:
                self._plain(event)
            return
        # Started by the first progress event, not on entry: options and inputs are checked
        # inside the `with`, and a refusal there must print nothing but the error line. Updated
        # first, so that the bar never shows before it has a total (no "0/0").
        self._update(self._progress, self._task, event)
        if isinstance(event, Iteration | FrameStarted | FrameDone | ImageDone):
            self._progress.start()

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _plain(self, event: Event) -> None:
        """Without a terminal: one line per finished frame or image, and the messages."""
        self._clock.saw(event)
        if isinstance(event, FrameDone):
            self.done = event.done
            init = "" if event.index < 0 else f" (clip frame {event.index}, {event.init})"
            work = (
                ""
                if event.index < 0
                else (f": {plural(event.evaluations, 'evaluation')}, {event.seconds:.1f} s")
            )
            eta = format_duration(self._clock.eta(event.done, event.total))
            self._line(f"frame {event.done}/{event.total}{init}{work}, ETA {eta}")
        elif isinstance(event, ImageDone):
            self.done += 1
            self._line(
                f"image {self.done}/{self.total} {event.path}: "
                f"{plural(event.evaluations, 'evaluation')}, {event.seconds:.1f} s"
            )
        elif isinstance(event, Message):
            self._line(event.text)

    def _update(self, progress, task, event: Event) -> None:  # noqa: ANN001 - rich types
        if isinstance(event, Iteration):
            self._loss = event.loss
            # A coarse-to-fine level says its size: the count runs on over the levels, each
            # cheaper than the next.
            level = f"at {event.side} px " if event.levels > 1 and event.side else ""
            detail = f"eval {event.evaluation}/{event.budget} {level}loss {event.loss:.4g}"
            if self._evaluations:
                progress.update(
                    task,
                    total=event.budget,
                    completed=event.evaluation,
                    detail=f"{level}loss {event.loss:.4g}",
                )
            else:
                progress.update(task, detail=detail)
        elif isinstance(event, FrameStarted):
            self.done = event.done
            self._loss = None  # a frame whose budget ends before the first reading shows none
            detail = f"frame {event.index} ({event.init})"
            if self._evaluations:
                what = f"frame {event.index} evaluations"
                progress.reset(task, total=event.budget, completed=0, description=what, detail="")
            else:
                progress.update(task, total=event.total, completed=event.done, detail=detail)
        elif isinstance(event, FrameDone):
            self.done = event.done
            detail = f"{event.seconds:.1f} s/frame" if event.seconds else ""
            if detail and self._loss is not None:
                detail += f" loss {self._loss:.4g}"
            if self._evaluations:
                self._evaluations = False  # frames from now on, at the later frames' speed
                progress.reset(
                    task,
                    total=event.total,
                    completed=self.done,
                    description="frames",
                    detail=detail,
                )
            else:
                progress.update(task, total=event.total, completed=self.done, detail=detail)
        elif isinstance(event, ImageDone):
            self.done += 1
            detail = f"{event.seconds:.1f} s/image loss {event.loss:.4g}"
            if self._evaluations:  # the finished image's loss, not a coarse level's reading
                progress.update(
                    task,
                    completed=event.evaluations,
                    total=event.evaluations,
                    detail=f"loss {event.loss:.4g}",
                )
            else:
                progress.update(task, completed=self.done, detail=detail)
        elif isinstance(event, ImageFailed):
            _print_plain(progress.console, failure_line(event))
        elif isinstance(event, Message):
            _print_plain(progress.console, event.text)


def _print_plain(console, text: str) -> None:  # noqa: ANN001 - rich Console
    """Above the bar, as written: no wrapping mid-sentence, no markup read into paths."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


class _Clock:
    """ETA of a video from the frames finished in this run. The frames left are warm-started
    ones, priced at their own mean time once one finished; before that, at the first frame's
    seconds per evaluation (at full size, after coarse-to-fine levels) times their budget (the
    first frame's budget is larger). Without per-frame times (parallel segments), wall time
    since the first event over frames done."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.first_done: int | None = None
        self.first: list[tuple[float, int]] = []  # (seconds, evaluations) of independent frames
        self.later: list[float] = []  # seconds of warm-started frames
        self.later_budget: int | None = None
        # (time, evaluation) of the current frame's first and latest readings at full size
        # after coarse-to-fine levels, whose evaluations are cheaper: they would price the
        # later frames' full-size evaluations too low.
        self.full: list[tuple[float, int]] = []

    def saw(self, event: Event) -> None:
        if self.start is None:
            self.start = time.monotonic()
        if self.first_done is None and isinstance(event, FrameStarted):
            self.first_done = event.done
        elif self.first_done is None and isinstance(event, FrameDone):
            self.first_done = event.done - 1
        if isinstance(event, Iteration) and event.levels > 1 and event.level == event.levels - 1:
            reading = (time.monotonic(), event.evaluation)
            self.full = [self.full[0] if self.full else reading, reading]
        if isinstance(event, FrameStarted):
            self.full = []
            if event.later is not None:
                self.later_budget = event.later
            elif event.init not in INDEPENDENT_STARTS:
                self.later_budget = event.budget
        if isinstance(event, FrameDone) and event.index >= 0 and event.seconds > 0:
            if event.init in INDEPENDENT_STARTS:
                self.first.append(self._full_size(event.seconds, max(1, event.evaluations)))
            else:
                self.later.append(event.seconds)

    def _full_size(self, seconds: float, evaluations: int) -> tuple[float, int]:
        """A finished frame's (seconds, evaluations), its seconds priced at its full-size
        evaluations' pace where coarse-to-fine levels came first and two readings allow."""
        if not self.full or self.full[1][1] <= self.full[0][1]:
            return seconds, evaluations
        (start, first), (end, last) = self.full
        return (end - start) / (last - first) * evaluations, evaluations

    def eta(self, done: int, total: int) -> float | None:
        left = total - done
        if self.later:
            return sum(self.later) / len(self.later) * left
        if self.first and self.later_budget:
            per_evaluation = sum(s for s, _ in self.first) / sum(e for _, e in self.first)
            return per_evaluation * self.later_budget * left
        finished = done - (self.first_done or 0)
        if self.start is None or finished <= 0:
            return None
        return (time.monotonic() - self.start) / finished * left


# Frame starts that take nothing from the previous frame (first frame, scene cut): full budget.
INDEPENDENT_STARTS = ("content", "cut")
