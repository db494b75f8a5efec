"""Building test inputs, shared by tests/conftest.py and tests/media/: ffmpeg calls and image
sequences."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from nst_video.media import write_image
from nst_video.media.ffmpeg import ffmpeg_exe


def run_ffmpeg(*args: str) -> None:
    """ffmpeg with `args` (quiet, overwriting), for building test inputs; raises on failure."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, capture_output=True)


def write_frames(directory: Path, frames: list[np.ndarray], name: str = "f{:03d}.png") -> Path:
    """`frames` as f000.png, f001.png, ... (or `name` formatted with the index) in `directory`
    (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        write_image(directory / name.format(index), frame)
    return directory
