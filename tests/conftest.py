"""Shared fixtures: random VGG19 and VGG16 weights on disk (the real loading path) and tiny images.

No test may touch the network: torch.hub is pointed at a missing local file, and the default
model's fetch at an empty cache and a pip that fails at once, for every test (tests/test_weights.py
opts in to fake or real fetches).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from media_helpers import run_ffmpeg, write_frames
from PIL import Image

from nst_video.core.vgg import random_state_dict
from nst_video.core.weights import CACHE_ENV, PIP_ENV
from nst_video.models import WEIGHTS_ENV, WEIGHTS_URL_ENV

# What the default model's fetch runs in tests: a pip that fails at once with this reason.
NO_FETCH = "tests must not fetch weights: pass --weights or use a fixture"
FAILING_PIP = shlex.join([sys.executable, "-c", f"import sys; sys.exit({NO_FETCH!r})"])


# Fixtures that run nst-video in a subprocess (a reference render, a finished work directory,
# renders to kill, Ray workers): a test that uses one is `slow` however quick its own body is,
# so `make test-fast` leaves it out even when it carries no marker of its own.
SUBPROCESS_FIXTURES = frozenset({"reference", "finished", "spawn", "one_worker", "two_workers"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SUBPROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _fast_small_tensors() -> Iterator[None]:
    # Backward passes through random VGG weights at 32 px produce denormal floats that make the
    # CPU 5-10x slower; flushing them to zero keeps the suite fast and changes nothing visible.
    torch.set_flush_denormal(True)
    # 32 px tensors gain nothing from threads, and on a shared machine spinning worker threads
    # made each evaluation up to 50x slower. Engine honours OMP_NUM_THREADS (and so do the
    # subprocesses tests start) instead of taking every core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_weights_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A test that forgets its weights must fail fast on a local file, never reach the internet.
    monkeypatch.setenv(WEIGHTS_URL_ENV, "file:///nonexistent/nst-video-tests/vgg19-00000000.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home"))
    # The default model's fetch: an empty cache of the session's, and a pip that only fails.
    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.getbasetemp() / "nst-video-cache"))
    monkeypatch.setenv(PIP_ENV, FAILING_PIP)


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "vgg19-random.pth"
    torch.save(random_state_dict(0), path)
    return path


@pytest.fixture(scope="session")
def vgg16_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random VGG16 weights (a file for --model vgg16 and vgg16-caffe alike)."""
    path = tmp_path_factory.mktemp("weights") / "vgg16-random.pth"
    torch.save(random_state_dict(0, "vgg16"), path)
    return path


@pytest.fixture(scope="session")
def state_dict(weights_file: Path) -> Mapping[str, torch.Tensor]:
    return torch.load(weights_file, map_location="cpu", weights_only=True)


@pytest.fixture
def weights_env(monkeypatch: pytest.MonkeyPatch, weights_file: Path) -> Path:
    """NST_VIDEO_WEIGHTS points at the random weights file."""
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_file))
    return weights_file


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A uint8 RGB image with smooth gradients plus a little seeded noise (not constant)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    channels = [0.5 + 0.4 * np.sin(xs / (3 + c) + ys / (5 + 2 * c) + phase[c]) for c in range(3)]
    image = np.stack(channels, axis=2) + rng.normal(0, 0.05, size=(height, width, 3))
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def make_image() -> Callable[[int, int, int], np.ndarray]:
    return smooth_image


@pytest.fixture(scope="session")
def content_rgb() -> np.ndarray:
    return smooth_image(24, 32, seed=1)


@pytest.fixture(scope="session")
def style_rgb() -> np.ndarray:
    return smooth_image(40, 40, seed=2)


@pytest.fixture
def image_file(tmp_path: Path) -> Callable[..., Path]:
    """Writes a small test image and returns its path: image_file('a.png', seed=3)."""

    def write(name: str, seed: int = 0, size: tuple[int, int] = (24, 32)) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth_image(size[0], size[1], seed)).save(path)
        return path

    return write


# --- video fixtures (tests/test_render.py, test_cli_video.py, test_preview.py) ------------------


def moving_texture(count: int, width: int = 48, height: int = 32, step: int = 2) -> list:
    """A smooth random texture translating `step` px right per frame (flow is well defined)."""
    import cv2

    big_w = width + step * count + 16
    noise = np.random.default_rng(7).random((height + 16, big_w, 3)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 2.0)
    scaled = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    texture = np.round(scaled * 255).astype(np.uint8)
    # Window moves left over the texture, so the pattern moves right in the frame.
    left = step * count
    return [
        np.ascontiguousarray(texture[8 : 8 + height, left - step * i : left - step * i + width])
        for i in range(count)
    ]


@pytest.fixture(scope="session")
def make_moving_frames() -> Callable[..., list]:
    return moving_texture


@pytest.fixture(scope="session")
def write_sequence() -> Callable[..., Path]:
    return write_frames


@pytest.fixture(scope="session")
def video_with_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames of 48x32 test pattern at 12 fps (1 s) with a 1 s sine audio track."""
    path = tmp_path_factory.mktemp("clips") / "with audio.mp4"
    run_ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=48x32:rate=12",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", "1", "-frames:v", "12", "-c:v", "libx264", "-pix_fmt", "yuv444p",
        "-c:a", "aac", f"file:{path}",
    )  # fmt: skip
    return path
