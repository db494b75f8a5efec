"""Tiny synthetic clips for the frames tests, built with ffmpeg and the module's own writer.

Helpers are handed out as fixtures because another conftest.py may exist at tests/.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media_helpers import run_ffmpeg

from nst_video.media.writers import VideoWriter

NTSC_FILM = Fraction(24000, 1001)
WIDTH, HEIGHT, COUNT = 48, 32, 8  # keep in sync with test_sources_contract.py


def synthetic_frames(count: int = COUNT, width: int = WIDTH, height: int = HEIGHT) -> list:
    """Frame i has red = 10 + 20 i everywhere, plus x/y ramps so orientation is checkable."""
    ys, xs = np.mgrid[0:height, 0:width]
    frames = []
    for index in range(count):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:, :, 0] = 10 + 20 * index
        frame[:, :, 1] = (xs * 255) // max(width - 1, 1)
        frame[:, :, 2] = (ys * 255) // max(height - 1, 1)
        frames.append(frame)
    return frames


def encode(path: Path, frames: list, fps: Fraction = NTSC_FILM, **kwargs: object) -> Path:
    height, width = frames[0].shape[:2]
    with VideoWriter(path, (width, height), fps, **kwargs) as writer:  # type: ignore[arg-type]
        for frame in frames:
            writer.write(frame)
    return path


@pytest.fixture(scope="session")
def make_frames() -> Callable[..., list]:
    return synthetic_frames


@pytest.fixture(scope="session")
def encode_video() -> Callable[..., Path]:
    return encode


@pytest.fixture(scope="session")
def ffmpeg() -> Callable[..., None]:
    return run_ffmpeg


@pytest.fixture(scope="session")
def frames_data() -> list:
    return synthetic_frames()


@pytest.fixture(scope="session")
def lossless_video(tmp_path_factory: pytest.TempPathFactory, frames_data: list) -> Path:
    """ffv1 in planar RGB: decoding gives back the exact input frames."""
    path = tmp_path_factory.mktemp("video") / "clip.mkv"
    return encode(path, frames_data, codec="ffv1", pix_fmt="gbrp")


@pytest.fixture(scope="session")
def clip_with_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "with audio.mp4"
    run_ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=size=32x32:rate={NTSC_FILM}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", "1", "-frames:v", "24", "-c:v", "libx264", "-pix_fmt", "yuv420p",
        "-c:a", "aac", f"file:{path}",
    )  # fmt: skip
    return path
