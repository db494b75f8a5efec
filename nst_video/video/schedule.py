"""Style schedules (`--style-at WHEN:STYLE`): which style images a frame's targets blend, and
with what weights, as a pure function of the frame's index (so a resumed render and a Ray
segment compute exactly the targets a render in order does).

Torch-free: the engine blends the per-style Gram targets with the weights given here; targets
are computed once per style image, never recomputed from pixels per frame.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from nst_video.errors import OptionError

# WHEN is a frame index (`120`) or a timestamp mm:ss or mm:ss.s (`0:05.0`, `1:30`). The timestamp
# is tried first, so `0:05:a.jpg` is 5 s and `120:starry.jpg` frame 120.
_TIMESTAMP = r"\d+:\d{1,2}(?:\.\d+)?"
_KEYFRAME = re.compile(rf"^(?P<when>{_TIMESTAMP}|\d+):(?P<style>.+)$", re.DOTALL)
VALID_FORMS = "FRAME:STYLE (120:starry.jpg) or MM:SS.S:STYLE (0:05.0:starry.jpg)"


@dataclass(frozen=True)
class Keyframe:
    """One `--style-at`: from `when` on (frame index or mm:ss.s), the style image `style`."""

    when: str
    style: str


def parse_keyframe(text: str) -> Keyframe:
    """`--style-at` text to a Keyframe; a bad one names itself and the valid forms."""
    match = _KEYFRAME.match(text)
    if match is None:
        raise OptionError(f"--style-at {text!r} is not valid; give {VALID_FORMS}")
    when = match["when"]
    if ":" in when and int(when.split(":")[1].split(".")[0]) >= 60:
        raise OptionError(
            f"--style-at {text!r}: seconds must be below 60 in MM:SS.S; give {VALID_FORMS}"
        )
    return Keyframe(when, match["style"])


def frame_of(when: str, fps: Fraction) -> int:
    """The frame index a WHEN names at `fps` (exact: a timestamp is rounded to the nearest
    frame, halves up, in rational arithmetic, so 0:05.0 at 30000/1001 fps is frame 150)."""
    if ":" not in when:
        return int(when)
    minutes, seconds = when.split(":")
    exact = (int(minutes) * 60 + Fraction(seconds)) * fps
    return math.floor(exact + Fraction(1, 2))


@dataclass(frozen=True)
class Schedule:
    """Keyframes resolved to frame indices: `frames[k]` shows style number `styles[k]` (an index
    into the unique style images, in order of first appearance), increasing frames."""

    frames: tuple[int, ...]
    styles: tuple[int, ...]
    n_styles: int
    transition: int | None = None  # crossfade length in frames; None: the whole gap

    def weights(self, index: int) -> tuple[float, ...]:
        """Blend weight of each style at frame `index` (they sum to 1): before the first
        keyframe its style, after the last the last's; between keyframes a and b the weight
        moves linearly from a's style to b's over the last `transition` frames of the gap,
        reaching b's style at b's frame (0: a cut at b)."""
        out = [0.0] * self.n_styles
        after = next((k for k, f in enumerate(self.frames) if f > index), len(self.frames))
        if after == 0 or after == len(self.frames):
            out[self.styles[max(after - 1, 0)]] = 1.0
            return tuple(out)
        a, b = self.frames[after - 1], self.frames[after]
        length = b - a if self.transition is None else min(self.transition, b - a)
        t = 0.0 if length == 0 else min(max((index - (b - length)) / length, 0.0), 1.0)
        out[self.styles[after - 1]] += 1.0 - t
        out[self.styles[after]] += t
        return tuple(out)


def style_images(keyframes: list[Keyframe]) -> list[str]:
    """The distinct style images of a schedule, in order of first appearance (each one's
    targets are computed once)."""
    return list(dict.fromkeys(k.style for k in keyframes))


def resolve(keyframes: list[Keyframe], fps: Fraction, transition: int | None = None) -> Schedule:
    """The schedule at `fps`; two keyframes at one frame, or out of order, are refused."""
    frames = [frame_of(k.when, fps) for k in keyframes]
    for (k0, f0), (k1, f1) in zip(
        zip(keyframes, frames, strict=True),
        zip(keyframes[1:], frames[1:], strict=True),
        strict=False,
    ):
        if f1 <= f0:
            raise OptionError(
                f"--style-at {k1.when}:{k1.style} (frame {f1}) is not after "
                f"--style-at {k0.when}:{k0.style} (frame {f0}) at {fps} fps; give keyframes "
                "in increasing time, one per frame"
            )
    names = style_images(keyframes)
    numbers = tuple(names.index(k.style) for k in keyframes)
    return Schedule(tuple(frames), numbers, len(names), transition)
