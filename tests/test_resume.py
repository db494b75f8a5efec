"""Resumable renders: a render killed at any moment and run again gives the same frames.

The reference is one uninterrupted render in a subprocess; every other render here (killed with
SIGKILL, stopped by SIGTERM/SIGINT, failing on a full disk, resumed from damaged frames) must
end with frame PNGs byte-identical to it. Frames are 32 px and the budgets tiny so the module
stays fast; torch runs on one thread (OMP_NUM_THREADS=1) in and out of process, because two
threads on a busy 2-core machine are ~15x slower and the thread count could change float sums.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_video import cli
from nst_video.checkpoint import WorkDir
from nst_video.errors import Interrupted
from nst_video.frames import VideoWriter, ffmpeg_exe, open_source
from nst_video.frames.writers import ImageDirWriter

COUNT, WIDTH, HEIGHT = 8, 48, 32
TIMEOUT = 120.0  # seconds for any one subprocess render; a hang fails instead of blocking
FRAME_NAME = re.compile(r"^\d{6}\.png$")


# --- inputs and the reference render ------------------------------------------------------------


def moving_pattern(index: int) -> np.ndarray:
    """A textured pattern that drifts 2 px right and 1 px up per frame (real flow to follow)."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    x, y = xs - 2 * index, ys + index
    red = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    green = 128 + 100 * np.cos((x + y) / 4.0)
    blue = (x * 7 + y * 13) % 256
    return np.clip(np.stack([red, green, blue], axis=2), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Inputs:
    root: Path
    clip: Path  # lossless ffv1 .mkv
    sequence: Path  # directory of PNGs with the clip's decoded frames
    style: Path
    weights: Path


@dataclass(frozen=True)
class Reference:
    work: Path
    output: Path
    frames: dict[str, bytes]  # frame file name -> PNG bytes


@pytest.fixture(scope="module")
def inputs(
    tmp_path_factory: pytest.TempPathFactory,
    weights_file: Path,
    write_sequence: Callable[..., Path],
) -> Inputs:
    root = tmp_path_factory.mktemp("resume")
    clip = root / "clip.mkv"
    with VideoWriter(clip, (WIDTH, HEIGHT), Fraction(24), codec="ffv1", pix_fmt="gbrp") as w:
        for index in range(COUNT):
            w.write(moving_pattern(index))
    sequence = write_sequence(root / "sequence", list(open_source(str(clip)).frames()))
    style = root / "style.png"
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(style)
    return Inputs(root, clip, sequence, style, weights_file)


def video_args(inputs: Inputs, output: Path | str, *extra: str, source: Path | None = None) -> list:
    return [
        "video",
        str(source or inputs.clip),
        "-s",
        str(inputs.style),
        "--size",
        "32",
        "--first-iterations",
        "6",
        "--iterations",
        "3",
        "--weights",
        str(inputs.weights),
        "-o",
        str(output),
        "--quiet",
        *extra,
    ]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != cli.DEBUG_ENV}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def run_cli(args: list, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nst_video", *args],
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def reference(inputs: Inputs) -> Reference:
    output = inputs.root / "ref.mp4"
    done = run_cli(video_args(inputs, output), inputs.root)
    assert done.returncode == 0, done.stderr
    work = inputs.root / "ref.mp4.nst-work"
    return Reference(work, output, frame_bytes(work))


def frame_bytes(work: Path) -> dict[str, bytes]:
    frames = work / "frames"
    return {p.name: p.read_bytes() for p in sorted(frames.iterdir()) if FRAME_NAME.match(p.name)}


def assert_same_frames(work: Path, reference: Reference) -> None:
    got = frame_bytes(work)
    assert sorted(got) == sorted(reference.frames)
    differ = [name for name in got if got[name] != reference.frames[name]]
    assert not differ, f"frames differ from the uninterrupted render: {differ}"
    leftovers = [p.name for p in (work / "frames").iterdir() if p.name.startswith(".")]
    assert not leftovers


def assert_video(output: Path, count: int = COUNT) -> None:
    source = open_source(str(output))
    assert source.frame_count == count
    assert sum(1 for _ in source.frames()) == count


def manifest(work: Path) -> dict:
    return json.loads((work / "manifest.json").read_text())


def copy_work(reference: Reference, destination: Path) -> Path:
    shutil.copytree(reference.work, destination)
    return destination


# --- subprocesses that get killed ----------------------------------------------------------------


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start the CLI in its own process group (so a kill takes its ffmpeg children too)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list, **env: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"stderr-{len(started)}.txt", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "nst_video", *args],
            cwd=tmp_path,
            env=child_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        proc.log = log  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        proc.log.close()  # type: ignore[attr-defined]


def stderr_of(proc: subprocess.Popen[bytes]) -> str:
    proc.log.flush()  # type: ignore[attr-defined]
    return Path(proc.log.name).read_text()  # type: ignore[attr-defined]


def wait_until(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> bool:
    """True once `ready()` holds while `proc` runs; False if it exits first. Fails on timeout."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return ready()
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"render did not reach the awaited state in {TIMEOUT} s: {stderr_of(proc)}")


def kill(proc: subprocess.Popen[bytes]) -> None:
    with_group = proc.poll() is None
    if with_group:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def frames_done(work: Path) -> int:
    frames = work / "frames"
    if not frames.is_dir():
        return 0
    return sum(1 for p in frames.iterdir() if FRAME_NAME.match(p.name))


@pytest.mark.parametrize(("killed_at", "how"), [(1, "same command"), (3, "resume")])
def test_sigkill_after_k_frames_then_continue(
    inputs: Inputs,
    reference: Reference,
    spawn: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    killed_at: int,
    how: str,
) -> None:
    output = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.nst-work"
    proc = spawn(video_args(inputs, output))
    assert wait_until(proc, lambda: frames_done(work) >= killed_at), stderr_of(proc)
    kill(proc)
    partial = frames_done(work)
    assert killed_at <= partial < COUNT
    assert not output.exists()

    status = run_cli(["status", str(work), "--json"], tmp_path)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert (info["done"], info["total"], info["encode"]) == (partial, COUNT, "pending")

    args = video_args(inputs, output) if how == "same command" else ["resume", str(work)]
    done = run_cli([*args, "--quiet"] if how == "resume" else args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_frames(work, reference)
    assert_video(output)
    assert manifest(work)["encode"] == "done"


def test_sigkill_at_an_arbitrary_moment_then_resume(
    inputs: Inputs,
    reference: Reference,
    spawn: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    # Not aligned with frame boundaries: lands mid-optimization or between temp write and rename.
    delay = random.Random(20240607).uniform(0.05, 0.6)
    output = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.nst-work"
    proc = spawn(video_args(inputs, output))
    wait_until(proc, lambda: frames_done(work) >= 1)
    time.sleep(delay)
    kill(proc)
    done = run_cli(["resume", str(work), "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_frames(work, reference)
    assert_video(output)


def test_sigkill_during_encode_then_continue(
    inputs: Inputs,
    reference: Reference,
    spawn: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    # An ffmpeg on PATH that stalls when asked to encode (input pipe:0) holds the render inside
    # encode() long enough to kill it there, every time.
    marker = tmp_path / "encoding"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ffmpeg"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do\n'
        f'  if [ "$arg" = "pipe:0" ]; then touch "{marker}"; sleep 60; fi\n'
        "done\n"
        f'exec "{ffmpeg_exe()}" "$@"\n'
    )
    wrapper.chmod(0o755)
    output = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.nst-work"
    proc = spawn(video_args(inputs, output), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert wait_until(proc, marker.exists), stderr_of(proc)
    kill(proc)
    assert manifest(work)["encode"] == "started"
    assert frames_done(work) == COUNT
    assert not output.exists()

    done = run_cli(video_args(inputs, output), tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_frames(work, reference)
    assert_video(output)
    assert manifest(work)["encode"] == "done"
    assert not list(tmp_path.glob(".out.partial*"))


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_with_resume_hint_and_keeps_frames(
    inputs: Inputs,
    reference: Reference,
    spawn: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    signum: int,
    code: int,
) -> None:
    output = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.nst-work"
    proc = spawn(video_args(inputs, output))
    assert wait_until(proc, lambda: frames_done(work) >= 2), stderr_of(proc)
    proc.send_signal(signum)
    assert proc.wait(timeout=TIMEOUT) == code
    err = stderr_of(proc)
    assert f"nst-video resume {work}" in err
    assert "Traceback" not in err
    kept = frame_bytes(work)
    assert 2 <= len(kept) < COUNT
    assert all(data == reference.frames[name] for name, data in kept.items())
    assert not output.exists()


# --- in-process runs (cheaper: no interpreter and torch start-up) ------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[[list], Outcome]]:
    """Call the console entry point in-process, as `nst-video ARGS` would run."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def run(args: list) -> Outcome:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["nst-video", *map(str, args)])
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    yield run
    torch.set_num_threads(threads)


RunMain = Callable[[list], Outcome]


def test_changed_settings_refused_then_restart(
    inputs: Inputs, reference: Reference, run_main: RunMain, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    output = tmp_path / "out.mp4"
    changed = video_args(inputs, output, "--style-weight", "5", "--work-dir", str(work))
    done = run_main(changed)
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: {work} holds {COUNT} frames rendered with other settings: "
        "settings.style_weight (3.0 -> 5.0); run with the old settings to continue, or pass "
        "--restart to discard them\n"
    )
    assert frame_bytes(work) == reference.frames
    assert not output.exists()

    done = run_main([*changed, "--restart"])
    assert done.code == 0, done.err
    redone = frame_bytes(work)
    assert sorted(redone) == sorted(reference.frames)
    assert all(redone[name] != reference.frames[name] for name in redone)
    assert manifest(work)["fingerprint"]["settings"]["style_weight"] == 5.0
    assert_video(output)


def test_status_of_partial_work_dir(
    reference: Reference, run_main: RunMain, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    for index in (5, 6, 7):
        (work / "frames" / f"{index:06d}.png").unlink()
    # A PNG cut short by a crash is not a finished frame, its statistics notwithstanding.
    frame_4 = work / "frames" / "000004.png"
    frame_4.write_bytes(frame_4.read_bytes()[:-20])
    (work / "manifest.json").write_text(json.dumps({**manifest(work), "encode": "pending"}))
    seconds = [
        json.loads((work / "frames" / f"{i:06d}.json").read_text())["seconds"] for i in range(4)
    ]
    mean = sum(seconds) / 4
    assert mean > 0

    done = run_main(["status", work, "--json"])
    assert done.code == 0, done.err
    info = json.loads(done.out)
    assert info["done"] == 4
    assert info["total"] == COUNT
    assert info["seconds_per_frame"] == pytest.approx(mean, rel=1e-12)
    assert info["eta_seconds"] == pytest.approx(4 * mean, rel=1e-12)
    assert info["encode"] == "pending"
    assert info["output"] == str(reference.output)
    assert info["work_dir"] == str(work)

    done = run_main(["status", work])
    assert done.code == 0, done.err
    eta = round(4 * mean)
    assert done.out == (
        f"4/{COUNT} frames done ({mean:.2f} s/frame, ETA 0:{eta // 60:02d}:{eta % 60:02d}); "
        f"output: {reference.output} (pending)\n"
    )

    done = run_main(["status", tmp_path / "nowhere"])
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: {tmp_path / 'nowhere'} is not a render work directory "
        "(no manifest.json)\n"
    )


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_middle(path: Path) -> None:
    """Damage bytes inside the image data but keep the IEND trailer: looks complete."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))


def flip_near_end(path: Path) -> None:
    """Damage the tail of the image data: zlib still inflates it, to wrong pixels."""
    data = bytearray(path.read_bytes())
    at = len(data) - 30
    data[at : at + 8] = bytes(b ^ 0xFF for b in data[at : at + 8])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("index", "damage"),
    [
        (COUNT - 1, truncate),
        (COUNT - 1, flip_middle),
        (3, flip_middle),  # inside the run: its successor exists but it must be redone
        (5, flip_near_end),
    ],
    ids=["truncated-last", "corrupt-last", "corrupt-inside", "corrupt-tail"],
)
def test_damaged_frame_is_rendered_again(
    inputs: Inputs,
    reference: Reference,
    run_main: RunMain,
    tmp_path: Path,
    index: int,
    damage: Callable[[Path], None],
) -> None:
    work = copy_work(reference, tmp_path / "work")
    (work / "frames" / f"{index:06d}.json").unlink()
    damage(work / "frames" / f"{index:06d}.png")
    output = tmp_path / "out.mp4"
    done = run_main(video_args(inputs, output, "--work-dir", str(work)))
    assert done.code == 0, done.err
    assert_same_frames(work, reference)
    assert (work / "frames" / f"{index:06d}.json").is_file()  # proof it was rendered again
    assert_video(output)


def test_disk_full_keeps_frames_and_continues(
    inputs: Inputs,
    reference: Reference,
    run_main: RunMain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_replace = os.replace

    def full_at_frame_3(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name.startswith("000003."):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_at_frame_3)
    output = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.nst-work"
    done = run_main(video_args(inputs, output))
    assert done.code == 1
    assert done.err.count("\n") == 1
    assert done.err.startswith("nst-video: error: disk full while writing ")
    assert "000003." in done.err
    kept = frame_bytes(work)
    assert sorted(kept) == ["000000.png", "000001.png", "000002.png"]
    assert all(kept[name] == reference.frames[name] for name in kept)
    assert [p.name for p in (work / "frames").iterdir() if p.name.startswith(".")] == []
    assert not output.exists()

    monkeypatch.setattr(os, "replace", real_replace)
    done = run_main(video_args(inputs, output))
    assert done.code == 0, done.err
    assert_same_frames(work, reference)
    assert_video(output)


def test_unwritable_work_dir_is_one_line(inputs: Inputs, run_main: RunMain, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    work = blocker / "work"
    done = run_main(video_args(inputs, tmp_path / "out.mp4", "--work-dir", str(work)))
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: cannot create work directory {work}: Not a directory; "
        "pass --work-dir DIR\n"
    )
    assert blocker.read_text() == "not a directory"


def test_existing_output_is_never_overwritten(
    inputs: Inputs, run_main: RunMain, tmp_path: Path
) -> None:
    output = tmp_path / "taken.mp4"
    output.write_bytes(b"someone else's video")
    done = run_main(video_args(inputs, output))
    assert done.code == 1
    assert done.err == f"nst-video: error: {output} exists; pass --overwrite to replace it\n"
    assert output.read_bytes() == b"someone else's video"
    assert not (tmp_path / "taken.mp4.nst-work").exists()  # refused before any work


def test_encode_is_idempotent_and_owns_only_its_output(
    inputs: Inputs,
    reference: Reference,
    run_main: RunMain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = copy_work(reference, tmp_path / "work")
    output = tmp_path / "out.mp4"
    args = video_args(inputs, output, "--work-dir", str(work))

    # A crash after the encoded file was renamed into place but before the manifest said so.
    real_write = WorkDir.write_manifest

    def crash_when_done(self: WorkDir, data: dict) -> None:
        if data.get("encode") == "done":
            raise Interrupted(signal.SIGTERM)
        real_write(self, data)

    monkeypatch.setattr(WorkDir, "write_manifest", crash_when_done)
    done = run_main(args)
    assert done.code == 143
    assert f"nst-video resume {work}" in done.err
    assert output.is_file()
    assert manifest(work)["encode"] == "started"
    monkeypatch.setattr(WorkDir, "write_manifest", real_write)

    for _ in range(2):  # after the crash, then again after a clean finish: no --overwrite needed
        done = run_main(args)
        assert done.code == 0, done.err
        assert manifest(work)["encode"] == "done"
        assert_video(output)
    assert_same_frames(work, reference)

    # The same work dir pointed at a file it did not write must not take it for its own.
    other = tmp_path / "other.mp4"
    other.write_bytes(b"not ours")
    done = run_main(video_args(inputs, other, "--work-dir", str(work)))
    assert done.code == 1
    assert done.err == f"nst-video: error: {other} exists; pass --overwrite to replace it\n"
    assert other.read_bytes() == b"not ours"


def test_image_sequence_to_directory_resumes(
    inputs: Inputs,
    reference: Reference,
    run_main: RunMain,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out_dir = tmp_path / "out"
    args = video_args(inputs, f"{out_dir}/", source=inputs.sequence)
    work = tmp_path / "out.nst-work"

    real_save = WorkDir.save_frame

    def interrupt_after_3(self: WorkDir, index: int, image: np.ndarray, stats: dict) -> None:
        real_save(self, index, image, stats)
        if index == 2:
            raise Interrupted(signal.SIGINT)

    monkeypatch.setattr(WorkDir, "save_frame", interrupt_after_3)
    done = run_main(args)
    assert done.code == 130
    assert f"nst-video resume {work}" in done.err
    assert frames_done(work) == 3
    monkeypatch.setattr(WorkDir, "save_frame", real_save)

    # Then stopped again halfway through writing the output frames.
    real_write = ImageDirWriter.write

    def interrupt_at_output_4(self: ImageDirWriter, rgb: np.ndarray) -> None:
        if self.index == 4:
            raise Interrupted(signal.SIGTERM)
        real_write(self, rgb)

    monkeypatch.setattr(ImageDirWriter, "write", interrupt_at_output_4)
    done = run_main(["resume", work, "--quiet"])
    assert done.code == 143
    assert len(list(out_dir.iterdir())) == 4
    monkeypatch.setattr(ImageDirWriter, "write", real_write)

    for command in (["resume", work, "--quiet"], args):
        done = run_main(command)
        assert done.code == 0, done.err
    assert_same_frames(work, reference)
    written = {p.name: p.read_bytes() for p in sorted(out_dir.iterdir())}
    assert sorted(written) == [f"frame_{i:06d}.png" for i in range(COUNT)]
    assert all(written[f"frame_{i:06d}.png"] == reference.frames[f"{i:06d}.png"] for i in range(8))
