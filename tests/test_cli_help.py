"""How --help presents the options: boxes by topic, allowed words as [a|b], -h as --help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import run_in_process
from typer.testing import CliRunner

from nst_video.cli import app

runner = CliRunner()

VIDEO_BOXES = [
    "Arguments",
    "Options",
    "Input/output",
    "Look",
    "Network",
    "Optimizer",
    "Video and temporal",
    "Multi-pass",
    "Parallel",
    "Encoding",
    "Device",
]


def help_text(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return result.stdout


def boxes(text: str) -> dict[str, list[str]]:
    """Each box's title and the long option names listed in it, in order."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        title = re.match(r"╭─ (.+?) ─", line)
        if title:
            current = found.setdefault(title.group(1), [])
        elif current is not None:
            current += re.findall(r"^│\s+\*?\s*(--[a-z-]+)", line)
    return found


def test_video_help_groups_its_options_in_boxes_in_order() -> None:
    found = boxes(help_text("video", "--help"))
    assert list(found) == VIDEO_BOXES
    assert found["Options"] == ["--help"]  # every other option has its topic
    assert found["Multi-pass"] == [
        "--passes",
        "--pass-blend",
        "--temporal-from-pass",
        "--pass-iterations",
    ]
    assert found["Parallel"] == ["--segment-warmup", "--workers", "--ray-address"]
    assert found["Device"] == ["--device", "--precision"]
    assert "--init" in found["Video and temporal"]  # video's --init: how a frame starts
    assert "--style" in found["Input/output"] and "--output" in found["Input/output"]


def test_image_help_puts_init_with_the_optimizer() -> None:
    found = boxes(help_text("image", "--help"))
    assert "--init" in found["Optimizer"]
    assert "Video and temporal" not in found and "Parallel" not in found


@pytest.mark.parametrize(
    "shown",
    ["[lbfgs|adam]", "[flow|content]", "[dis|farneback|none]", "[avg|max]",
     "[auto|cpu|cuda|mps]", "[auto|fp32|tf32|bf16]"],
)  # fmt: skip
def test_video_help_shows_the_allowed_words(shown: str) -> None:
    assert shown in help_text("video", "--help")


def test_image_init_also_takes_a_file_so_shows_no_word_list() -> None:
    text = help_text("image", "--help")
    line = next(line for line in text.splitlines() if "--init" in line)
    assert "<str>" in line and "[content" not in line


@pytest.mark.parametrize("command", [[], ["image"], ["video"], ["resume"], ["status"], ["preview"]])
def test_h_is_help(command: list[str]) -> None:
    assert help_text(*command, "-h") == help_text(*command, "--help")


def test_an_unknown_optimizer_is_still_refused_by_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The word list is display only: a bad value gets the usual one-line error, exit 1."""
    style = tmp_path / "s.png"
    style.write_bytes(b"")
    args = ["image", str(style), "-s", str(style), "-o", str(tmp_path / "o.png")]
    code, err = run_in_process(capsys, *args, "--optimizer", "sgd")
    assert (code, err) == (1, "nst-video: error: unknown optimizer 'sgd'; valid: lbfgs, adam\n")
