"""Frame sources: a video file or a sequence of images, streamed as HxWx3 uint8 RGB frames."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import tempfile
from collections.abc import Generator, Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

import numpy as np

from nst_video.config import parse_fps as parse_fps  # --fps: a settings value, parsed there
from nst_video.errors import FFmpegError, InputError, OptionError
from nst_video.media.ffmpeg import (
    cfr_filter,
    ffmpeg_exe,
    file_url,
    probe,
    relevant_error_line,
)
from nst_video.media.images import IMAGE_EXTENSIONS, image_size, read_image

DEFAULT_SEQUENCE_FPS = Fraction(24)
_PRINTF_RE = re.compile(r"%0?(\d*)d")
_GLOB_CHARS = ("*", "?", "[")


@runtime_checkable
class FrameSource(Protocol):
    """Anything that yields the frames of a clip; see VideoSource and ImageSequenceSource."""

    path: str
    size: tuple[int, int]
    fps: Fraction
    frame_count: int
    has_audio: bool
    files: list[Path]  # what it reads: the video file, or every image of a sequence in order
    warning: str | None  # one line for the user about the input (numbering gaps), or None

    # A generator: close() on it stops reading early (a decoder subprocess ends at once).
    def frames(
        self, start: int = 0, count: int | None = None
    ) -> Generator[np.ndarray, None, None]: ...

    def __iter__(self) -> Iterator[np.ndarray]: ...


def _check_range(start: int, count: int | None) -> None:
    if start < 0:
        raise OptionError(f"start frame must be 0 or more, got {start}")
    if count is not None and count < 0:
        raise OptionError(f"frame count must be 0 or more, got {count}")


def _stop(start: int, count: int | None, total: int) -> int:
    return total if count is None else min(total, start + count)


class VideoSource:
    """A video file decoded by ffmpeg (autorotated, so frames and ``size`` are upright).

    ``frames(start, ...)`` decodes from the beginning and drops frames before ``start`` inside
    ffmpeg (select filter on the frame number): exact for any file, including variable frame
    rate ones, at the cost of decoding the skipped prefix.
    """

    def __init__(self, path: str | Path, fps: Fraction | None = None) -> None:
        info = probe(path, count_frames=True)
        self.path = str(path)
        self.size = (info.width, info.height)
        self.native_fps = info.fps
        self.fps = fps if fps is not None else info.fps
        self.frame_count = info.frame_count or 0
        self.has_audio = info.has_audio
        self.rotation = info.rotation
        self.duration = info.duration
        self.files = [Path(self.path)]
        self.warning: str | None = None

    def __repr__(self) -> str:
        return f"VideoSource({self.path!r}, size={self.size}, frames={self.frame_count})"

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames()

    def frames(self, start: int = 0, count: int | None = None) -> Generator[np.ndarray, None, None]:
        _check_range(start, count)
        stop = _stop(start, count, self.frame_count)
        if start >= stop:
            return (frame for frame in ())  # a generator too, as the contract says
        return self._decode(start, stop - start)

    def _command(self, start: int, count: int) -> list[str]:
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
        # 0:V: the first video stream that is not a still picture (cover art).
        cmd += ["-i", file_url(self.path), "-map", "0:V:0", "-fps_mode", "passthrough"]
        # Constant-rate frames first, so frame numbers match probe()'s count and the timeline.
        video_filter = cfr_filter(self.native_fps)
        if start:
            video_filter += rf",select=gte(n\,{start})"
        cmd += ["-vf", video_filter]
        cmd += ["-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        return cmd

    def _decode(self, start: int, count: int) -> Generator[np.ndarray, None, None]:
        width, height = self.size
        frame_bytes = width * height * 3
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(
                self._command(start, count),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
            try:
                yield from _read_frames(proc, frame_bytes, (height, width), count)
                self._check_exit(proc, errors)
            finally:
                _stop_process(proc)

    def _check_exit(self, proc: subprocess.Popen[bytes], errors: IO[bytes]) -> None:
        if proc.wait() == 0:
            return
        errors.seek(0)
        text = errors.read().decode("utf-8", errors="replace")
        raise FFmpegError(f"decoding {self.path} failed: {relevant_error_line(text)}")


def _read_frames(
    proc: subprocess.Popen[bytes], frame_bytes: int, shape: tuple[int, int], count: int
) -> Iterator[np.ndarray]:
    assert proc.stdout is not None
    for _ in range(count):
        buffer = bytearray(frame_bytes)
        if proc.stdout.readinto(buffer) != frame_bytes:
            return
        yield np.frombuffer(buffer, dtype=np.uint8).reshape(shape[0], shape[1], 3)


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Kill ffmpeg if the consumer stopped early, and always reap it (no zombies)."""
    if proc.poll() is None:
        proc.kill()
    if proc.stdout is not None:
        proc.stdout.close()
    proc.wait()


class ImageSequenceSource:
    """Numbered images read one at a time; every image must have the first image's size."""

    def __init__(self, spec: str | Path, files: list[Path], fps: Fraction | None = None) -> None:
        if not files:
            raise InputError(f"no images found for {spec}")
        self.path = str(spec)
        self.files = files
        first = read_image(files[0])
        self.size = (first.shape[1], first.shape[0])
        self.fps = fps if fps is not None else DEFAULT_SEQUENCE_FPS
        self.frame_count = len(files)
        self.has_audio = False
        self._check_sizes()
        # One line for the caller to show (this layer never prints); None when numbering is whole.
        self.warning = numbering_gaps(self.path, files)

    def _check_sizes(self) -> None:
        """Every image's size from its header (cheap), so an odd frame is an error now, not
        hours into a render when it is reached."""
        for path in self.files[1:]:
            self._check_size(path, image_size(path))

    def _check_size(self, path: Path, size: tuple[int, int]) -> None:
        if size != self.size:
            raise InputError(
                f"{path} is {size[0]}x{size[1]} but {self.files[0]} is "
                f"{self.size[0]}x{self.size[1]}; all frames must have the same size"
            )

    def __repr__(self) -> str:
        return f"ImageSequenceSource({self.path!r}, size={self.size}, frames={self.frame_count})"

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames()

    def frames(self, start: int = 0, count: int | None = None) -> Generator[np.ndarray, None, None]:
        _check_range(start, count)
        stop = _stop(start, count, self.frame_count)
        return (self._read(index) for index in range(start, stop))

    def _read(self, index: int) -> np.ndarray:
        frame = read_image(self.files[index])
        self._check_size(self.files[index], (frame.shape[1], frame.shape[0]))
        return frame


def natural_key(name: str) -> list[str | int]:
    """Sort key that orders 'frame2' before 'frame10', ignoring case."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name.lower())]


def _is_image(path: Path) -> bool:
    # Dot-files are skipped: write_image's partial files start with '.'.
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_directory(directory: Path) -> list[Path]:
    files = [p for p in directory.iterdir() if p.is_file() and _is_image(p)]
    if not files:
        raise InputError(f"no images found in {directory}; expected {' '.join(IMAGE_EXTENSIONS)}")
    return sorted(files, key=lambda p: (natural_key(p.name), p.name))


def list_glob(pattern: str) -> list[Path]:
    files = [Path(p) for p in glob.glob(pattern) if os.path.isfile(p) and _is_image(Path(p))]
    if not files:
        raise InputError(f"no images found for {pattern}")
    return sorted(files, key=lambda p: (natural_key(str(p)), str(p)))


def list_printf(pattern: str) -> list[Path]:
    """Every file a 'frame_%05d.png' pattern matches, in numeric order (gaps allowed: the
    caller warns about them, see numbering_gaps)."""
    path = Path(pattern)
    match = _PRINTF_RE.search(path.name)
    if match is None:
        raise InputError(f"the %d of {pattern} must be in the file name, not a directory")
    width = int(match.group(1) or 0)
    before, after = path.name[: match.start()], path.name[match.end() :]
    name_re = re.compile(re.escape(before) + r"(\d+)" + re.escape(after))
    directory = path.parent if str(path.parent) else Path(".")
    numbered = []
    if directory.is_dir():
        for candidate in directory.iterdir():
            found = name_re.fullmatch(candidate.name)
            # Exactly what printf gives for that number: frame_%05d matches 00012, not 12.
            exact = found and f"{int(found.group(1)):0{width}d}" == found.group(1)
            if exact and candidate.is_file() and _is_image(candidate):
                numbered.append((int(found.group(1)), candidate))
    if not numbered:
        raise InputError(f"no images found for {pattern}")
    return [file for _, file in sorted(numbered)]


def numbering_gaps(spec: str, files: list[Path]) -> str | None:
    """One line naming the missing numbers when the files' last numbers skip some, or None."""
    numbers = []
    for file in files:
        digits = re.findall(r"\d+", file.stem)
        if not digits:
            return None
        numbers.append(int(digits[-1]))
    missing = [(a + 1, b - 1) for a, b in zip(numbers, numbers[1:], strict=False) if b > a + 1]
    if not missing:
        return None
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in missing[:5])
    more = f" and {len(missing) - 5} more gaps" if len(missing) > 5 else ""
    return (
        f"{spec}: numbering skips {shown}{more}; rendering the {len(files)} files found "
        "in numeric order"
    )


def open_source(spec: str | Path, fps: Fraction | None = None) -> FrameSource:
    """Open a video file, an image directory, a glob or a printf pattern ('f_%04d.png').

    A single image file is a one-frame sequence. ``fps`` relabels the rate without dropping
    or duplicating frames.
    """
    text = os.fspath(spec)
    path = Path(text)
    if path.is_dir():
        return ImageSequenceSource(text, list_directory(path), fps)
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageSequenceSource(text, [path], fps)
        return VideoSource(text, fps)
    if _PRINTF_RE.search(text):
        return ImageSequenceSource(text, list_printf(text), fps)
    if any(char in text for char in _GLOB_CHARS):
        return ImageSequenceSource(text, list_glob(text), fps)
    raise InputError(f"input not found: {text}")
