"""`nst-video video` end to end on tiny clips: outputs, audio, ranges, reports and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_in_process

from nst_video.media import probe, read_image, write_image

# One loss evaluation per frame: these tests check plumbing, not pictures.
FAST = ["--first-iterations", "2", "--iterations", "1", "--quiet", "--device", "cpu"]
FRAMES = 6


@pytest.fixture
def style(tmp_path: Path, make_image: Callable[..., np.ndarray]) -> Path:
    path = tmp_path / "style.png"
    write_image(path, make_image(40, 40, 3))
    return path


@pytest.fixture
def sequence(tmp_path: Path, make_moving_frames: Callable[..., list]) -> Path:
    """Directory of FRAMES numbered PNGs, 48x32."""
    directory = tmp_path / "seq"
    directory.mkdir()
    for index, frame in enumerate(make_moving_frames(FRAMES, 48, 32)):
        write_image(directory / f"img_{index:03d}.png", frame)
    return directory


@pytest.fixture
def video_args(style: Path, weights_file: Path) -> Callable[..., list[str]]:
    def build(input: str | Path, output: str | Path, *extra: str) -> list[str]:
        return ["video", str(input), "--style", str(style), "-o", str(output),
                "--weights", str(weights_file), *FAST, *extra]  # fmt: skip

    return build


@pytest.mark.slow
def test_mp4_output_has_all_frames_the_input_rate_and_its_audio(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    video_with_audio: Path,
    video_args: Callable[..., list[str]],
) -> None:
    out = tmp_path / "out.mp4"
    code, err = run_in_process(capsys, *video_args(video_with_audio, out))
    assert code == 0, err
    info = probe(out)
    assert info.frame_count == 12
    assert info.fps == Fraction(12)
    assert (info.width, info.height) == (48, 32)
    assert info.has_audio


@pytest.mark.slow
def test_no_audio_drops_the_track(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    video_with_audio: Path,
    video_args: Callable[..., list[str]],
) -> None:
    out = tmp_path / "silent.mp4"
    code, err = run_in_process(
        capsys, *video_args(video_with_audio, out, "--frames", "3", "--no-audio")
    )
    assert code == 0, err
    info = probe(out)
    assert info.frame_count == 3
    assert not info.has_audio


@pytest.mark.slow
def test_start_and_frames_render_that_range_and_cut_the_audio_to_it(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    video_with_audio: Path,
    video_args: Callable[..., list[str]],
) -> None:
    out, report = tmp_path / "part.mp4", tmp_path / "part.jsonl"
    extra = ("--start", "3", "--frames", "4", "--report", str(report))
    code, err = run_in_process(capsys, *video_args(video_with_audio, out, *extra))
    assert code == 0, err
    info = probe(out)
    assert info.frame_count == 4
    assert info.has_audio
    # The source's audio lasts 1 s; only the rendered 4 / 12 s of it may remain.
    assert info.duration is not None and abs(info.duration - 4 / 12) < 0.08
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [row["frame"] for row in rows] == [3, 4, 5, 6]


def test_directory_output_gets_numbered_pngs(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    video_args: Callable[..., list[str]],
) -> None:
    out = tmp_path / "out"
    code, err = run_in_process(capsys, *video_args(sequence, f"{out}/", "--start", "2"))
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(2, FRAMES)]
    assert read_image(out / names[0]).shape == (32, 48, 3)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["directory", "glob", "printf"])
def test_image_sequence_inputs_take_fps(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    video_args: Callable[..., list[str]],
    kind: str,
) -> None:
    spec = {
        "directory": str(sequence),
        "glob": str(sequence / "img_*.png"),
        "printf": str(sequence / "img_%03d.png"),
    }[kind]
    out = tmp_path / "seq.mp4"
    code, err = run_in_process(capsys, *video_args(spec, out, "--fps", "10"))
    assert code == 0, err
    info = probe(out)
    assert info.frame_count == FRAMES
    assert info.fps == Fraction(10)


def test_report_has_one_object_per_frame(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    video_args: Callable[..., list[str]],
) -> None:
    report = tmp_path / "report.jsonl"
    code, err = run_in_process(
        capsys, *video_args(sequence, f"{tmp_path}/out/", "--frames", "3", "--report", str(report))
    )
    assert code == 0, err
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(rows) == 3
    required = {"frame", "init", "iterations", "seconds", "content", "style", "temporal", "tv"}
    for row in rows:
        assert required <= set(row)
    assert [row["frame"] for row in rows] == [0, 1, 2]
    assert [row["init"] for row in rows] == ["content", "warped", "warped"]
    assert [row["iterations"] for row in rows] == [2, 1, 1]
    assert rows[0]["temporal"] is None
    assert all(isinstance(row["temporal"], float) for row in rows[1:])
    assert all(row["seconds"] >= 0 and row["style"] > 0 for row in rows)


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing input", ["input not found", "nope.mp4"]),
        ("bad extension", [".mp4", ".mov", ".mkv", ".webm", "'/'"]),
        ("bad fps", ["invalid frame rate", "'fast'"]),
        ("bad flow", ["'lucas'", "dis, farneback, none"]),
        ("start past end", ["--start 99", "past the clip's last frame"]),
    ],
)
def test_bad_inputs_exit_1_with_one_error_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    video_args: Callable[..., list[str]],
    case: str,
    fragments: list[str],
) -> None:
    out: str | Path = tmp_path / "out.mp4"
    source: str | Path = sequence
    extra: list[str] = []
    if case == "missing input":
        source = tmp_path / "nope.mp4"
    elif case == "bad extension":
        out = tmp_path / "out.avi"
    elif case == "bad fps":
        extra = ["--fps", "fast"]
    elif case == "bad flow":
        extra = ["--flow", "lucas"]
    else:
        extra = ["--start", "99"]
    code, err = run_in_process(capsys, *video_args(source, out, *extra))
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nst-video: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    # Refused before any frame was rendered.
    assert not list(tmp_path.glob("*.nst-work/frames/*.png"))
    assert not Path(out).exists()


@pytest.mark.slow
def test_console_script_prints_one_line_and_exits_1(tmp_path: Path, style: Path) -> None:
    cmd = [sys.executable, "-m", "nst_video", "video", str(tmp_path / "missing.mp4"),
           "--style", str(style), "-o", str(tmp_path / "out.mp4")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"nst-video: error: input not found: {cmd[4]}"]


# --- bad paths and sizes: one line before any work (issue 11) --------------------------------


@pytest.mark.parametrize("case", ["missing style", "missing weights", "weights dir", "env"])
def test_bad_style_or_weights_path_is_one_line_before_any_work(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sequence: Path,
    style: Path,
    case: str,
) -> None:
    out = tmp_path / "out.mp4"
    styles, weights = [str(style)], ["--weights", str(tmp_path / "nope.pth")]
    expected = f"weights file not found: {tmp_path / 'nope.pth'}"
    if case == "missing style":
        styles = [str(style), str(tmp_path / "gone.png")]
        weights, expected = [], f"style image not found: {tmp_path / 'gone.png'}"
    elif case == "weights dir":
        weights, expected = (
            ["--weights", str(tmp_path)],
            (f"weights file {tmp_path} is a directory; give the file itself"),
        )
    elif case == "env":
        monkeypatch.setenv("NST_VIDEO_WEIGHTS", "/nonexistent")
        weights, expected = [], "weights file not found: /nonexistent (from NST_VIDEO_WEIGHTS)"
    style_args = [arg for s in styles for arg in ("--style", s)]
    args = ["video", str(sequence), *style_args, "-o", str(out), *weights, *FAST]
    code, err = run_in_process(capsys, *args)
    assert (code, err.splitlines()) == (1, [f"nst-video: error: {expected}"])
    assert not (tmp_path / "out.mp4.nst-work").exists()


def test_resume_with_its_style_moved_away_is_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    style: Path,
    video_args: Callable[..., list[str]],
) -> None:
    out = tmp_path / "out.mp4"
    code, err = run_in_process(capsys, *video_args(sequence, out, "--frames", "2"))
    assert code == 0, err
    style.rename(tmp_path / "elsewhere.png")
    code, err = run_in_process(capsys, "resume", str(tmp_path / "out.mp4.nst-work"), "--quiet")
    assert (code, err.splitlines()) == (1, [f"nst-video: error: style image not found: {style}"])


def test_frames_too_small_for_the_network_are_refused_with_the_minimum(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    make_image: Callable[..., np.ndarray],
    video_args: Callable[..., list[str]],
) -> None:
    narrow = tmp_path / "narrow"
    narrow.mkdir()
    for index in range(3):
        write_image(narrow / f"{index}.png", make_image(20, 400, index))
    code, err = run_in_process(capsys, *video_args(narrow, tmp_path / "out.mp4", "--size", "64"))
    assert code == 1
    # 400x20 at --size 64 is 64x3; 310 gives 310x16 (15.5 rounds to 16).
    assert err.splitlines() == [
        "nst-video: error: the frames (64x3 px) are too small: relu5_1 follows 4 poolings, so "
        "the short side must be at least 16 px, and optical flow needs 16 px; use --size 310 "
        "or more or shallower layers"
    ]
    assert not (tmp_path / "out.mp4.nst-work").exists()


def test_without_a_terminal_every_finished_frame_is_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    video_args: Callable[..., list[str]],
) -> None:
    out = tmp_path / "out"
    args = [arg for arg in video_args(sequence, f"{out}/", "--frames", "3") if arg != "--quiet"]
    code, err = run_in_process(capsys, *args)  # capsys's stderr is not a TTY, like nohup's
    assert code == 0, err
    lines = err.splitlines()
    frames = [line for line in lines if line.startswith("frame ")]
    assert [line.split(":")[0] for line in frames] == [
        "frame 1/3 (clip frame 0, content)",
        "frame 2/3 (clip frame 1, warped)",
        "frame 3/3 (clip frame 2, warped)",
    ]
    assert frames[0].split(": ")[1].startswith("2 evaluations, ")
    assert all(", ETA " in line for line in frames)
    assert lines[-1] == f"wrote {out}/ (3 frames, 3 rendered now)"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--content-layers", ""], "--content-layers is empty; give at least one layer such as "
         "relu4_2 (for no content term pass --content-weight 0)"),
        (["--style-scale", "nan"], "--style-scale must be > 0 and at most 4 (the style image's "
         "long side relative to the output's), got nan"),
        (["--fps", "1e9"], "frame rate 1e9 is out of range; give 1/10 (a frame every 10 s) to "
         "1000 frames per second"),
        (["--temporal-offsets", "1,two"], "--temporal-offsets must be comma-separated whole "
         "numbers such as 1,2,4, got '1,two'"),
        (["--temporal-offsets", "2,4"], "--temporal-offsets 2,4 is not valid; give frame "
         "offsets that start at 1 and increase, up to 64, such as 1,2,4"),
        (["--temporal-offsets", "1,4,2"], "--temporal-offsets 1,4,2 is not valid; give frame "
         "offsets that start at 1 and increase, up to 64, such as 1,2,4"),
        (["--temporal-offsets", "1,2,4", "--segment-warmup", "3", "--workers", "2"],
         "--segment-warmup 3 is shorter than the largest --temporal-offsets 4: with --workers "
         "it must be at least 4"),
    ],
)  # fmt: skip
def test_option_values_are_checked_before_the_work_directory_exists(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    video_args: Callable[..., list[str]],
    extra: list[str],
    message: str,
) -> None:
    code, err = run_in_process(capsys, *video_args(sequence, tmp_path / "out.mp4", *extra))
    assert (code, err.splitlines()) == (1, [f"nst-video: error: {message}"])
    assert not (tmp_path / "out.mp4.nst-work").exists()


def test_unavailable_device_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    video_args: Callable[..., list[str]],
) -> None:
    from nst_video.core.device import available_devices

    if "cuda" in available_devices():
        pytest.skip("this machine has CUDA")
    code, err = run_in_process(
        capsys, *video_args(sequence, tmp_path / "out.mp4", "--device", "cuda")
    )
    assert (code, err.splitlines()) == (1, [
        "nst-video: error: device 'cuda' is not available with this torch build on this "
        f"machine; available: {', '.join(available_devices())}"
    ])  # fmt: skip
    assert not (tmp_path / "out.mp4.nst-work").exists()


@pytest.mark.parametrize(
    ("output", "codec", "fragment"),
    [
        ("out.mp4", "no-such-codec", "Unknown encoder 'no-such-codec'"),
        ("out.webm", "mpeg2video", "Only VP8 or VP9 or AV1"),
    ],
    ids=["unknown", "wrong-container"],
)
def test_bad_codec_is_found_before_rendering(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    video_args: Callable[..., list[str]],
    output: str,
    codec: str,
    fragment: str,
) -> None:
    out = tmp_path / output
    code, err = run_in_process(capsys, *video_args(sequence, out, "--codec", codec))
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and fragment in lines[0], err
    assert lines[0].startswith(
        f"nst-video: error: cannot encode {output} with codec '{codec}' (checked before rendering)"
    )
    assert not list(tmp_path.glob("*.nst-work"))  # no frame was rendered
    assert not out.exists()


def test_frame_of_another_size_is_found_before_rendering(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    video_args: Callable[..., list[str]],
) -> None:
    odd = sequence / "img_004.png"
    write_image(odd, np.zeros((30, 48, 3), np.uint8))
    code, err = run_in_process(capsys, *video_args(sequence, tmp_path / "out.mp4"))
    assert code == 1
    assert err.splitlines() == [
        f"nst-video: error: {odd} is 48x30 but {sequence / 'img_000.png'} is 48x32; all frames "
        "must have the same size"
    ]
    assert not list(tmp_path.glob("*.nst-work"))


@pytest.mark.slow
def test_printf_gap_renders_every_file_with_one_warning(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sequence: Path,
    video_args: Callable[..., list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # the progress console must not wrap the line
    (sequence / "img_002.png").unlink()
    spec = str(sequence / "img_%03d.png")
    args = [a for a in video_args(spec, tmp_path / "out.mp4") if a != "--quiet"]
    code, err = run_in_process(capsys, *args)
    assert code == 0, err
    assert probe(tmp_path / "out.mp4").frame_count == FRAMES - 1
    warning = f"warning: {spec}: numbering skips 2; rendering the 5 files found in numeric order"
    assert err.count(warning) == 1, err
