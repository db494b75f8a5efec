"""The small moving clip that the resume and multi-pass tests render, written once per module:
a lossless video, its decoded frames as an image sequence, a style image and the weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst_video.media import VideoWriter, open_source


@dataclass(frozen=True)
class Inputs:
    root: Path
    clip: Path  # lossless ffv1 .mkv
    sequence: Path  # directory of PNGs with the clip's decoded frames
    style: Path
    weights: Path


def moving_pattern(index: int, width: int, height: int) -> np.ndarray:
    """A textured pattern that drifts 2 px right and 1 px up per frame (real flow to follow)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    x, y = xs - 2 * index, ys + index
    red = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    green = 128 + 100 * np.cos((x + y) / 4.0)
    blue = (x * 7 + y * 13) % 256
    return np.clip(np.stack([red, green, blue], axis=2), 0, 255).astype(np.uint8)


def make_inputs(
    root: Path,
    count: int,
    size: tuple[int, int],
    weights: Path,
    write_sequence: Callable[..., Path],
) -> Inputs:
    """`count` frames of `size` (width, height) under `root`, as a clip and a sequence."""
    clip = root / "clip.mkv"
    with VideoWriter(clip, size, Fraction(24), codec="ffv1", pix_fmt="gbrp") as w:
        for index in range(count):
            w.write(moving_pattern(index, *size))
    sequence = write_sequence(root / "sequence", list(open_source(str(clip)).frames()))
    style = root / "style.png"
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(style)
    return Inputs(root, clip, sequence, style, weights)


def inputs_fixture(name: str, count: int, size: tuple[int, int]) -> Callable[..., Inputs]:
    """A module-scoped `inputs` fixture: make_inputs in a folder named after `name`.
    In a test module: `inputs = inputs_fixture("resume", COUNT, (WIDTH, HEIGHT))`."""

    @pytest.fixture(scope="module")
    def inputs(
        tmp_path_factory: pytest.TempPathFactory,
        weights_file: Path,
        write_sequence: Callable[..., Path],
    ) -> Inputs:
        root = tmp_path_factory.mktemp(name)
        return make_inputs(root, count, size, weights_file, write_sequence)

    return inputs
