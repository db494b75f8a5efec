"""Frame writers: an encoded video file (via ffmpeg) or a directory of numbered images."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, runtime_checkable

import numpy as np

from nst_video.errors import FFmpegError, InputError, OptionError, OutputError
from nst_video.media.ffmpeg import ffmpeg_exe, file_url, probe, rate_text, relevant_error_line
from nst_video.media.files import (
    disk_full,
    fsync_directory,
    refuse_existing,
    require_regular,
    temporary_name,
)
from nst_video.media.images import write_image

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".webm")

_MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
_CRF_CODECS = ("libx264", "libx264rgb", "libx265", "libvpx", "libvpx-vp9", "libaom-av1")
_DIR_KWARGS = ("overwrite", "start_index", "pattern")
# The numbered frames a directory output gets; nothing else in that directory is ever touched.
OUTPUT_FRAME_NAME = "frame_{:06d}.png"
OUTPUT_FRAME = re.compile(r"^frame_\d{6}\.png$")


@runtime_checkable
class FrameWriter(Protocol):
    """Sink for HxWx3 uint8 RGB frames; use as a context manager."""

    def write(self, rgb: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def __enter__(self) -> FrameWriter: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _ContextMixin:
    """close() on success, abort() when the block raised."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def check_video_output(output: str | Path) -> None:
    """The one check of what an output path may be: a video extension, or a directory."""
    text = os.fspath(output)
    if not is_directory_output(text) and Path(text).suffix.lower() not in VIDEO_EXTENSIONS:
        raise OptionError(
            f"unsupported output {text!r}; use one of {', '.join(VIDEO_EXTENSIONS)}, "
            "or end it with '/' for numbered PNG frames"
        )


def is_directory_output(output: str | Path) -> bool:
    """A trailing '/' (or an existing directory) means numbered PNG frames."""
    text = os.fspath(output)
    return text.endswith(("/", "\\", os.sep)) or Path(text).is_dir()


def _padding(pix_fmt: str, width: int, height: int) -> tuple[int, int]:
    """Extra (columns, rows) so chroma-subsampled formats get the even sizes they require."""
    subsampled_w = "420" in pix_fmt or "422" in pix_fmt or pix_fmt in ("nv12", "nv21")
    subsampled_h = "420" in pix_fmt or pix_fmt in ("nv12", "nv21")
    return (width % 2 if subsampled_w else 0), (height % 2 if subsampled_h else 0)


def _check_frame(rgb: np.ndarray, size: tuple[int, int]) -> None:
    expected = (size[1], size[0], 3)
    if rgb.shape != expected or rgb.dtype != np.uint8:
        raise ValueError(f"expected a {expected} uint8 frame, got {rgb.dtype} {rgb.shape}")


class VideoWriter(_ContextMixin):
    """Encode frames with ffmpeg into a temp file that replaces ``path`` only on success.

    Odd sizes with a chroma-subsampled ``pix_fmt`` (yuv420p) are padded, not rescaled: the
    last column and/or row is repeated, so the encoded frame is 1 px wider and/or taller and
    the original picture is its top-left corner. yuv444p or rgb24 keep the exact size.

    ``codec=None`` means libx264, or libvpx-vp9 for .webm. Pass ``audio_duration`` (frames /
    fps) with ``audio_from``: the audio is cut with -t so that the video is never truncated.
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        fps: Fraction,
        *,
        codec: str | None = None,
        crf: int = 18,
        pix_fmt: str = "yuv420p",
        audio_from: str | Path | None = None,
        audio_start: float = 0.0,
        audio_duration: float | None = None,
        overwrite: bool = False,
        partial: Path | None = None,
        before_commit: Callable[[Path], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        check_video_output(self.path)
        refuse_existing(self.path, overwrite)
        _check_output_dir(self.path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = Fraction(fps)
        self.pad = _padding(pix_fmt, *self.size)
        # Unique per encode: two encodes of one output never write into the same file.
        self.tmp = Path(partial) if partial is not None else temporary_name(self.path, "partial")
        self._before_commit = before_commit
        codec = codec or ("libvpx-vp9" if self.suffix == ".webm" else "libx264")
        audio = _audio_args(audio_from, audio_start, audio_duration, self.suffix)
        # A file, not a pipe: a full stderr pipe nobody reads would block ffmpeg forever.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - lives with self
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            self._command(codec, crf, pix_fmt, audio),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    def _command(self, codec: str, crf: int, pix_fmt: str, audio: list[str]) -> list[str]:
        width, height = self.size[0] + self.pad[0], self.size[1] + self.pad[1]
        rate = rate_text(self.fps)
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", rate]
        cmd += ["-i", "pipe:0", *audio, "-map", "0:v:0"]
        cmd += ["-c:v", codec, "-pix_fmt", pix_fmt]
        if codec in _CRF_CODECS:
            cmd += ["-crf", str(crf)]
            # libvpx only honours crf as constant quality when the bitrate cap is lifted.
            cmd += ["-b:v", "0"] if codec.startswith("libvpx") else []
        if self.suffix in (".mp4", ".mov"):
            cmd += ["-movflags", "+faststart"]
        return [*cmd, "-f", _MUXERS[self.suffix], file_url(self.tmp)]

    def write(self, rgb: np.ndarray) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise OutputError(f"{self.path} is already closed; open a new writer")
        _check_frame(rgb, self.size)
        if any(self.pad):
            rgb = np.pad(rgb, ((0, self.pad[1]), (0, self.pad[0]), (0, 0)), mode="edge")
        try:
            self._proc.stdin.write(np.ascontiguousarray(rgb).tobytes())
        except (BrokenPipeError, ValueError, OSError):
            error = self._failure()
            self.abort()
            raise error from None

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        _close_stdin(proc)
        if proc.wait() != 0:
            error = self._failure()
            self.abort()
            raise error
        self._proc = None
        self._stderr.close()
        try:
            _fsync_file(self.tmp)  # ffmpeg does not: the rename must not outrun the data
            if self._before_commit is not None:
                self._before_commit(self.tmp)
            require_regular(self.path)  # again: the rename replaces whatever is there now
            os.replace(self.tmp, self.path)
            fsync_directory(self.path.parent)
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {self.path}: {exc.strerror}") from exc
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def __del__(self) -> None:
        # A writer dropped without close() must not leave ffmpeg waiting on stdin or a partial file.
        if getattr(self, "_proc", None) is not None:
            with contextlib.suppress(Exception):
                self.abort()

    def abort(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            _close_stdin(proc)
            proc.wait()
        if not self._stderr.closed:
            self._stderr.close()
        self.tmp.unlink(missing_ok=True)

    def _failure(self) -> OutputError | FFmpegError:
        """The error ffmpeg reported, after making sure it has exited."""
        if self._proc is not None:
            _close_stdin(self._proc)
            self._proc.wait()
        self._stderr.seek(0)
        line = relevant_error_line(self._stderr.read().decode("utf-8", errors="replace"))
        if "No space left" in line:
            return disk_full(self.path)
        return FFmpegError(f"ffmpeg could not write {self.path}: {line}")


def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
    # Closing a pipe whose reader died raises BrokenPipeError; ffmpeg's exit status says more.
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_output_dir(path: Path) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"output directory {directory} does not exist; create it first")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {directory} is not writable; choose another output")


def _audio_args(
    audio_from: str | Path | None, start: float, duration: float | None, suffix: str
) -> list[str]:
    """Input and encoding arguments for the audio track of ``audio_from`` (none if silent)."""
    if audio_from is None:
        return []
    try:
        has_audio = probe(audio_from, count_frames=False).has_audio
    except InputError:
        has_audio = False
    if not has_audio:
        return []
    args = ["-ss", f"{float(start):.6f}"]
    if duration is not None:
        args += ["-t", f"{float(duration):.6f}"]
    codec = "libopus" if suffix == ".webm" else "aac"
    return [*args, "-i", file_url(audio_from), "-map", "1:a:0", "-c:a", codec]


class ImageDirWriter(_ContextMixin):
    """Numbered PNG (or other image) frames in a directory, each written atomically.

    abort() keeps frames already written: each one is complete, and they allow resuming.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        start_index: int = 0,
        pattern: str = OUTPUT_FRAME_NAME,
        overwrite: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.index = start_index
        self.pattern = pattern
        self.overwrite = overwrite
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise OutputError(f"cannot create directory {self.directory}: {reason}") from exc

    def write(self, rgb: np.ndarray) -> None:
        target = self.directory / self.pattern.format(self.index)
        refuse_existing(target, self.overwrite)
        write_image(target, rgb)
        self.index += 1

    def close(self) -> None:
        """Nothing to finalize: every frame is already complete on disk."""

    def abort(self) -> None:
        """Nothing to undo: no partial frame files are ever left behind."""


def open_writer(
    output: str | Path, size: tuple[int, int], fps: Fraction, **kwargs: Any
) -> FrameWriter:
    """VideoWriter for a video extension, ImageDirWriter for a directory or a trailing '/'.

    Video-only keyword arguments (codec, audio...) are ignored for image directories.
    """
    text = os.fspath(output)
    if is_directory_output(text):
        return ImageDirWriter(text, **{k: v for k, v in kwargs.items() if k in _DIR_KWARGS})
    check_video_output(text)
    return VideoWriter(text, size, fps, **kwargs)


def check_encoder(
    output: str | Path, codec: str | None = None, crf: int = 18, pix_fmt: str = "yuv420p"
) -> None:
    """Encode three 16x16 frames to a temporary file with these settings, so a bad --codec, or
    one the container cannot hold, is an error in a second instead of after the render."""
    path = Path(output)
    with tempfile.TemporaryDirectory(prefix="nst-video-codec-") as folder:
        probe_file = Path(folder) / f"check{path.suffix.lower()}"
        frame = np.zeros((16, 16, 3), np.uint8)
        try:
            with VideoWriter(probe_file, (16, 16), Fraction(24), codec=codec, crf=crf,
                             pix_fmt=pix_fmt) as writer:  # fmt: skip
                for _ in range(3):
                    writer.write(frame)
        except FFmpegError as exc:
            reason = str(exc).replace(f"ffmpeg could not write {probe_file}: ", "")
            chosen = codec or ("libvpx-vp9" if path.suffix.lower() == ".webm" else "libx264")
            raise FFmpegError(
                f"cannot encode {path.name} with codec {chosen!r} (checked before rendering): "
                f"{reason}; choose another --codec or output extension"
            ) from None
