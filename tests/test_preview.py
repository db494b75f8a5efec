"""`nst-video preview`: a contact sheet of inputs over results, and its overwrite guard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_in_process

from nst_video.media import read_image, write_image
from nst_video.pipeline.preview import pick_frames
from nst_video.video.resize import resize_long_side

GAP = 4  # white border between and around the tiles


@pytest.fixture
def frames(make_moving_frames: Callable[..., list]) -> list[np.ndarray]:
    return make_moving_frames(6, 48, 32)


@pytest.fixture
def preview_args(
    tmp_path: Path,
    frames: list[np.ndarray],
    make_image: Callable[..., np.ndarray],
    weights_file: Path,
    write_sequence: Callable[..., Path],
) -> list[str]:
    seq = write_sequence(tmp_path / "seq", frames)
    style = tmp_path / "style.png"
    write_image(style, make_image(40, 40, 3))
    return ["preview", str(seq), "--style", str(style), "--count", "3", "--size", "32",
            "--iterations", "3", "--weights", str(weights_file), "--device", "cpu",  # 2: the
            # margin canvas's first L-BFGS trial may not lower the loss, leaving the content
            "--quiet"]  # fmt: skip


def test_pick_frames_spreads_indices_over_the_clip() -> None:
    assert pick_frames(10, 4) == [1, 3, 6, 8]
    assert pick_frames(3, 5) == [0, 1, 2]


def tiles(sheet: np.ndarray, cols: int, tile_h: int, tile_w: int) -> tuple[int, list[list]]:
    """The label margin's width and the sheet's tiles, row by row (rows of `cols` tiles)."""
    margin = sheet.shape[1] - (cols * (tile_w + GAP) + GAP)
    rows = []
    for y in range(GAP, sheet.shape[0] - GAP, tile_h + GAP):
        xs = range(margin + GAP, sheet.shape[1], tile_w + GAP)
        rows.append([sheet[y : y + tile_h, x : x + tile_w] for x in xs])
    return margin, rows


def label_margins(sheet: np.ndarray, margin: int, tile_h: int) -> list[np.ndarray]:
    return [sheet[y : y + tile_h, :margin] for y in range(GAP, sheet.shape[0] - GAP, tile_h + GAP)]


TILE_H, TILE_W = 21, 32  # 48x32 frames scaled to long side 32


@pytest.mark.slow
def test_contact_sheet_has_inputs_above_results(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    frames: list[np.ndarray],
    preview_args: list[str],
) -> None:
    out = tmp_path / "sheet.png"
    code, err = run_in_process(capsys, *preview_args, "-o", str(out))
    assert code == 0, err
    sheet = read_image(out)
    margin, (top, bottom) = tiles(sheet, 3, TILE_H, TILE_W)
    assert sheet.shape == (2 * (TILE_H + GAP) + GAP, margin + 3 * (TILE_W + GAP) + GAP, 3)
    assert margin > GAP  # room for the row labels
    for column, index in enumerate(pick_frames(len(frames), 3)):
        assert np.array_equal(top[column], resize_long_side(frames[index], 32))
        assert not np.array_equal(bottom[column], top[column])  # stylized, not a copy
    assert (sheet[:GAP] == 255).all() and (sheet[:, :GAP] == 255).all()
    assert all((label != 255).any() for label in label_margins(sheet, margin, TILE_H))


@pytest.mark.slow
def test_style_weight_sweep_gives_one_labelled_row_per_value(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, preview_args: list[str]
) -> None:
    sweep, single = tmp_path / "sweep.png", tmp_path / "single.png"
    code, err = run_in_process(
        capsys, *preview_args, "-o", str(sweep), "--style-weight", "0.3,1,300"
    )
    assert code == 0, err
    sheet = read_image(sweep)
    margin, rows = tiles(sheet, 3, TILE_H, TILE_W)
    assert sheet.shape[0] == 4 * (TILE_H + GAP) + GAP  # inputs + one row per value
    assert len(rows) == 4 and all(len(row) == 3 for row in rows)
    labels = label_margins(sheet, margin, TILE_H)
    assert all((label != 255).any() for label in labels)
    assert len({label.tobytes() for label in labels}) == 4  # each row has its own text
    for weaker, stronger in zip(rows[1:-1], rows[2:], strict=True):
        assert all(not np.array_equal(a, b) for a, b in zip(weaker, stronger, strict=True))

    # A sweep row is exactly what a preview with that one weight renders.
    code, err = run_in_process(capsys, *preview_args, "-o", str(single), "--style-weight", "300")
    assert code == 0, err
    alone = tiles(read_image(single), 3, TILE_H, TILE_W)[1]
    assert len(alone) == 2
    assert all(np.array_equal(a, b) for a, b in zip(alone[1], rows[3], strict=True))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.3,x", "--style-weight must be comma-separated numbers, got '0.3,x'"),
        (",", "--style-weight takes 1 to 8 comma-separated values, got ','"),
        ("1,2,3,4,5,6,7,8,9", "--style-weight takes 1 to 8 comma-separated values, got "
         "'1,2,3,4,5,6,7,8,9'"),
        ("1,-2", "style weight must be >= 0, got -2.0"),
    ],
)  # fmt: skip
def test_bad_sweep_value_is_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    preview_args: list[str],
    value: str,
    message: str,
) -> None:
    out = tmp_path / "sheet.png"
    code, err = run_in_process(capsys, *preview_args, "-o", str(out), "--style-weight", value)
    assert (code, err.splitlines()) == (1, [f"nst-video: error: {message}"])
    assert not out.exists()


@pytest.mark.slow
def test_existing_sheet_is_kept_without_overwrite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, preview_args: list[str]
) -> None:
    out = tmp_path / "sheet.png"
    out.write_bytes(b"not an image")
    code, err = run_in_process(capsys, *preview_args, "-o", str(out))
    assert code == 1
    assert err.splitlines() == [f"nst-video: error: {out} exists; pass --overwrite to replace it"]
    assert out.read_bytes() == b"not an image"

    code, err = run_in_process(capsys, *preview_args, "-o", str(out), "--overwrite")
    assert code == 0, err
    assert read_image(out).shape[2] == 3


@pytest.mark.parametrize("target", ["style", "input frame"])
def test_sheet_over_an_input_is_refused_even_with_overwrite(
    capsys: pytest.CaptureFixture[str], preview_args: list[str], target: str
) -> None:
    victim = Path(preview_args[3]) if target == "style" else Path(preview_args[1]) / "f002.png"
    before = victim.read_bytes()
    code, err = run_in_process(capsys, *preview_args, "-o", str(victim), "--overwrite")
    assert code == 1
    assert err.splitlines() == [
        f"nst-video: error: -o {victim} is also an input ({victim}); nst-video never writes "
        "over an input, not even with --overwrite: choose another path"
    ]
    assert victim.read_bytes() == before


def test_picked_frames_decode_once_and_match_single_reads(
    make_moving_frames: Callable[..., list], tmp_path: Path
) -> None:
    from nst_video.media import open_source
    from nst_video.pipeline.preview import picked_frames

    for i, frame in enumerate(make_moving_frames(9, 40, 24)):
        write_image(tmp_path / f"{i:03d}.png", frame)
    source = open_source(tmp_path)
    calls = []
    original = source.frames

    def counting(start: int = 0, count: int | None = None):  # noqa: ANN202
        calls.append((start, count))
        return original(start, count)

    source.frames = counting  # type: ignore[method-assign]
    picked = picked_frames(source, [1, 4, 8])
    assert calls == [(1, 8)]
    for index, frame in zip([1, 4, 8], picked, strict=True):
        np.testing.assert_array_equal(frame, read_image(tmp_path / f"{index:03d}.png"))


def test_preview_of_a_narrow_clip_is_one_line_with_the_minimum(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    make_image: Callable[..., np.ndarray],
    preview_args: list[str],
    write_sequence: Callable[..., Path],
) -> None:
    narrow = write_sequence(tmp_path / "narrow", [make_image(20, 400, i) for i in range(3)])
    args = [str(narrow) if arg.endswith("seq") else arg for arg in preview_args]
    out = tmp_path / "sheet.png"
    code, err = run_in_process(capsys, *args, "-o", str(out))
    assert code == 1
    assert err.splitlines() == [
        "nst-video: error: the frames (32x2 px) are too small: relu5_1 follows 4 poolings, so "
        "the short side must be at least 16 px; use --size 310 or more or shallower layers"
    ]
    assert not out.exists()


def test_preview_says_where_it_wrote(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, preview_args: list[str]
) -> None:
    out = tmp_path / "sheet.png"
    loud = [arg for arg in preview_args if arg != "--quiet"]
    code, err = run_in_process(capsys, *loud, "-o", str(out), "--count", "1")
    assert code == 0, err
    assert err.splitlines()[-1] == f"wrote {out}"


def test_preview_takes_every_stylization_option_of_video() -> None:
    """One option group for how a frame is stylized: what video has and preview lacks is only
    about time, encoding and parallel work."""
    from typer.main import get_command

    from nst_video.cli import app

    commands = get_command(app).commands  # type: ignore[attr-defined]

    def options(name: str) -> set[str]:
        return {opt for param in commands[name].params for opt in param.opts if opt[0] == "-"}

    assert options("video") - options("preview") == {
        "--first-iterations", "--init", "--flow", "--temporal-weight", "--temporal-precondition",
        "--scene-cut-threshold",
        "--start", "--frames", "--crf", "--codec", "--no-audio", "--report", "--report-html",
        "--work-dir",
        "--restart", "--workers", "--ray-address", "--segment-warmup", "--temporal-offsets",
        "--passes", "--pass-blend", "--temporal-from-pass", "--pass-iterations", "--like",
        "--save-config", "--style-mask", "--keep-mask",
    }  # fmt: skip
    assert options("image") - options("preview") == {
        "--init", "--output-ext", "--save-every", "--save-config",
    }  # fmt: skip


@pytest.mark.slow
def test_preview_progress_names_the_style_weight(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, preview_args: list[str]
) -> None:
    args = [a for a in preview_args if a != "--quiet"]
    code, err = run_in_process(
        capsys, *args, "-o", str(tmp_path / "s.png"), "--style-weight", "0.5,20"
    )
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("frame ")]
    assert len(lines) == 6
    assert all("style weight 0.5)" in line for line in lines[:3])
    assert all("style weight 20)" in line for line in lines[3:])
