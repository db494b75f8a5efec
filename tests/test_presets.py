"""Presets: --config FILE.toml, --save-config FILE.toml, --like WORKDIR, and the one-line
settings summary. The commands' work is replaced by a recorder: what is checked is the
Settings each command would run with."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_capturing, run_in_process

from nst_video.cli import commands
from nst_video.config import VIDEO, Settings, settings_from_flat
from nst_video.workdir.manifest import Job, Manifest
from nst_video.workdir.store import WorkDir


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The settings a command went on to render with (nothing is rendered)."""
    seen: dict[str, Any] = {}

    def image(contents: Any, styles: Any, output: Any, settings: Settings, *rest: Any) -> int:
        seen["settings"] = settings
        return 0

    def render(job: Job, *rest: Any, **options: Any) -> None:
        seen["settings"] = job.settings

    monkeypatch.setattr(commands, "_run_image", image)
    monkeypatch.setattr(commands, "_run_render", render)
    return seen


@pytest.fixture
def files(tmp_path: Path, write_sequence: Callable[..., Path], make_moving_frames: Any) -> Path:
    (tmp_path / "c.png").write_bytes(b"")
    (tmp_path / "s.png").write_bytes(b"")
    write_sequence(tmp_path / "clip", make_moving_frames(3))
    return tmp_path


def image_args(root: Path, *extra: str) -> list[str]:
    return ["image", str(root / "c.png"), "-s", str(root / "s.png"), "-o", str(root / "o.png"),
            *extra]  # fmt: skip


def video_args(root: Path, *extra: str) -> list[str]:
    return ["video", str(root / "clip"), "-s", str(root / "s.png"), "-o", str(root / "o.mp4"),
            *extra]  # fmt: skip


def toml(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_a_config_file_sets_options_and_flags_win(
    capsys: pytest.CaptureFixture[str], files: Path, ran: dict[str, Any]
) -> None:
    preset = toml(
        files / "look.toml",
        'style_weight = 5\nseed = 7\nstyle_layers = ["relu1_1", "relu2_1"]\n'
        'preserve_colors = true\npooling = "avg"\n',
    )
    args = image_args(files, "--config", preset, "--seed", "9", "--pooling", "max", "-q")
    assert run_in_process(capsys, *args) == (0, "")
    settings = ran["settings"]
    assert settings == settings_from_flat(
        style_weight=5.0,
        seed=9,  # the flag, not the file's 7
        style_layers=("relu1_1", "relu2_1"),
        preserve_colors=True,
        pooling="max",  # the flag, also where it gives the default value
    )


def _work_dir(path: Path, settings: Settings) -> Path:
    job = Job("in.mp4", ("s.png",), "o.mp4", None, None, settings)
    WorkDir(path).write_manifest(Manifest(job, {"settings": {}}, "0"))
    return path


def test_like_then_config_then_flags(
    capsys: pytest.CaptureFixture[str], files: Path, ran: dict[str, Any]
) -> None:
    earlier = settings_from_flat(
        command=VIDEO,
        style_weight=7,
        passes=2,
        first_iterations=9,
        temporal_offsets=(1, 2),
        size=64,
        audio=False,
    )
    work = _work_dir(files / "earlier.nst-work", earlier)
    preset = toml(files / "p.toml", "style_weight = 5.0\npasses = 4\n")
    args = video_args(files, "--like", str(work), "--passes", "3", "--config", preset, "-q")
    assert run_in_process(capsys, *args) == (0, "")
    assert ran["settings"] == settings_from_flat(earlier, command=VIDEO, style_weight=5.0, passes=3)


def test_like_a_directory_without_our_manifest_is_one_line(
    capsys: pytest.CaptureFixture[str], files: Path, ran: dict[str, Any]
) -> None:
    (files / "notes").mkdir()
    code, err = run_in_process(capsys, *video_args(files, "--like", str(files / "notes")))
    assert (code, err) == (
        1,
        f"nst-video: error: {files / 'notes'} is not a render work directory (no manifest.json)\n",
    )
    assert "settings" not in ran


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("style_weight = \n", " is not valid TOML: Invalid value (at line 1, column 16)"),
        ("seed = 1\nseed = 2\n", " is not valid TOML: Cannot overwrite a value (at line 2, "
         "column 9)"),
        ("style_wieght = 5\n", ": 'style_wieght' is not a setting of image; valid keys: model, "
         "content_layers, style_layers, style_layer_weights, style_loss, style_weight, "
         "content_weight, tv_weight, iterations, optimizer, history_size, tolerance, size, "
         "style_scale, "
         "style_blend, pooling, padding, margin, preserve_colors, init, seed, coarse_start, "
         "device, precision"),
        ("[loss]\nstyle_weight = 5\n", ": 'loss' is a table; valid keys: model, "),
        ('style_weight = "x"\n', ": style_weight must be a number, got 'x'"),
        ("passes = 2\n", ": 'passes' is not a setting of image"),
    ],
)  # fmt: skip
def test_a_bad_config_file_is_a_usage_error_naming_the_key(
    capsys: pytest.CaptureFixture[str], files: Path, ran: dict[str, Any], text: str, message: str
) -> None:
    preset = toml(files / "bad.toml", text)
    code, err = run_in_process(capsys, *image_args(files, "--config", preset))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"nst-video: error: Invalid value for '--config': {preset}{message}")
    assert err.endswith("; see nst-video image --help\n")
    assert "settings" not in ran


def test_a_value_out_of_range_in_the_file_is_refused_as_the_flag_is(
    capsys: pytest.CaptureFixture[str], files: Path, ran: dict[str, Any]
) -> None:
    preset = toml(files / "p.toml", "style_weight = -1\n")
    code, err = run_in_process(capsys, *image_args(files, "--config", preset))
    assert (code, err) == (1, "nst-video: error: style weight must be >= 0, got -1.0\n")


@pytest.mark.parametrize("command", ["image", "video"])
def test_save_config_then_config_gives_the_same_settings(
    capsys: pytest.CaptureFixture[str], files: Path, ran: dict[str, Any], command: str
) -> None:
    args = image_args if command == "image" else video_args
    saved = files / "saved.toml"
    extra = ["--style-weight", "0.1", "--style-blend", "1", "--content-layers", "relu3_1",
             "--tolerance", "1e-05", "--precision", "bf16", "--init", "noise", "-q"]  # fmt: skip
    if command == "video":
        extra = [*extra[:-3], "--init", "content", "--fps", "29.97", "--temporal-offsets",
                 "1,3", "--no-audio", "--frames", "2", "-q"]  # fmt: skip
    assert run_in_process(capsys, *args(files, *extra, "--save-config", str(saved))) == (0, "")
    first = ran.pop("settings")
    assert saved.read_text().startswith("# nst-video settings for `nst-video ")
    assert run_in_process(capsys, *args(files, "--config", str(saved), "-q")) == (0, "")
    assert ran["settings"] == first
    assert first != settings_from_flat(command=command)  # the flags did change something


def test_save_config_never_replaces_a_file_it_did_not_write(
    capsys: pytest.CaptureFixture[str], files: Path, ran: dict[str, Any]
) -> None:
    mine = files / "notes.toml"
    mine.write_text("my notes\n")
    code, err = run_in_process(capsys, *image_args(files, "--save-config", str(mine), "-q"))
    assert (code, err) == (
        1,
        f"nst-video: error: {mine} exists and is not a settings file nst-video wrote; pass "
        "--overwrite to replace it, or choose another --save-config\n",
    )
    assert mine.read_text() == "my notes\n" and "settings" not in ran
    # One it wrote is replaced freely; a foreign one with --overwrite.
    ours = files / "ours.toml"
    for args in (["--seed", "1"], ["--seed", "2"]):
        assert (
            run_in_process(capsys, *image_args(files, *args, "--save-config", str(ours), "-q"))[0]
            == 0
        )
    assert "seed = 2" in ours.read_text()
    args = image_args(files, "--save-config", str(mine), "--overwrite", "-q")
    assert run_in_process(capsys, *args) == (0, "")
    assert mine.read_text().startswith("# nst-video settings")


def test_save_config_never_writes_over_an_input(
    capsys: pytest.CaptureFixture[str], files: Path, ran: dict[str, Any]
) -> None:
    style = files / "s.png"
    preset = toml(files / "p.toml", "seed = 3\n")
    for target in (style, Path(preset)):
        args = image_args(
            files, "--config", preset, "--save-config", str(target), "--overwrite", "-q"
        )
        code, err = run_in_process(capsys, *args)
        assert code == 1 and "--save-config" in err and err.count("\n") == 1, err
    assert style.read_bytes() == b"" and Path(preset).read_text() == "seed = 3\n"


def test_each_command_prints_its_settings_in_one_line(
    capsys: pytest.CaptureFixture[str], files: Path, ran: dict[str, Any]
) -> None:
    """On stdout: an error on stderr stays one line."""
    args = video_args(files, "--style-weight", "5", "--seed", "4")
    assert run_capturing(capsys, *args) == (
        0,
        "settings: vgg19-caffe-q8 (max pooling, zero padding, margin 16); size: the input's (at "
        "most 512); seed 4; style 5, content 1, tv 10, temporal 500; lbfgs evaluations 150 first "
        "/ 30 later, coarse-to-fine from 1024 px, flow dis, init flow; device auto, precision "
        "auto\n",
        "",
    )
    code, out, _ = run_capturing(capsys, *image_args(files, "--size", "64", "--coarse-start", "0"))
    assert code == 0
    assert out == (
        "settings: vgg19-caffe-q8 (max pooling, zero padding, margin 16); size 64; seed 0; style "
        "2, content 1, tv 10; lbfgs evaluations 300, init content; device auto, precision auto\n"
    )
    assert run_capturing(capsys, *image_args(files, "--quiet")) == (0, "", "")


def test_the_saved_file_is_what_the_settings_are(
    capsys: pytest.CaptureFixture[str], files: Path, ran: dict[str, Any]
) -> None:
    saved = files / "saved.toml"
    args = video_args(files, "--temporal-offsets", "1,2", "--save-config", str(saved), "-q")
    assert run_in_process(capsys, *args) == (0, "")
    text = saved.read_text()
    assert "\ntemporal_offsets = [1, 2]\n" in text and "\nstyle_weight = 2.0\n" in text
    assert "\n# size: not set" in text  # a video's size: its input's; TOML has no null
    assert "\nfirst_iterations = 150\n" in text and "\n# Multi-pass\n" in text
    assert json.dumps("flow") in text
