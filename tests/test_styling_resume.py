"""A style schedule with a keep mask survives SIGKILL: killed mid-render and resumed, its frames
are byte-identical to an uninterrupted render's (each frame's targets are a function of its
index and its mask frame). Plus the CLI's one-line refusals of bad schedule and mask options."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_capturing
from clip_inputs import Inputs, make_inputs
from PIL import Image

from nst_video import cli
from nst_video.media import write_image

COUNT, WIDTH, HEIGHT = 8, 48, 32
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def inputs(
    tmp_path_factory: pytest.TempPathFactory, weights_file: Path, write_sequence: Callable
) -> Inputs:
    root = tmp_path_factory.mktemp("styling-resume")
    made = make_inputs(root, COUNT, (WIDTH, HEIGHT), weights_file, write_sequence)
    write_image(root / "b.png", np.full((40, 40, 3), (200, 30, 30), np.uint8))
    (root / "masks").mkdir()
    for index in range(COUNT):
        mask = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        mask[:, : 8 + 4 * index] = 255
        write_image(root / "masks" / f"m_{index:03d}.png", mask)
    return made


def args(inputs: Inputs, output: Path) -> list[str]:
    # 0:00.25 at 24 fps is frame 6; the crossfade takes frames 3-6. Offset 1 alone: a resume
    # reads the input (and masks) from the frame before the first missing one, not from 0.
    return [
        "video", str(inputs.sequence), "--style-at", f"0:{inputs.style}",
        "--style-at", f"0:00.25:{inputs.root / 'b.png'}", "--style-transition", "3",
        "--keep-mask", str(inputs.root / "masks"), "--size", "32", "--first-iterations", "6",
        "--iterations", "4", "--weights", str(inputs.weights), "--device", "cpu",
        "--temporal-offsets", "1", "-o", f"{output}/", "--quiet",
    ]  # fmt: skip


def env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != cli.DEBUG_ENV}, "OMP_NUM_THREADS": "1"}


def frames(work: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((work / "frames").glob("[0-9]*.png"))}


@pytest.mark.slow
def test_sigkill_mid_schedule_then_resume_gives_identical_frames(
    inputs: Inputs, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "nst_video"]
    ref = subprocess.run(
        [*command, *args(inputs, tmp_path / "ref")], env=env(), capture_output=True, text=True,
        timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert ref.returncode == 0, ref.stderr
    reference = frames(tmp_path / "ref.nst-work")
    assert len(reference) == COUNT
    work = tmp_path / "out.nst-work"
    proc = subprocess.Popen(
        [*command, *args(inputs, tmp_path / "out")], env=env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    while len(frames(work) if (work / "frames").is_dir() else {}) < 4:
        assert proc.poll() is None, "the render ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert 4 <= len(frames(work)) < COUNT
    done = subprocess.run(
        [*command, "resume", str(work), "--quiet"], env=env(), capture_output=True, text=True,
        timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = frames(work)
    assert sorted(got) == sorted(reference)
    assert [n for n in got if got[n] != reference[n]] == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--style-at", "x:{style}"],
            "--style-at 'x:{style}' is not valid; give FRAME:STYLE (120:starry.jpg) or "
            "MM:SS.S:STYLE (0:05.0:starry.jpg)",
        ),
        (
            ["--style-at", "0:{style}", "--style-at", "5:{b}", "--style-blend", "1,1"],
            "--style-blend cannot be combined with --style-at: the schedule sets each frame's "
            "blend",
        ),
        (
            ["-s", "{style}", "--style-mask", "{masks}", "--style-mask", "{masks}"],
            "2 --style-masks given for 1 style; give one mask per --style, in the same order",
        ),
        (
            ["-s", "{style}", "--style-transition", "4"],
            "--style-transition needs a schedule: give --style-at FRAME:STYLE",
        ),
        (
            ["--style-at", "9:{style}", "--style-at", "0:00.25:{b}"],
            "--style-at 0:00.25:{b} (frame 6) is not after --style-at 9:{style} (frame 9) at 24 "
            "fps; give keyframes in increasing time, one per frame",
        ),
    ],
)
def test_bad_schedule_and_mask_options_are_one_line(
    inputs: Inputs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    names = {"style": inputs.style, "b": inputs.root / "b.png", "masks": inputs.root / "masks"}
    given = [a.format(**names) for a in extra]
    code, _, err = run_capturing(
        capsys, "video", str(inputs.sequence), *given, "--weights", str(inputs.weights),
        "--size", "32", "-o", str(tmp_path / "out") + "/", "--device", "cpu",
    )  # fmt: skip
    assert (code, err.strip()) == (1, "nst-video: error: " + message.format(**names))
    assert not (tmp_path / "out.nst-work").exists()


def test_preview_shows_frames_across_the_schedule(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Frames 2 and 6 (keyframes 2:a and 6:b; also what --count 2 picks from 8 frames without a
    schedule): the sheet's tiles are style a's at frame 2 and style b's at frame 6."""
    b = inputs.root / "b.png"
    common = ["--count", "2", "--size", "32", "--iterations", "4", "--weights", str(inputs.weights),
              "--device", "cpu", "--quiet"]  # fmt: skip
    sheets = {}
    for name, styles in (
        ("a", ["-s", str(inputs.style)]),
        ("b", ["-s", str(b)]),
        ("s", ["--style-at", f"2:{inputs.style}", "--style-at", f"6:{b}"]),
    ):
        out = tmp_path / f"{name}.png"
        code, _, err = run_capturing(
            capsys, "preview", str(inputs.sequence), *styles, "-o", str(out), *common
        )
        assert code == 0, err
        sheets[name] = np.asarray(Image.open(out))
    a, b_sheet, s = sheets["a"], sheets["b"], sheets["s"]
    assert a.shape == s.shape and not np.array_equal(a, s) and not np.array_equal(b_sheet, s)
    columns = [np.array_equal(s[:, x], a[:, x]) or np.array_equal(s[:, x], b_sheet[:, x])
               for x in range(s.shape[1])]  # fmt: skip
    assert all(columns)
