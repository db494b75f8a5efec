"""`nst-video preview`: a contact sheet of inputs over results, and its overwrite guard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from nst_video.frames import read_image, resize_long_side, write_image
from nst_video.preview import pick_frames

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
            "--iterations", "2", "--weights", str(weights_file), "--device", "cpu",
            "--quiet"]  # fmt: skip


def test_pick_frames_spreads_indices_over_the_clip() -> None:
    assert pick_frames(10, 4) == [1, 3, 6, 8]
    assert pick_frames(3, 5) == [0, 1, 2]


def test_contact_sheet_has_inputs_above_results(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    frames: list[np.ndarray],
    preview_args: list[str],
) -> None:
    out = tmp_path / "sheet.png"
    code, err = run_cli(capsys, *preview_args, "-o", str(out))
    assert code == 0, err
    sheet = read_image(out)
    tile_h, tile_w = 21, 32  # 48x32 scaled to long side 32
    assert sheet.shape == (2 * (tile_h + GAP) + GAP, 3 * (tile_w + GAP) + GAP, 3)
    for column, index in enumerate(pick_frames(len(frames), 3)):
        x = GAP + column * (tile_w + GAP)
        top = sheet[GAP : GAP + tile_h, x : x + tile_w]
        bottom = sheet[2 * GAP + tile_h : 2 * (GAP + tile_h), x : x + tile_w]
        assert np.array_equal(top, resize_long_side(frames[index], 32))
        assert not np.array_equal(bottom, top)  # stylized, not a copy of the input
    assert (sheet[:GAP] == 255).all() and (sheet[:, :GAP] == 255).all()


def test_existing_sheet_is_kept_without_overwrite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, preview_args: list[str]
) -> None:
    out = tmp_path / "sheet.png"
    out.write_bytes(b"not an image")
    code, err = run_cli(capsys, *preview_args, "-o", str(out))
    assert code == 1
    assert err.splitlines() == [f"nst-video: error: {out} exists; pass --overwrite to replace it"]
    assert out.read_bytes() == b"not an image"

    code, err = run_cli(capsys, *preview_args, "-o", str(out), "--overwrite")
    assert code == 0, err
    assert read_image(out).shape[2] == 3


@pytest.mark.parametrize("target", ["style", "input frame"])
def test_sheet_over_an_input_is_refused_even_with_overwrite(
    capsys: pytest.CaptureFixture[str], preview_args: list[str], target: str
) -> None:
    victim = Path(preview_args[3]) if target == "style" else Path(preview_args[1]) / "f002.png"
    before = victim.read_bytes()
    code, err = run_cli(capsys, *preview_args, "-o", str(victim), "--overwrite")
    assert code == 1
    assert err.splitlines() == [
        f"nst-video: error: -o {victim} is also an input ({victim}); nst-video never writes "
        "over an input, not even with --overwrite: choose another path"
    ]
    assert victim.read_bytes() == before


def test_picked_frames_decode_once_and_match_single_reads(
    make_moving_frames: Callable[..., list], tmp_path: Path
) -> None:
    from nst_video.frames import open_source
    from nst_video.preview import picked_frames

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
