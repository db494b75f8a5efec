"""`image --save-every N`: intermediate images at the right counts, the last equal to the
result, and nothing replaced without --overwrite (checked before any work)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_in_process

from nst_video.media import read_image, write_image

FAST = ["--size", "32", "--iterations", "30", "--device", "cpu", "--quiet"]


@pytest.fixture
def paths(
    tmp_path: Path, make_image: Callable[..., np.ndarray], weights_file: Path
) -> tuple[list[str], Path]:
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    write_image(content, make_image(32, 32, 1))
    write_image(style, make_image(32, 32, 2))
    out = tmp_path / "out.png"
    args = ["image", str(content), "-s", str(style), "-o", str(out), "--weights", str(weights_file)]
    return [*args, *FAST], out


@pytest.mark.slow
def test_save_every_writes_numbered_snapshots(
    capsys: pytest.CaptureFixture[str], paths: tuple[list[str], Path]
) -> None:
    args, out = paths
    code, err = run_in_process(capsys, *args, "--save-every", "10")
    assert code == 0, err
    names = sorted(p.name for p in out.parent.glob("out.iter*.png"))
    assert names == ["out.iter0010.png", "out.iter0020.png", "out.iter0030.png"]
    # The 30th evaluation's best iterate is the result (no color preservation here).
    np.testing.assert_array_equal(read_image(out.parent / "out.iter0030.png"), read_image(out))


@pytest.mark.slow
def test_save_every_refuses_an_existing_snapshot_before_any_work(
    capsys: pytest.CaptureFixture[str], paths: tuple[list[str], Path]
) -> None:
    args, out = paths
    mine = out.parent / "out.iter0020.png"
    mine.write_bytes(b"mine")
    code, err = run_in_process(capsys, *args, "--save-every", "10")
    assert code == 1
    assert err == f"nst-video: error: {mine} exists; pass --overwrite to replace it\n"
    assert mine.read_bytes() == b"mine"
    assert not out.exists() and not (out.parent / "out.iter0010.png").exists()
    code, err = run_in_process(capsys, *args, "--save-every", "10", "--overwrite")
    assert code == 0, err
    assert mine.read_bytes() != b"mine"


def test_save_every_must_be_positive(
    capsys: pytest.CaptureFixture[str], paths: tuple[list[str], Path]
) -> None:
    args, _ = paths
    code, err = run_in_process(capsys, *args, "--save-every", "-5")
    assert code == 1
    assert err == "nst-video: error: --save-every must be >= 1 (or 0 for never), got -5\n"


def test_snapshot_numbers_run_on_across_coarse_levels(tmp_path: Path) -> None:
    from nst_video.cli.snapshots import Snapshots
    from nst_video.config import ImageConfig, OptimConfig, Settings
    from nst_video.progress import Event, Iteration

    settings = Settings(optim=OptimConfig(iterations=20), image=ImageConfig(coarse_start=128))
    snaps = Snapshots(tmp_path / "o.png", 10, settings, False, [])
    forward = snaps.wrap(lambda _event: None)
    image = np.zeros((4, 4, 3), np.uint8)
    events: list[Event] = [  # the coarse level's 10th evaluation, then the fine level's
        Iteration(10, 20, 1.0, None, image, level=0, levels=2, side=16),
        Iteration(20, 20, 0.5, None, image, level=1, levels=2, side=32),
    ]
    for event in events:
        forward(event)
    assert [p.name for p in snaps.written] == ["o.iter0010.png", "o.iter0020.png"]
