"""Locate and run ffmpeg, turn its stderr into one-line errors, and probe media files.

There is no ffprobe next to imageio-ffmpeg's binary, so probing parses the human-readable
stream dump that ``ffmpeg -i FILE`` writes to stderr.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from nst_video.config import exact_rate
from nst_video.errors import FFmpegError, InputError

_PREFIX_RE = re.compile(r"^(\[[^\]]*@ ?0x[0-9a-fA-F]+\]\s*)+")
# Lines that only say "something failed" without saying what; the specific cause comes earlier.
_GENERIC_RE = re.compile(
    r"^(Error opening (input|output) files?[ .:]|Error opening (input|output) file\b|"
    r"Error selecting an encoder|Conversion failed|At least one output file|"
    r"Error while (opening|filtering|processing)|Error closing|Nothing was written|"
    r"Terminating thread|Task finished with error)",
    re.IGNORECASE,
)
_NOISE_RE = re.compile(r"misdetection possible|deprecated|Last message repeated|^frame=|^\s*$")
_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_ROTATION_RE = re.compile(r"display ?matrix:\s*rotation of\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_ROTATE_TAG_RE = re.compile(r"^\s*rotate\s*:\s*(-?\d+)", re.MULTILINE)
_FRAME_RE = re.compile(r"frame=\s*(\d+)")
_ATTACHED_PIC = "(attached pic)"
_STREAM_RE = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio|Subtitle|Data|Attachment): (.*)$")


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: the one on PATH if any (usually newer), else imageio-ffmpeg's."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        raise FFmpegError("ffmpeg not found; install ffmpeg or the imageio-ffmpeg package") from exc


def file_url(path: str | Path) -> str:
    """ffmpeg argument for a local path that cannot be mistaken for an option or a protocol."""
    return "file:" + os.path.abspath(os.fspath(path))


def relevant_error_line(stderr: str) -> str:
    """The stderr line that best explains a failure, without ffmpeg's '[ctx @ 0x..]' prefixes."""
    lines = [_PREFIX_RE.sub("", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line and not _NOISE_RE.search(line)]
    for line in lines:
        if not _GENERIC_RE.search(line):
            return line
    return lines[-1] if lines else "ffmpeg failed without an error message"


def run_ffmpeg(args: list[str]) -> str:
    """Run ffmpeg to completion with ``args`` (no shell); return stderr, raise FFmpegError."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    stderr = proc.stderr.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise FFmpegError(relevant_error_line(stderr))
    return stderr


@dataclass(frozen=True)
class ProbeInfo:
    """What ffmpeg says about a file; width/height are upright (rotation already applied)."""

    width: int
    height: int
    fps: Fraction
    rotation: int
    duration: float | None
    has_audio: bool
    frame_count: int | None


def probe(path: str | Path, *, count_frames: bool = True) -> ProbeInfo:
    """Describe ``path``; with ``count_frames`` decode the first video stream to count frames.

    Frames are counted at the constant rate the stream declares (as `cfr_filter` decodes them):
    AVI and other containers store repeated frames as empty packets, which a pass-through
    decode would drop, shortening the clip (tree.avi: 68 decoded frames for 444 displayed).
    """
    header = _ffmpeg_stderr(path, [])
    info = _parse_probe(path, header, False)
    if not count_frames:
        return info
    counting = ["-map", "0:V:0", "-vf", cfr_filter(info.fps), "-fps_mode", "passthrough",
                "-f", "null", "-"]  # fmt: skip
    return _parse_probe(path, _ffmpeg_stderr(path, counting, must_succeed=True), True)


def rate_text(fps: Fraction) -> str:
    """'24000/1001': a frame rate exactly, as ffmpeg and the manifest take it."""
    return f"{fps.numerator}/{fps.denominator}"


def cfr_filter(fps: Fraction) -> str:
    """Filter that yields exactly one frame per 1/fps interval (repeats held frames)."""
    return f"fps={rate_text(fps)}"


def _ffmpeg_stderr(path: str | Path, args: list[str], must_succeed: bool = False) -> str:
    if not os.path.exists(path):
        raise InputError(f"input not found: {path}")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-i", file_url(path), *args]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    stderr = proc.stderr.decode("utf-8", errors="replace")
    if "Input #0" not in stderr or (must_succeed and proc.returncode != 0):
        raise InputError(f"cannot read {path}: {relevant_error_line(stderr)}")
    return stderr


def _parse_probe(path: str | Path, stderr: str, count_frames: bool) -> ProbeInfo:
    input_part, _, output_part = stderr.partition("Output #0")
    video = _first_stream(input_part, "Video")
    if video is None and _ATTACHED_PIC in input_part:
        raise InputError(
            f"{path} has no video stream, only a still picture (cover art); give a video file "
            "or an image directory"
        )
    if video is None:
        raise InputError(f"{path} has no video stream; give a video file or an image directory")
    fields, block = video
    size = _size_of(fields)
    if size is None:
        raise InputError(f"cannot read {path}: ffmpeg reports no frame size")
    rotation = _rotation(block)
    width, height = size if rotation % 180 == 0 else (size[1], size[0])
    out_stream = _first_stream(output_part, "Video")
    if out_stream is not None:
        # The decoder's output size is authoritative: it is what autorotated frames will have.
        width, height = _size_of(out_stream[0]) or (width, height)
    frames = _FRAME_RE.findall(output_part) if count_frames else []
    return ProbeInfo(
        width=width,
        height=height,
        fps=_fps_of(fields) or Fraction(25),
        rotation=rotation,
        duration=_duration(input_part),
        has_audio=_first_stream(input_part, "Audio") is not None,
        frame_count=int(frames[-1]) if frames else None,
    )


def _first_stream(text: str, kind: str) -> tuple[list[str], str] | None:
    """Comma fields of the first ``kind`` stream line (not cover art), and the indented block
    that follows it."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = _STREAM_RE.match(line)
        # Cover art of an audio file is a one-frame "video" stream at 90k tbr: not a clip.
        if match and match.group(1) == kind and _ATTACHED_PIC not in line:
            block = []
            for following in lines[i + 1 :]:
                if _STREAM_RE.match(following) or not following.startswith("    "):
                    break
                block.append(following)
            return _split_fields(match.group(2)), "\n".join(block)
    return None


def _split_fields(description: str) -> list[str]:
    # Parenthesised details such as 'yuv420p(tv, bt709)' contain commas of their own.
    previous = None
    while previous != description:
        previous, description = description, re.sub(r"\([^()]*\)", "", description)
    return [field.strip() for field in description.split(",")]


def _size_of(fields: list[str]) -> tuple[int, int] | None:
    for field in fields:
        match = re.match(r"^(\d+)x(\d+)\b", field)
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def _fps_of(fields: list[str]) -> Fraction | None:
    for unit in ("fps", "tbr"):
        for field in fields:
            match = re.match(rf"^(\d+(?:\.\d+)?)(k?) {unit}$", field)
            if match:
                rate = exact_rate(match.group(1))
                if rate is not None:
                    return rate * 1000 if match.group(2) else rate
    return None


def _rotation(block: str) -> int:
    match = _ROTATION_RE.search(block) or _ROTATE_TAG_RE.search(block)
    return round(float(match.group(1))) % 360 if match else 0


def _duration(text: str) -> float | None:
    match = _DURATION_RE.search(text)
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
