"""Runtime data safety (issue 21, round two): bad values and damaged files are one line and
exit 1 before any work, a failed first attempt never blocks the fixed rerun, `status` writes
nothing and never makes a render fail."""

from __future__ import annotations

import fcntl
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
import torch
from clip_inputs import Inputs, inputs_fixture
from PIL import Image

from nst_video import cli
from nst_video.cli import main
from nst_video.core.vgg import random_state_dict
from nst_video.errors import ResumeError
from nst_video.workdir.store import LOCK, WorkDir

COUNT, WIDTH, HEIGHT = 4, 48, 32


# --- helpers -----------------------------------------------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: object):
    """The console entry point in-process: (exit code, stderr)."""
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    monkeypatch.setattr(sys, "argv", ["nst-video", *map(str, args)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main()
    code = info.value.code
    return (0 if code is None else code), capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nst-video: error: "), err
    assert "Traceback" not in err
    return lines[0].removeprefix("nst-video: error: ")


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A valid bilevel PNG of side x side pixels (400 million at 20000): ~50 KB of zlib."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return len(data).to_bytes(4, "big") + kind + data + crc.to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # 1 bit, greyscale
    squeeze = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)
    data = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
    path.write_bytes(png + chunk(b"IEND", b""))
    return path


inputs = inputs_fixture("runtime-safety", COUNT, (WIDTH, HEIGHT))


@pytest.fixture(scope="module")
def bomb(inputs: Inputs) -> Path:
    return bomb_png(inputs.root / "bomb.png")


def video_args(inputs: Inputs, output: Path | str, *extra: object) -> list:
    return [
        "video", inputs.sequence, "-s", inputs.style, "--size", "32", "--first-iterations", "4",
        "--iterations", "2", "--weights", inputs.weights, "--device", "cpu", "-o", output,
        *extra,
    ]  # fmt: skip


def image_args(inputs: Inputs, output: Path, *extra: object) -> list:
    content = inputs.sequence / sorted(os.listdir(inputs.sequence))[0]
    return [
        "image", content, "-s", inputs.style, "-o", output, "--size", "32", "--iterations", "2",
        "--weights", inputs.weights, "--device", "cpu", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def finished(inputs: Inputs) -> Path:
    """A finished render's work directory (frames 0-3, lossless output frames)."""
    out = inputs.root / "done"
    done = subprocess.run(
        [sys.executable, "-m", "nst_video", *map(str, video_args(inputs, f"{out}/", "--quiet"))],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return inputs.root / "done.nst-work"


def copy_of(finished: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the finished work directory with its output beside it: (work, output)."""
    work = tmp_path / "out.nst-work"
    shutil.copytree(finished, work)
    data = json.loads((work / "manifest.json").read_text())
    out = tmp_path / "out"
    data["job"]["output"] = f"{out}/"
    data["owned"] = {}
    (work / "manifest.json").write_text(json.dumps(data))
    return work, out


# --- item 10: non-finite options, damaged weights ----------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--style-weight", "inf"], "style weight must be a finite number, got inf"),
        (["--tv-weight", "inf"], "tv weight must be a finite number, got inf"),
        (["--content-weight", "inf"], "content weight must be a finite number, got inf"),
        (["--tolerance", "inf"], "tolerance must be a finite number, got inf"),
        (
            ["--style-layer-weights", "1,1,1,1,inf"],
            "style layer weight must be a finite number, got inf",
        ),
        (
            ["--seed", "99999999999999999999999"],
            "--seed must be in 0..18446744073709551615, got 99999999999999999999999",
        ),
    ],
)
def test_image_refuses_infinite_options(
    extra: list[str],
    message: str,
    inputs: Inputs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run_cli(monkeypatch, capsys, *image_args(inputs, tmp_path / "o.png", *extra))
    assert code == 1
    assert one_error_line(err) == message
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--temporal-weight", "inf"], "temporal weight must be a finite number, got inf"),
        (["--style-weight", "inf"], "style weight must be a finite number, got inf"),
        (["--seed", str(2**64)], f"--seed must be in 0..{2**64 - 1}, got {2**64}"),
    ],
)
def test_video_refuses_infinite_options_before_the_work_directory(
    extra: list[str],
    message: str,
    inputs: Inputs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run_cli(monkeypatch, capsys, *video_args(inputs, tmp_path / "o.mp4", *extra))
    assert code == 1
    assert one_error_line(err) == message
    assert list(tmp_path.iterdir()) == []


def test_preview_sweep_refuses_inf_before_rendering(
    inputs: Inputs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from nst_video.cli import commands

    def no_engine(*_args: object) -> None:
        raise AssertionError("an engine was built before the sweep was checked")

    monkeypatch.setattr(commands, "make_engine", no_engine)
    args = ["preview", inputs.sequence, "-s", inputs.style, "-o", tmp_path / "p.png",
            "--style-weight", "1,inf", "--weights", inputs.weights]  # fmt: skip
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1
    assert one_error_line(err) == "style weight must be a finite number, got inf"


def test_nan_weights_name_the_file_not_the_style_weight(
    inputs: Inputs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = random_state_dict(0)
    state = {k: torch.full_like(v, math.nan) for k, v in state.items()}
    weights = tmp_path / "vgg19-nan.pth"
    torch.save(state, weights)
    args = image_args(inputs, tmp_path / "o.png", "--weights", weights)
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1
    line = one_error_line(err)
    assert line.startswith(
        f"the network produced NaN or infinite values with the weights from {weights}"
    )
    assert "--style-weight" not in line


# --- item 9: decompression bombs ---------------------------------------------------------------

BOMB = (
    "has more than 178,956,970 pixels, too many to decode (a decompression bomb?); resize it first"
)


def test_bomb_as_style_init_frame_or_preview_input_is_one_line(
    inputs: Inputs,
    bomb: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "o.png"
    as_style = [a if a != inputs.style else bomb for a in image_args(inputs, out)]
    frames = tmp_path / "frames"
    shutil.copytree(inputs.sequence, frames)
    shutil.copy(bomb, frames / sorted(os.listdir(frames))[-1])
    cases = [
        as_style,
        image_args(inputs, out, "--init", bomb),
        [a if a != inputs.sequence else frames for a in video_args(inputs, tmp_path / "v.mp4")],
        [
            "preview",
            frames,
            "-s",
            inputs.style,
            "-o",
            out,
            "--size",
            "32",
            "--iterations",
            "1",
            "--count",
            "1",
            "--weights",
            inputs.weights,
        ],  # fmt: skip
    ]
    for args in cases:
        code, err = run_cli(monkeypatch, capsys, *args)
        assert code == 1, args
        assert one_error_line(err).endswith(BOMB), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # nothing written


def test_bomb_in_an_image_batch_is_skipped_with_a_line(
    inputs: Inputs,
    bomb: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(inputs.sequence / sorted(os.listdir(inputs.sequence))[0], batch / "a.png")
    shutil.copy(bomb, batch / "b.png")
    out = tmp_path / "out"
    args = ["image", batch, "-s", inputs.style, "-o", out, "--size", "32", "--iterations", "1",
            "--weights", inputs.weights, "--device", "cpu"]  # fmt: skip
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1  # as for any unreadable file of a batch: the others are written
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]
    assert "Traceback" not in err
    assert sum(BOMB in line for line in err.splitlines()) == 1
    assert "1 of 2 images failed" in err


# --- item 9: out of memory -----------------------------------------------------------------------


@pytest.mark.slow
def test_out_of_memory_is_one_line_naming_a_smaller_size(inputs: Inputs, tmp_path: Path) -> None:
    limit = 3 * 2**30  # address space: enough to start, far from a 4096 px VGG pass

    def small_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    args = image_args(inputs, tmp_path / "big.png")
    args[args.index("--size") + 1] = "4096"
    done = subprocess.run(
        [sys.executable, "-m", "nst_video", *map(str, args)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=small_memory,
    )
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr)
    assert line.startswith("out of memory at --size 4096 (") and line.endswith("try --size 2048")
    assert not (tmp_path / "big.png").exists()


# --- item 9: too-long names --------------------------------------------------------------------


def test_output_name_too_long_with_its_temporary_suffix_is_refused_first(
    inputs: Inputs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "n" * 236 + ".mp4"  # 240 bytes: a valid name, but not with the encoder's suffix
    (tmp_path / name).with_suffix(".probe").touch()  # the name itself fits this filesystem
    code, err = run_cli(monkeypatch, capsys, *video_args(inputs, tmp_path / name, "--work-dir",
                                                         tmp_path / "w"))  # fmt: skip
    assert code == 1
    line = one_error_line(err)
    assert line.startswith("output: the name 'nnnnnnnn") and "is 240 bytes" in line
    assert line.endswith("choose a shorter name")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name[:-4] + ".probe"]  # no work dir
    code, err = run_cli(monkeypatch, capsys, *image_args(inputs, tmp_path / (name[:-4] + ".png")))
    assert code == 1 and "is 240 bytes" in one_error_line(err)


# --- item 9: damaged work directory files ------------------------------------------------------


@pytest.mark.slow
def test_a_frame_of_the_wrong_size_is_rendered_again(
    inputs: Inputs,
    finished: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work, out = copy_of(finished, tmp_path)
    good = (work / "frames" / "000002.png").read_bytes()
    Image.new("RGB", (40, 30), "red").save(work / "frames" / "000002.png")
    code, err = run_cli(monkeypatch, capsys, "resume", work)
    assert code == 0, err
    assert f"1 frame in {work} not 32x21 (first: frames/000002.png): rendered again" in err
    assert "Traceback" not in err
    assert (work / "frames" / "000002.png").read_bytes() == good  # the same frame again
    assert Image.open(out / "frame_000002.png").size == (32, 21)


@pytest.mark.slow
def test_status_survives_damaged_files(
    inputs: Inputs,
    finished: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from nst_video.workdir.status import render_status

    work, _ = copy_of(finished, tmp_path)
    frames = work / "frames"
    seconds = json.loads((frames / "000003.json").read_text())["seconds"]
    (frames / "000000.json").write_text("[1, 2]")
    stats = json.loads((frames / "000001.json").read_text())
    (frames / "000001.json").write_text(json.dumps({**stats, "seconds": "fast"}))
    del stats["seconds"]
    (frames / "000002.json").write_text(json.dumps(stats))
    info = render_status(WorkDir(work))
    assert info["done"] == 4
    assert info["seconds_per_frame"] == pytest.approx(seconds)  # the one readable sample
    # A segment plan whose worker.json is damaged: the row says no worker, no traceback.
    data = json.loads((work / "manifest.json").read_text())
    data["plan"]["segments"] = [{"index": 0, "start": 0, "stop": 4, "warmup": 0}]
    (work / "manifest.json").write_text(json.dumps(data))
    (work / "segments" / "000").mkdir(parents=True)
    (work / "segments" / "000" / "worker.json").write_text("{not json")
    code, err = run_cli(monkeypatch, capsys, "status", work)
    assert code == 0, err
    assert "Traceback" not in err
    # The resume reads the damaged statistics too: it re-renders what it cannot trust.
    del data["plan"]["segments"]
    data["plan"]["segments"] = None
    (work / "manifest.json").write_text(json.dumps(data))
    code, err = run_cli(monkeypatch, capsys, "resume", work, "--quiet")
    assert code == 0, err


# --- item 13: status writes nothing ------------------------------------------------------------


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in [root, *root.rglob("*")]
    }


@pytest.mark.slow
def test_status_is_read_only(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    work, _ = copy_of(finished, tmp_path)
    data = json.loads((work / "manifest.json").read_text())
    data["plan"]["segments"] = [
        {"index": 0, "start": 0, "stop": 2, "warmup": 0},
        {"index": 1, "start": 2, "stop": 4, "warmup": 1},
    ]
    (work / "manifest.json").write_text(json.dumps(data))
    shutil.rmtree(work / "segments", ignore_errors=True)
    for png in (work / "frames").iterdir():
        png.unlink()
    (work / "frames").rmdir()
    before = tree(work)
    for args in (["status", work], ["status", work, "--json"]):
        code, err = run_cli(monkeypatch, capsys, *args)
        assert code == 0, err
    assert tree(work) == before  # no frames/, no segments/NNN/, nothing touched


# --- item 14: status never makes a render fail -------------------------------------------------


def test_a_render_waits_out_a_status_holding_the_lock(tmp_path: Path) -> None:
    work = WorkDir(tmp_path / "w")
    work.create()
    fd = os.open(work.path / LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)  # a status reading the holder, at this very instant
    timer = threading.Timer(0.2, os.close, (fd,))
    timer.start()
    try:
        with work.lock():
            owner = json.loads((work.path / LOCK).read_text())
            assert owner["pid"] == os.getpid()
    finally:
        timer.join()


def test_the_in_use_message_never_names_a_dead_process(tmp_path: Path) -> None:
    work = WorkDir(tmp_path / "w")
    work.create()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    (work.path / LOCK).write_text(json.dumps({"pid": child.pid, "host": os.uname().nodename}))
    fd = os.open(work.path / LOCK, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # a holder that outlasts the wait, with a stale pid file
    try:
        with pytest.raises(ResumeError) as info, work.lock():
            pass
    finally:
        os.close(fd)
    assert str(info.value).startswith(f"{work.path} is in use by another nst-video process;")
    assert str(child.pid) not in str(info.value)
    with (
        work.lock(),  # a live holder is named
        pytest.raises(ResumeError, match=rf"\(pid {os.getpid()} on "),
        WorkDir(work.path).lock(),
    ):
        pass


# --- item 7: a failed first attempt never blocks the fixed rerun -------------------------------


def test_a_style_that_fails_to_decode_leaves_no_work_directory(
    inputs: Inputs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    style = tmp_path / "style.png"
    style.write_bytes(b"not a png at all")
    out = tmp_path / "out"
    args = [a if a != inputs.style else style for a in video_args(inputs, f"{out}/", "--quiet")]
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1
    assert "is not a readable image" in one_error_line(err)
    assert not (tmp_path / "out.nst-work").exists()
    shutil.copy(inputs.style, style)  # the user fixes the file; the same command now works
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert len(list(out.glob("frame_*.png"))) == COUNT


def test_weights_that_fail_to_load_leave_no_work_directory(
    inputs: Inputs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    weights = tmp_path / "vgg19.pth"
    weights.write_bytes(b"truncated")
    args = [a if a != inputs.weights else weights for a in video_args(inputs, f"{tmp_path / 'o'}/")]
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1
    assert one_error_line(err).startswith(f"cannot read weights file {weights}")
    assert not (tmp_path / "o.nst-work").exists()


def test_a_work_directory_without_frames_takes_changed_settings(
    inputs: Inputs,
    finished: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work, out = copy_of(finished, tmp_path)
    for path in (work / "frames").iterdir():
        path.unlink()  # a first attempt that failed before its first frame
    args = video_args(inputs, f"{out}/", "--quiet", "--style-weight", "2", "--work-dir", work)
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    stored = json.loads((work / "manifest.json").read_text())
    assert stored["fingerprint"]["settings"]["loss"]["style_weight"] == 2.0
    # With a frame rendered, changed settings are refused as before.
    args[args.index("2")] = "3"
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 1
    assert "4 frames rendered with other settings" in one_error_line(err)


def test_workers_on_a_render_begun_on_one_process_continue_it_there(
    finished: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("ray")  # imported to check it is there; no Ray starts
    work, out = copy_of(finished, tmp_path)
    good = (work / "frames" / "000003.png").read_bytes()
    (work / "frames" / "000003.png").unlink()
    code, err = run_cli(monkeypatch, capsys, "resume", work, "--workers", "2")
    assert code == 0, err
    assert "this render began on one worker and continues that way" in err
    assert (work / "frames" / "000003.png").read_bytes() == good
