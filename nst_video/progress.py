"""Progress events the engine emits through a callback (the CLI turns them into a progress bar:
cli/progress.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the events module stays numpy-free at import
    import numpy as np


@dataclass(frozen=True)
class Iteration:
    """Sent every `log_every` loss evaluations while one image or frame is optimized."""

    evaluation: int
    budget: int
    loss: float
    # The best iterate's loss terms (content, style, tv, temporal), unweighted; only for a
    # callback that asks (wants(callback, TERMS)): reading them is a device-to-host copy.
    terms: dict[str, float] | None = None
    # The best iterate so far (HxWx3 uint8, at the level being optimized), only for a callback
    # that asks (wants(callback, ITERATE)): `image --save-every`.
    image: np.ndarray | None = None
    # Coarse-to-fine: `evaluation` and `budget` run over all levels of one image or frame; this
    # is level `level` (0: the coarsest) of `levels`, optimized at `side` px on its long side
    # (0: not said).
    level: int = 0
    levels: int = 1
    side: int = 0


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
    # The budget of the warm-started frames that follow (--iterations): lets the ETA price
    # them from the first frame's speed before one of them finished. None: not known.
    later: int | None = None


@dataclass(frozen=True)
class FrameDone:
    index: int
    done: int
    total: int
    init: str
    evaluations: int
    seconds: float
    terms: dict[str, float] = field(default_factory=dict)
    # The finished frame and its input at the render's size (HxWx3 uint8), for a callback that
    # asks (wants(callback, IMAGE)); None otherwise, and for frames rendered elsewhere (Ray).
    image: np.ndarray | None = None
    input: np.ndarray | None = None


@dataclass(frozen=True)
class Message:
    """A line for the user (resumed at frame N, encoding, ...)."""

    text: str


Event = Iteration | ImageDone | ImageFailed | FrameStarted | FrameDone | Message
Callback = Callable[[Event], None]


def ignore(_: Event) -> None:
    """Default callback: the library itself never prints."""


# What a callback may ask the events to carry, in its `wants` attribute (a set of these):
TERMS = "terms"  # Iteration.terms
IMAGE = "image"  # FrameDone.image and FrameDone.input
ITERATE = "iterate"  # Iteration.image


def wants(callback: Callback, what: str) -> bool:
    """Whether `callback` asked for `what` (TERMS, IMAGE) in its `wants` attribute: the
    engine and the frame loop fill the costly fields only then."""
    return what in getattr(callback, "wants", ())


def asking(callback: Callback, *what: str, like: Callback | None = None) -> Callback:
    """`callback`, marked as wanting `what` and whatever `like` (a callback it forwards to)
    wants; returns it, for wrappers: `return asking(forward, IMAGE, like=inner)`."""
    callback.wants = frozenset(what) | frozenset(getattr(like, "wants", ()))  # type: ignore[attr-defined]
    return callback


def format_duration(seconds: float | None) -> str:
    """h:mm:ss, or 'unknown'."""
    if seconds is None:
        return "unknown"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
