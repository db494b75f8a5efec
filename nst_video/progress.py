"""Progress events the engine emits through a callback; the CLI turns them into a progress bar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Iteration:
    """Sent every `log_every` loss evaluations while one image or frame is optimized."""

    evaluation: int
    budget: int
    loss: float


@dataclass(frozen=True)
class ImageDone:
    path: str
    output: str
    evaluations: int
    seconds: float
    loss: float


@dataclass(frozen=True)
class ImageFailed:
    path: str
    reason: str


@dataclass(frozen=True)
class FrameStarted:
    index: int  # position in the clip
    done: int  # frames finished in this render so far (including earlier runs)
    total: int
    init: str  # content | warped | previous | cut
    budget: int


@dataclass(frozen=True)
class FrameDone:
    index: int
    done: int
    total: int
    init: str
    evaluations: int
    seconds: float
    terms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """A line for the user (resumed at frame N, encoding, ...)."""

    text: str


Event = Iteration | ImageDone | ImageFailed | FrameStarted | FrameDone | Message
Callback = Callable[[Event], None]


def ignore(_: Event) -> None:
    """Default callback: the library itself never prints."""


class ProgressReporter:
    """Turns events into a rich progress bar on stderr (CLI side; the engine never prints)."""

    def __init__(self, quiet: bool, unit: str, total: int, done: int = 0):
        self.quiet, self.unit = quiet, unit
        self.total, self.done = total, done
        self._progress = None
        self._task = None
        self._loss = float("nan")

    def __enter__(self) -> ProgressReporter:
        if not self.quiet:
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
                console=Console(stderr=True),
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
                _stderr(f"nst-video: skipped {event.path}: {event.reason}")
            return
        # Started by the first event, not on entry: options and inputs are checked inside the
        # `with`, and a refusal there must print nothing but the error line.
        self._progress.start()
        self._update(self._progress, self._task, event)

    def _update(self, progress, task, event: Event) -> None:  # noqa: ANN001 - rich types
        if isinstance(event, Iteration):
            self._loss = event.loss
            progress.update(
                task, detail=f"eval {event.evaluation}/{event.budget} loss {event.loss:.4g}"
            )
        elif isinstance(event, FrameStarted):
            self.done = event.done
            progress.update(
                task,
                total=event.total,
                completed=event.done,
                detail=f"frame {event.index} ({event.init})",
            )
        elif isinstance(event, FrameDone):
            self.done = event.done
            detail = f"{event.seconds:.1f} s/frame loss {self._loss:.4g}" if event.seconds else ""
            progress.update(task, total=event.total, completed=self.done, detail=detail)
        elif isinstance(event, ImageDone):
            self.done += 1
            detail = f"{event.seconds:.1f} s/image loss {event.loss:.4g}"
            progress.update(task, completed=self.done, detail=detail)
        elif isinstance(event, ImageFailed):
            progress.console.print(f"[red]skipped[/red] {event.path}: {event.reason}")
        elif isinstance(event, Message):
            progress.console.print(event.text)


def _stderr(text: str) -> None:
    import sys

    print(text, file=sys.stderr)
