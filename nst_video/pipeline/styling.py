"""What a frame's style targets depend on beyond the settings: a style schedule (--style-at)
and region masks (--style-mask, --keep-mask).

Masks are a second frame source read in lockstep with the input: GuidedSource yields each
input frame with its masks stacked on as extra channels, so everything that identifies an input
frame (its digest in the frame statistics, which marks a finished frame and its warm-start chain
stale when it changes) covers its masks too, and a resumed render or a Ray segment reads exactly
the masks a render in order does. The frame loops split them off again (split_frame) into the
engine's FrameGuide, together with the schedule's blend weights for the frame's index.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from fractions import Fraction
from itertools import repeat

import numpy as np

from nst_video.config import VideoConfig
from nst_video.core.engine import FrameGuide
from nst_video.errors import InputError, OptionError, plural
from nst_video.media import FrameSource, open_source
from nst_video.video.resize import resize_long_side, resize_to, scaled_shape
from nst_video.video.schedule import Keyframe, Schedule, parse_keyframe, resolve, style_images


def schedule_keyframes(video: VideoConfig) -> list[Keyframe]:
    return [parse_keyframe(text) for text in video.style_at]


def check_styling(video: VideoConfig, n_styles: int, blend: object) -> None:
    """Option checks that need no file: the schedule's syntax, and the combinations refused."""
    keyframes = schedule_keyframes(video)
    if video.style_transition is not None and video.style_transition < 0:
        raise OptionError(
            f"--style-transition must be >= 0 frames (0: a cut), got {video.style_transition}"
        )
    if video.style_transition is not None and not keyframes:
        raise OptionError("--style-transition needs a schedule: give --style-at FRAME:STYLE")
    if keyframes and blend is not None:
        raise OptionError(
            "--style-blend cannot be combined with --style-at: the schedule sets each frame's blend"
        )
    if keyframes and video.style_masks:
        raise OptionError(
            "--style-mask cannot be combined with --style-at yet: give one or the other"
        )
    if video.style_masks and len(video.style_masks) != n_styles:
        raise OptionError(
            f"{plural(len(video.style_masks), '--style-mask')} given for "
            f"{plural(n_styles, 'style')}; give one mask per --style, in the same order"
        )


def styles_of(video: VideoConfig, styles: Sequence[str]) -> list[str]:
    """The style images a render loads: its schedule's distinct ones, else --style's."""
    keyframes = schedule_keyframes(video)
    return style_images(keyframes) if keyframes else list(styles)


def absolute_styling(video: VideoConfig) -> VideoConfig:
    """The schedule's style images and the masks as absolute paths (a resume works from any
    directory)."""

    def keyframe(text: str) -> str:
        found = parse_keyframe(text)
        return f"{found.when}:{os.path.abspath(found.style)}"

    keep = os.path.abspath(video.keep_mask) if video.keep_mask else None
    return replace(
        video,
        style_at=tuple(map(keyframe, video.style_at)),
        style_masks=tuple(map(os.path.abspath, video.style_masks)),
        keep_mask=keep,
    )


def frame_schedule(video: VideoConfig, fps: Fraction) -> Schedule | None:
    """The schedule at the clip's exact rate (timestamps to frame indices), or None."""
    keyframes = schedule_keyframes(video)
    return resolve(keyframes, fps, video.style_transition) if keyframes else None


def schedule_frames(schedule: Schedule, frame_count: int, count: int) -> list[int]:
    """`count` frames spread evenly from the first keyframe to the last (within the clip), so
    a preview shows each keyframe's style and the crossfades between them."""
    first = min(schedule.frames[0], frame_count - 1)
    last = min(schedule.frames[-1], frame_count - 1)
    if count == 1 or last == first:
        return [first]
    return sorted({round(first + k * (last - first) / (count - 1)) for k in range(count)})


def schedule_guide(schedule: Schedule) -> Callable[[int], FrameGuide]:
    """Frame index -> its guide (blend weights alone): what a preview frame renders with."""
    return lambda index: FrameGuide(weights=schedule.weights(index))


class GuidedSource:
    """The input, each frame with its masks stacked on as channels 3, 4, ... (uint8; one per
    --style-mask, then --keep-mask), each mask resized to the input's size."""

    def __init__(
        self,
        source: FrameSource,
        masks: Sequence[FrameSource],
        keep: FrameSource | None,
        schedule: Schedule | None,
    ):
        self.source, self.masks, self.keep, self.schedule = source, list(masks), keep, schedule
        self.path, self.size, self.fps = source.path, source.size, source.fps
        self.frame_count, self.has_audio = source.frame_count, source.has_audio
        self.warning = getattr(source, "warning", None)
        self.files = getattr(source, "files", None)

    @property
    def channels(self) -> list[FrameSource]:
        return [*self.masks, *([self.keep] if self.keep is not None else [])]

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames()

    def frames(self, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        frames = self.source.frames(start, count)
        if not self.channels:
            return frames
        return self._stacked(frames, start, count)

    def _stacked(
        self, frames: Iterator[np.ndarray], start: int, count: int | None
    ) -> Iterator[np.ndarray]:
        readers = [_mask_frames(m, start, count) for m in self.channels]
        try:
            for frame in frames:
                planes = [
                    self._plane(next(r), m) for r, m in zip(readers, self.channels, strict=True)
                ]
                yield np.dstack([frame, *planes])
        finally:
            for reader in (frames, *readers):
                close = getattr(reader, "close", None)
                if close is not None:
                    close()

    def _plane(self, mask: np.ndarray, source: FrameSource) -> np.ndarray:
        """A mask frame as one uint8 plane at the input's size (white: in the region)."""
        plane = mask if mask.ndim == 2 else np.rint(mask.mean(axis=2)).astype(np.uint8)
        return resize_to(plane, (self.size[1], self.size[0]))

    def split(self, index: int, frame: np.ndarray) -> tuple[np.ndarray, FrameGuide | None]:
        """An input frame (at any size) into its RGB and the FrameGuide of frame `index`."""
        weights = self.schedule.weights(index) if self.schedule is not None else None
        rgb = np.ascontiguousarray(frame[..., :3])
        planes = [frame[..., 3 + k].astype(np.float32) / 255.0 for k in range(frame.shape[2] - 3)]
        masks = tuple(planes[: len(self.masks)]) if self.masks else None
        keep = planes[-1] if self.keep is not None else None
        return rgb, FrameGuide(weights, masks, keep)


def _mask_frames(source: FrameSource, start: int, count: int | None) -> Iterator[np.ndarray]:
    """A mask's frames from `start`, in lockstep: a single image stands for every frame."""
    if source.frame_count == 1:
        (only,) = list(source.frames(0, 1))
        return repeat(only)
    return source.frames(start, count)


def split_frame(
    source: FrameSource, index: int, frame: np.ndarray
) -> tuple[np.ndarray, FrameGuide | None]:
    """What the frame loops render: the RGB of a frame read from `source`, and its guide
    (None for a plain source)."""
    if isinstance(source, GuidedSource):
        return source.split(index, frame)
    return frame, None


def resize_frame(frame: np.ndarray, long_side: int) -> np.ndarray:
    """A frame, with any mask channels, at the render's size: the RGB resized as a plain frame
    is (bit for bit), the masks with the same resize on their own."""
    if frame.shape[2] == 3:
        return resize_long_side(frame, long_side)
    rgb = resize_long_side(np.ascontiguousarray(frame[..., :3]), long_side)
    masks = resize_to(np.ascontiguousarray(frame[..., 3:]), rgb.shape[:2])
    return np.dstack([rgb, masks.reshape(*rgb.shape[:2], -1)])


def guided_source(source: FrameSource, video: VideoConfig, indices: range) -> FrameSource:
    """The render's input with its schedule and masks, checked now (before any work): each
    mask has the input's aspect ratio (resized to its size) and one frame per input frame, or
    is a single image for all."""
    schedule = frame_schedule(video, source.fps)
    if schedule is None and not video.style_masks and video.keep_mask is None:
        return source
    masks = [open_mask(p, source, "--style-mask") for p in video.style_masks]
    keep = open_mask(video.keep_mask, source, "--keep-mask") if video.keep_mask else None
    return GuidedSource(source, masks, keep, schedule)


def open_mask(path: str, source: FrameSource, option: str) -> FrameSource:
    try:
        mask = open_source(path, source.fps)
    except InputError as exc:
        raise InputError(f"{option} {path}: {exc}") from exc
    w, h = mask.size
    if scaled_shape(h, w, max(source.size)) != (source.size[1], source.size[0]):
        raise InputError(
            f"{option} {path} is {w}x{h} px, the input {source.size[0]}x{source.size[1]}: a "
            "mask must have the input's aspect ratio (it is resized to the input's size)"
        )
    if mask.frame_count not in (1, source.frame_count):
        raise InputError(
            f"{option} {path} has {plural(mask.frame_count, 'frame')}, the input "
            f"{source.frame_count}: give one mask frame per input frame, or a single image "
            "for every frame"
        )
    return mask
