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
from pathlib import Path

import numpy as np
import pytest
import torch
from clip_inputs import Inputs, inputs_fixture
from PIL import Image

from nst_video import cli
from nst_video.core.device import resolve_precision
from nst_video.errors import Interrupted, ResumeError
from nst_video.media import ffmpeg_exe, open_source
from nst_video.media.writers import ImageDirWriter
from nst_video.pipeline import job as job_module
from nst_video.workdir.manifest import Manifest
from nst_video.workdir.store import FrameStore, WorkDir

COUNT, WIDTH, HEIGHT = 8, 48, 32
TIMEOUT = 120.0  # seconds for any one subprocess render; a hang fails instead of blocking
FRAME_NAME = re.compile(r"^\d{6}\.png$")


# --- inputs and the reference render ------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    work: Path
    output: Path
    frames: dict[str, bytes]  # frame file name -> PNG bytes


inputs = inputs_fixture("resume", COUNT, (WIDTH, HEIGHT))


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


def run_subprocess(args: list, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
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
    done = run_subprocess(video_args(inputs, output), inputs.root)
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


@pytest.mark.slow
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

    status = run_subprocess(["status", str(work), "--json"], tmp_path)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert (info["done"], info["total"], info["encode"]) == (partial, COUNT, "pending")

    args = video_args(inputs, output) if how == "same command" else ["resume", str(work)]
    done = run_subprocess([*args, "--quiet"] if how == "resume" else args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_frames(work, reference)
    assert_video(output)
    assert manifest(work)["encode"] == "done"


@pytest.mark.slow
def test_sigkill_with_long_term_offsets_then_resume_byte_identical(
    inputs: Inputs, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    # Killed after frame 5: frame 6 ties to frames 5, 4 and 2, read back from their PNGs.
    offsets = ("--temporal-offsets", "1,2,4")
    whole = run_subprocess(video_args(inputs, tmp_path / "ref.mp4", *offsets), tmp_path)
    assert whole.returncode == 0, whole.stderr
    reference = frame_bytes(tmp_path / "ref.mp4.nst-work")
    assert len(reference) == COUNT
    output = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.nst-work"
    proc = spawn(video_args(inputs, output, *offsets))
    assert wait_until(proc, lambda: frames_done(work) >= 5), stderr_of(proc)
    kill(proc)
    assert 5 <= frames_done(work) < COUNT
    done = run_subprocess(["resume", str(work), "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert frame_bytes(work) == reference
    assert manifest(work)["job"]["settings"]["video"]["temporal_offsets"] == [1, 2, 4]


@pytest.mark.slow
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
    done = run_subprocess(["resume", str(work), "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_frames(work, reference)
    assert_video(output)


@pytest.mark.slow
def test_sigkill_during_encode_then_continue(
    inputs: Inputs,
    reference: Reference,
    spawn: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    # An ffmpeg on PATH that stalls when asked to encode (input pipe:0) holds the render inside
    # encode() long enough to kill it there, every time. The codec check before rendering
    # (a test encode into a temporary directory) passes through.
    marker = tmp_path / "encoding"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ffmpeg"
    # It writes a few bytes to its output (the encode's temporary file) before stalling.
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *nst-video-codec-*) exec "{ffmpeg_exe()}" "$@";; esac\n'
        'last=""; stall=""\n'
        'for arg in "$@"; do last="$arg"; [ "$arg" = "pipe:0" ] && stall=1; done\n'
        'if [ -n "$stall" ]; then\n'
        f'  echo partial > "${{last#file:}}"; touch "{marker}"; sleep 60\n'
        "fi\n"
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
    partial = Path(manifest(work)["partial"])
    assert partial.read_text() == "partial\n"
    assert partial.parent == tmp_path and partial.name.startswith(".out.mp4.")

    done = run_subprocess(video_args(inputs, output), tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_frames(work, reference)
    assert_video(output)
    assert manifest(work)["encode"] == "done"
    # The killed encode's temporary file (recorded in the manifest) is gone too.
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]


@pytest.mark.slow
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
def run_in_process(
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


RunInProcess = Callable[[list], Outcome]


@pytest.mark.slow
def test_changed_settings_refused_then_restart(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    output = tmp_path / "out.mp4"
    changed = video_args(inputs, output, "--style-weight", "5", "--work-dir", str(work))
    done = run_in_process(changed)
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: {work} holds {COUNT} frames rendered with other settings: "
        "--style-weight 2 -> 5; run with the old settings to continue, or pass "
        "--restart to discard them\n"
    )
    assert frame_bytes(work) == reference.frames
    assert not output.exists()

    done = run_in_process([*changed, "--restart"])
    assert done.code == 0, done.err
    redone = frame_bytes(work)
    assert sorted(redone) == sorted(reference.frames)
    assert all(redone[name] != reference.frames[name] for name in redone)
    assert manifest(work)["fingerprint"]["settings"]["loss"]["style_weight"] == 5.0
    assert_video(output)


@pytest.mark.slow
def test_other_model_is_refused_naming_the_setting(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    output = tmp_path / "out.mp4"
    other = video_args(inputs, output, "--model", "vgg19-caffe", "--work-dir", str(work))
    done = run_in_process(other)
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: {work} holds {COUNT} frames rendered with other settings: "
        "--model vgg19-caffe-q8 -> vgg19-caffe; run with the old settings to "
        "continue, or pass --restart to discard them\n"
    )
    assert frame_bytes(work) == reference.frames
    assert manifest(work)["job"]["settings"]["loss"]["model"] == "vgg19-caffe-q8"
    assert manifest(work)["fingerprint"]["settings"]["loss"]["model"] == "vgg19-caffe-q8"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "value", "change"),
    [
        ("--precision", "bf16", "--precision auto -> bf16"),
        ("--history-size", "7", "--history-size 50 -> 7"),
    ],
)
def test_precision_and_history_size_are_result_settings(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path,
    option: str, value: str, change: str,
) -> None:  # fmt: skip
    """bf16 moves pixels (by ~20/255 on average, see the README) and the L-BFGS history changes
    every step: neither may mix with frames rendered without it."""
    work = copy_work(reference, tmp_path / "work")
    done = run_in_process(
        video_args(inputs, tmp_path / "o.mp4", option, value, "--work-dir", str(work))
    )
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: {work} holds {COUNT} frames rendered with other settings: "
        f"{change}; run with the old settings to continue, or pass --restart to discard them\n"
    )
    assert frame_bytes(work) == reference.frames


@pytest.mark.slow
def test_a_coarse_start_its_frames_are_too_small_for_changes_nothing(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    """32 px frames have no coarse level under the default --coarse-start (512) nor under 0:
    the fingerprint stores 0 wherever the value cannot act, so a work directory begun under
    the default continues under 0 (and, by the same rule, one begun under the old default 0
    under 512: test_checkpoint's fingerprint cases)."""
    work = copy_work(reference, tmp_path / "work")
    assert manifest(work)["fingerprint"]["settings"]["image"]["coarse_start"] == 0
    assert manifest(work)["job"]["settings"]["image"]["coarse_start"] == 512
    output = tmp_path / "o.mp4"
    done = run_in_process(
        video_args(inputs, output, "--coarse-start", "0", "--work-dir", str(work))
    )
    assert done.code == 0, done.err
    assert frame_bytes(work) == reference.frames
    assert_video(output)


@pytest.mark.slow
def test_resume_keeps_the_recorded_precision_where_auto_resolves_otherwise(
    inputs: Inputs,
    reference: Reference,
    run_in_process: RunInProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reference began with `auto`, which this CPU resolved (fp32, or bf16 on a CPU with bf16
    units), and recorded that. On a machine where `auto` means the other one a resume is not
    refused (the request is the same) and renders the missing frames in the recorded precision,
    byte for byte; only --restart resolves again."""
    recorded = manifest(reference.work)["precision"]
    assert manifest(reference.work)["job"]["settings"]["compute"]["precision"] == "auto"
    assert recorded == resolve_precision("auto", torch.device("cpu"))
    other = "fp32" if recorded == "bf16" else "bf16"
    # A machine where `auto` means the other (the render resolves it in pipeline.job).
    monkeypatch.setattr(
        job_module, "resolve_precision", lambda p, _device: p.replace("auto", other)
    )
    work = copy_work(reference, tmp_path / "work")
    for index in (COUNT - 2, COUNT - 1):
        (work / "frames" / f"{index:06d}.json").unlink()
        (work / "frames" / f"{index:06d}.png").unlink()
    args = video_args(inputs, tmp_path / "out.mp4", "--work-dir", str(work))
    done = run_in_process(args)
    assert done.code == 0, done.err
    assert_same_frames(work, reference)
    assert manifest(work)["precision"] == recorded

    done = run_in_process([*args, "--restart"])  # a new start on this machine: auto is `other`
    assert done.code == 0, done.err
    assert manifest(work)["precision"] == other
    redone = frame_bytes(work)
    assert sorted(redone) == sorted(reference.frames)
    assert any(redone[name] != reference.frames[name] for name in redone)


@pytest.mark.slow
def test_status_of_partial_work_dir(
    reference: Reference, run_in_process: RunInProcess, tmp_path: Path
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

    done = run_in_process(["status", work, "--json"])
    assert done.code == 0, done.err
    info = json.loads(done.out)
    assert info["done"] == 4
    assert info["total"] == COUNT
    assert info["seconds_per_frame"] == pytest.approx(mean, rel=1e-12)
    assert info["eta_seconds"] == pytest.approx(4 * mean, rel=1e-12)
    assert info["encode"] == "pending"
    assert info["output"] == str(reference.output)
    assert info["work_dir"] == str(work)
    assert (info["running"], info["owner"]) == (False, None)

    done = run_in_process(["status", work])
    assert done.code == 0, done.err
    eta = round(4 * mean)
    assert done.out == (
        f"4/{COUNT} frames done ({mean:.2f} s/frame, ETA 0:{eta // 60:02d}:{eta % 60:02d}); "
        f"output: {reference.output} (pending); not running\n"
    )

    done = run_in_process(["status", tmp_path / "nowhere"])
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


@pytest.mark.slow
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
    run_in_process: RunInProcess,
    tmp_path: Path,
    index: int,
    damage: Callable[[Path], None],
) -> None:
    work = copy_work(reference, tmp_path / "work")
    (work / "frames" / f"{index:06d}.json").unlink()
    damage(work / "frames" / f"{index:06d}.png")
    output = tmp_path / "out.mp4"
    done = run_in_process(video_args(inputs, output, "--work-dir", str(work)))
    assert done.code == 0, done.err
    assert_same_frames(work, reference)
    assert (work / "frames" / f"{index:06d}.json").is_file()  # proof it was rendered again
    assert_video(output)


@pytest.mark.slow
def test_disk_full_keeps_frames_and_continues(
    inputs: Inputs,
    reference: Reference,
    run_in_process: RunInProcess,
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
    done = run_in_process(video_args(inputs, output))
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
    done = run_in_process(video_args(inputs, output))
    assert done.code == 0, done.err
    assert_same_frames(work, reference)
    assert_video(output)


def test_unwritable_work_dir_is_one_line(
    inputs: Inputs, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    work = blocker / "work"
    done = run_in_process(video_args(inputs, tmp_path / "out.mp4", "--work-dir", str(work)))
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: cannot create work directory {work}: Not a directory; "
        "pass --work-dir DIR\n"
    )
    assert blocker.read_text() == "not a directory"


def test_existing_output_is_never_overwritten(
    inputs: Inputs, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    output = tmp_path / "taken.mp4"
    output.write_bytes(b"someone else's video")
    done = run_in_process(video_args(inputs, output))
    assert done.code == 1
    assert done.err == f"nst-video: error: {output} exists; pass --overwrite to replace it\n"
    assert output.read_bytes() == b"someone else's video"
    assert not (tmp_path / "taken.mp4.nst-work").exists()  # refused before any work


@pytest.mark.slow
def test_encode_is_idempotent_and_owns_only_its_output(
    inputs: Inputs,
    reference: Reference,
    run_in_process: RunInProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = copy_work(reference, tmp_path / "work")
    output = tmp_path / "out.mp4"
    args = video_args(inputs, output, "--work-dir", str(work))

    # A crash after the encoded file was renamed into place but before the manifest said so.
    real_write = WorkDir.write_manifest

    def crash_when_done(self: WorkDir, data: Manifest) -> None:
        if data.encode == "done":
            raise Interrupted(signal.SIGTERM)
        real_write(self, data)

    monkeypatch.setattr(WorkDir, "write_manifest", crash_when_done)
    done = run_in_process(args)
    assert done.code == 143
    assert f"nst-video resume {work}" in done.err
    assert output.is_file()
    assert manifest(work)["encode"] == "started"
    monkeypatch.setattr(WorkDir, "write_manifest", real_write)

    for _ in range(2):  # after the crash, then again after a clean finish: no --overwrite needed
        done = run_in_process(args)
        assert done.code == 0, done.err
        assert manifest(work)["encode"] == "done"
        assert_video(output)
    assert_same_frames(work, reference)

    # The same work dir pointed at a file it did not write must not take it for its own.
    other = tmp_path / "other.mp4"
    other.write_bytes(b"not ours")
    done = run_in_process(video_args(inputs, other, "--work-dir", str(work)))
    assert done.code == 1
    assert done.err == f"nst-video: error: {other} exists; pass --overwrite to replace it\n"
    assert other.read_bytes() == b"not ours"


@pytest.mark.slow
def test_image_sequence_to_directory_resumes(
    inputs: Inputs,
    reference: Reference,
    run_in_process: RunInProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out_dir = tmp_path / "out"
    args = video_args(inputs, f"{out_dir}/", source=inputs.sequence)
    work = tmp_path / "out.nst-work"

    real_save = FrameStore.save_frame

    def interrupt_after_3(self: FrameStore, index: int, image: np.ndarray, stats: dict) -> None:
        real_save(self, index, image, stats)
        if index == 2:
            raise Interrupted(signal.SIGINT)

    monkeypatch.setattr(FrameStore, "save_frame", interrupt_after_3)
    done = run_in_process(args)
    assert done.code == 130
    assert f"nst-video resume {work}" in done.err
    assert frames_done(work) == 3
    monkeypatch.setattr(FrameStore, "save_frame", real_save)

    # Then stopped again halfway through writing the output frames.
    real_write = ImageDirWriter.write

    def interrupt_at_output_4(self: ImageDirWriter, rgb: np.ndarray) -> None:
        if self.index == 4:
            raise Interrupted(signal.SIGTERM)
        real_write(self, rgb)

    monkeypatch.setattr(ImageDirWriter, "write", interrupt_at_output_4)
    done = run_in_process(["resume", work, "--quiet"])
    assert done.code == 143
    assert len(list(out_dir.iterdir())) == 4
    monkeypatch.setattr(ImageDirWriter, "write", real_write)

    for command in (["resume", work, "--quiet"], args):
        done = run_in_process(command)
        assert done.code == 0, done.err
    assert_same_frames(work, reference)
    written = {p.name: p.read_bytes() for p in sorted(out_dir.iterdir())}
    assert sorted(written) == [f"frame_{i:06d}.png" for i in range(COUNT)]
    assert all(written[f"frame_{i:06d}.png"] == reference.frames[f"{i:06d}.png"] for i in range(8))


# --- data safety: reports, outputs, work directories, locks (issue 11) --------------------------


@pytest.mark.slow
def test_report_follows_the_output_rules(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    output = tmp_path / "out.mp4"
    report = tmp_path / "frames.jsonl"
    report.write_text("someone's notes\n")
    args = video_args(inputs, output, "--work-dir", str(work), "--report", str(report))
    done = run_in_process(args)
    assert done.code == 1
    assert done.err == f"nst-video: error: {report} exists; pass --overwrite to replace it\n"
    assert report.read_text() == "someone's notes\n"
    assert not output.exists()

    done = run_in_process([*args, "--overwrite"])
    assert done.code == 0, done.err
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [row["frame"] for row in rows] == list(range(COUNT))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    done = run_in_process(args)  # our own report, byte for byte: replaced without --overwrite
    assert done.code == 0, done.err
    report.write_text("edited by hand\n")
    done = run_in_process(args)
    assert done.code == 1
    assert report.read_text() == "edited by hand\n"


@pytest.mark.slow
@pytest.mark.parametrize("target", ["input", "style", "weights", "output", "manifest"])
def test_report_is_never_an_input_or_the_output_even_with_overwrite(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path, target: str
) -> None:
    work = copy_work(reference, tmp_path / "work")
    clip = tmp_path / "clip.mkv"
    shutil.copy(inputs.clip, clip)
    style = tmp_path / "style.png"
    shutil.copy(inputs.style, style)
    weights = tmp_path / "w.pth"
    os.link(inputs.weights, weights)  # another name for the same file counts as the same file
    output = tmp_path / "out.mp4"
    output.write_bytes(b"old output")
    report = {
        "input": clip,
        "style": style,
        "weights": weights,
        "output": output,
        "manifest": work / "manifest.json",
    }[target]
    before = report.read_bytes()
    args = video_args(inputs, output, "--work-dir", str(work), "--report", str(report))
    args[1] = str(clip)
    args[args.index(str(inputs.style))] = str(style)
    args[args.index(str(inputs.weights))] = str(weights)
    done = run_in_process([*args, "--overwrite", "--restart"])
    assert done.code == 1
    assert done.err.count("\n") == 1 and done.err.startswith("nst-video: error: --report ")
    expected = {"manifest": "inside the work directory", "output": "is the output"}
    assert expected.get(target, "is also an input") in done.err
    assert report.read_bytes() == before
    assert frame_bytes(work) == reference.frames


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "style"])
def test_output_equal_to_an_input_is_refused_even_with_overwrite(
    inputs: Inputs, run_in_process: RunInProcess, tmp_path: Path, how: str
) -> None:
    clip = tmp_path / "clip.mkv"
    shutil.copy(inputs.clip, clip)
    original = clip.read_bytes()
    args = video_args(inputs, clip, "--overwrite", source=clip)
    if how == "symlink":
        (tmp_path / "alias.mkv").symlink_to(clip)
        args[args.index(str(clip), 2)] = str(tmp_path / "alias.mkv")
    elif how == "hard link":
        os.link(clip, tmp_path / "alias.mkv")
        args[args.index(str(clip), 2)] = str(tmp_path / "alias.mkv")
    elif how == "style":
        style = tmp_path / "style.mkv"  # a video as the style is odd, but must be safe
        style.write_bytes(b"style bytes")
        args[args.index(str(inputs.style))] = str(style)
        args[args.index(str(clip), 2)] = str(style)
    done = run_in_process(args)
    assert done.code == 1
    assert done.err.count("\n") == 1 and "is also an input" in done.err, done.err
    assert clip.read_bytes() == original
    assert not list(tmp_path.glob("*.nst-work"))


def test_output_directory_of_the_input_frames_is_refused(
    inputs: Inputs, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    frames = shutil.copytree(inputs.sequence, tmp_path / "frames")
    names = sorted(p.name for p in frames.iterdir())
    done = run_in_process(video_args(inputs, f"{frames}/", "--overwrite", source=frames))
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: output directory {frames}/ is also an input ({frames}); nst-video "
        "never writes over an input, not even with --overwrite: choose another path\n"
    )
    assert sorted(p.name for p in frames.iterdir()) == names


@pytest.mark.slow
def test_foreign_work_dir_is_refused_and_restart_keeps_the_source_images(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    # The reported loss: the input folder was <work-dir>/frames.
    work = tmp_path / "shoot"
    sources = shutil.copytree(inputs.sequence, work / "frames")
    listing = {p.name: p.read_bytes() for p in sources.iterdir()}
    output = tmp_path / "out.mp4"
    for extra in ([], ["--restart"], ["--restart", "--overwrite"]):
        done = run_in_process(
            video_args(inputs, output, "--work-dir", str(work), *extra, source=sources)
        )
        assert done.code == 1
        assert done.err == (
            f"nst-video: error: {work} is not empty and was not made by nst-video (no "
            "manifest.json); nothing in it was changed: choose another --work-dir\n"
        )
    assert {p.name: p.read_bytes() for p in sources.iterdir()} == listing
    assert sorted(p.name for p in work.iterdir()) == ["frames"]

    # A work directory of ours may not hold the input either.
    ours = copy_work(reference, tmp_path / "ours")
    shutil.copytree(inputs.sequence, ours / "frames", dirs_exist_ok=True)
    args = video_args(inputs, output, "--work-dir", str(ours), "--restart", source=ours / "frames")
    done = run_in_process(args)
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: input {ours / 'frames'} is inside the work directory {ours}; "
        "choose another --work-dir\n"
    )
    assert all((ours / "frames" / name).read_bytes() == data for name, data in listing.items())


@pytest.mark.slow
def test_restart_deletes_only_what_nst_video_wrote(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    keep = {
        work / "notes.txt": b"mine",
        work / "frames" / "f000.png": (inputs.sequence / "f000.png").read_bytes(),
        work / "frames" / "0001.png": b"not six digits",
        work / "segments" / "001" / "sketch.png": b"mine too",
    }
    for path, data in keep.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (work / "segments" / "000").mkdir()
    (work / "segments" / "000" / "000003.png").write_bytes(b"an old warm-up frame")
    output = tmp_path / "out.mp4"
    done = run_in_process(video_args(inputs, output, "--work-dir", str(work), "--frames", "2",
                               "--style-weight", "5", "--restart"))  # fmt: skip
    assert done.code == 0, done.err
    assert all(path.read_bytes() == data for path, data in keep.items())
    assert sorted(frame_bytes(work)) == ["000000.png", "000001.png"]
    assert not (work / "segments" / "000").exists()


@pytest.mark.slow
def test_directory_output_replaces_only_numbered_frames_and_leaves_no_stale_ones(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    (out / "frame_000099.png").write_bytes(b"someone else's frame")
    args = video_args(inputs, f"{out}/", "--work-dir", str(work))
    done = run_in_process(args)
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: {out} holds 1 numbered frames this render did not write (first: "
        "frame_000099.png); pass --overwrite to replace them (other files there are never "
        "touched)\n"
    )
    done = run_in_process([*args, "--overwrite"])
    assert done.code == 0, done.err
    expected = [f"frame_{i:06d}.png" for i in range(COUNT)]
    assert sorted(p.name for p in out.iterdir()) == [*expected, "notes.txt"]

    # A shorter render of ours removes its own frames past the new end: no mixed sequence.
    done = run_in_process([*args, "--frames", "5"])
    assert done.code == 0, done.err
    assert sorted(p.name for p in out.iterdir()) == [*expected[:5], "notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"
    # A frame edited by hand is no longer ours.
    (out / "frame_000002.png").write_bytes(b"retouched")
    done = run_in_process([*args, "--frames", "5"])
    assert done.code == 1
    assert "(first: frame_000002.png)" in done.err
    assert (out / "frame_000002.png").read_bytes() == b"retouched"


@pytest.mark.slow
def test_output_is_ours_by_content_not_by_path(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    output = tmp_path / "out.mp4"
    args = video_args(inputs, output, "--work-dir", str(work))
    assert run_in_process(args).code == 0
    ours = output.read_bytes()
    assert manifest(work)["owned"][str(output)] == [f"{len(ours)}:{_blake(ours)}"]
    assert run_in_process(args).code == 0  # ours: replaced freely
    output.write_bytes(b"a different file the user put here")
    done = run_in_process(args)
    assert done.code == 1
    assert done.err == f"nst-video: error: {output} exists; pass --overwrite to replace it\n"
    assert output.read_bytes() == b"a different file the user put here"


def _blake(data: bytes) -> str:
    import hashlib

    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _hold_lock(work: Path, owner: dict) -> int:
    import fcntl

    fd = os.open(work / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(owner).encode())
    return fd


@pytest.mark.slow
def test_busy_work_dir_fails_at_once_naming_the_other_process(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    output = tmp_path / "out.mp4"
    fd = _hold_lock(work, {"pid": 4242, "host": "render-box"})
    try:
        for args in (
            video_args(inputs, output, "--work-dir", str(work)),
            video_args(inputs, output, "--work-dir", str(work), "--restart", "--style-weight", "5"),
            ["resume", work, "--quiet"],
        ):
            done = run_in_process(args)
            assert done.code == 1
            assert done.err == (
                f"nst-video: error: {work} is in use by another nst-video process (pid 4242 on "
                "render-box); wait for it to finish or stop it (nst-video status shows it)\n"
            )
        assert frame_bytes(work) == reference.frames
        assert not output.exists()
        done = run_in_process(["status", work])
        assert done.code == 0 and done.out.endswith("; running (pid 4242 on render-box)\n")
        assert json.loads(run_in_process(["status", work, "--json"]).out)["owner"] == {
            "pid": 4242,
            "host": "render-box",
        }
    finally:
        os.close(fd)
    # A dead owner leaves its pid in the file but holds no lock: nothing blocks.
    assert json.loads((work / "lock").read_text())["pid"] == 4242
    assert run_in_process(["status", work]).out.endswith("; not running\n")
    done = run_in_process(video_args(inputs, output, "--work-dir", str(work)))
    assert done.code == 0, done.err
    assert_video(output)


@pytest.mark.slow
def test_a_second_process_is_refused_while_a_render_runs(
    inputs: Inputs, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    output = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.nst-work"
    # Long later frames (no early stop), so it is still running while the others start.
    proc = spawn(video_args(inputs, output, "--iterations", "5000", "--tolerance", "0"))
    assert wait_until(proc, lambda: frames_done(work) >= 1), stderr_of(proc)
    second = run_subprocess(["resume", str(work)], tmp_path)
    status = run_subprocess(["status", str(work)], tmp_path)
    kill(proc)
    assert second.returncode == 1
    assert second.stderr.startswith(f"nst-video: error: {work} is in use by another nst-video ")
    assert f"(pid {proc.pid} on " in second.stderr and second.stderr.count("\n") == 1
    assert f"; running (pid {proc.pid} on " in status.stdout
    assert frames_done(work) < COUNT  # it was indeed still rendering


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "{manifest} is damaged (no manifest format version); choose another --work-dir"),
        (
            '{"format": 1}',
            "{work} was written by an older nst-video (manifest format 1, this "
            "one reads 5); pass --restart to render it again",
        ),
        (
            '{"format": 2, "job": {}, "fingerprint": {}}',
            "{work} was written by an older nst-video (manifest format 2, this "
            "one reads 5); pass --restart to render it again",
        ),
        (
            '{"format": 3, "job": {}, "fingerprint": {}}',
            "{work} was written by an older nst-video (manifest format 3, this "
            "one reads 5); pass --restart to render it again",
        ),
        (
            '{"format": 4, "job": {}, "fingerprint": {}}',
            "{work} was written by an older nst-video (manifest format 4, this "
            "one reads 5); pass --restart to render it again",
        ),
        (
            '{"format": 99, "job": {}}',
            "{work} was written by a newer nst-video (manifest "
            "format 99, this one reads 5); continue it with that version",
        ),
        ("{not json", "cannot read {manifest}: not JSON"),
        (
            '{"format": 5}',
            "{manifest} is damaged (no job or fingerprint); choose another --work-dir",
        ),
    ],
    ids=["list", "format-1", "format-2", "format-3", "format-4", "newer", "garbage", "no-job"],
)
def test_bad_manifest_is_one_line_for_every_command(
    inputs: Inputs, run_in_process: RunInProcess, tmp_path: Path, content: str, message: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "manifest.json").write_text(content)
    expected = message.format(work=work, manifest=work / "manifest.json")
    commands = {
        "status": ["status", work],
        "resume": ["resume", work],
        "video": video_args(inputs, tmp_path / "out.mp4", "--work-dir", str(work)),
    }
    for args in commands.values():
        done = run_in_process(args)
        assert (done.code, done.err) == (1, f"nst-video: error: {expected}\n")


@pytest.mark.slow
def test_old_format_work_dir_renders_again_with_restart(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    (work / "manifest.json").write_text(json.dumps({**manifest(work), "format": 1}))
    output = tmp_path / "out.mp4"
    done = run_in_process(video_args(inputs, output, "--work-dir", str(work), "--restart"))
    assert done.code == 0, done.err
    assert_same_frames(work, reference)
    assert manifest(work)["format"] == 5
    assert manifest(work)["precision"] == resolve_precision("auto", torch.device("cpu"))


@pytest.mark.slow
def test_status_of_an_output_points_to_its_work_dir(
    reference: Reference, run_in_process: RunInProcess
) -> None:
    done = run_in_process(["status", reference.output])
    assert done.code == 1
    assert done.err == (
        f"nst-video: error: {reference.output} is not a render work directory (no "
        f"manifest.json); its work directory is {reference.work}\n"
    )


@pytest.mark.slow
def test_changed_input_frame_is_rendered_again_with_its_successors(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    sequence = shutil.copytree(inputs.sequence, tmp_path / "seq")
    output = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.nst-work"
    args = video_args(inputs, output, source=sequence)
    assert run_in_process(args).code == 0
    assert_same_frames(work, reference)
    stamps = {i: (work / "frames" / f"{i:06d}.json").stat().st_mtime_ns for i in range(COUNT)}

    changed = np.ascontiguousarray(np.asarray(Image.open(sequence / "f005.png"))[:, ::-1])
    Image.fromarray(changed).save(sequence / "f005.png")
    done = run_in_process(args)
    assert done.code == 0, done.err
    after = frame_bytes(work)
    for i in range(5):  # untouched: the very same files
        assert after[f"{i:06d}.png"] == reference.frames[f"{i:06d}.png"]
        assert (work / "frames" / f"{i:06d}.json").stat().st_mtime_ns == stamps[i]
    assert all(after[f"{i:06d}.png"] != reference.frames[f"{i:06d}.png"] for i in range(5, 8))

    # Exactly what a fresh render of the changed sequence gives.
    fresh = tmp_path / "fresh.mp4"
    assert run_in_process(video_args(inputs, fresh, source=sequence)).code == 0
    assert frame_bytes(tmp_path / "fresh.mp4.nst-work") == after


@pytest.mark.slow
def test_frame_range_is_not_a_result_setting(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    output = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.nst-work"
    done = run_in_process(video_args(inputs, output, "--frames", "5"))
    assert done.code == 0, done.err
    assert_video(output, 5)
    stamps = {i: (work / "frames" / f"{i:06d}.json").stat().st_mtime_ns for i in range(5)}

    # Longer: the 5 finished frames are reused, the rest continue their chain, and the result is
    # the uninterrupted 8-frame render.
    done = run_in_process(video_args(inputs, output, "--frames", "8"))
    assert done.code == 0, done.err
    assert_same_frames(work, reference)
    assert all(
        (work / "frames" / f"{i:06d}.json").stat().st_mtime_ns == stamps[i] for i in range(5)
    )
    assert_video(output, COUNT)
    # More frames than the clip has, then none given, then fewer: nothing is rendered again.
    for extra, count in ((["--frames", "1000"], COUNT), ([], COUNT), (["--frames", "3"], 3)):
        done = run_in_process([a for a in video_args(inputs, output, *extra) if a != "--quiet"])
        assert done.code == 0, done.err
        assert f"({count} frames, 0 rendered now)" in done.err
        assert_video(output, count)
    assert_same_frames(work, reference)

    # --start is one: frame k warm-starts from a chain that begins at the first frame.
    done = run_in_process(video_args(inputs, output, "--start", "2"))
    assert done.code == 1
    assert "--start 0 -> 2" in done.err


# --- work directories from before a setting existed ---------------------------------------------

_ADDED_SINCE = ("margin", "padding", "coarse_start", "coarse_step", "fine_share")


def _as_written_before_the_margin(work: Path, scales: int = 1) -> dict:
    """Rewrites a manifest as the version before --margin and --coarse-start wrote it."""
    data = manifest(work)
    for image in (data["job"]["settings"]["image"], data["fingerprint"]["settings"]["image"]):
        for name in _ADDED_SINCE:
            del image[name]
        image["scales"] = scales
    (work / "manifest.json").write_text(json.dumps(data))
    return data


@pytest.mark.slow
def test_a_work_dir_from_before_the_margin_continues_exactly(
    inputs: Inputs, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.mp4"
    assert run_in_process(video_args(inputs, whole, "--margin", "0")).code == 0
    expected = frame_bytes(tmp_path / "whole.mp4.nst-work")
    part = tmp_path / "part.mp4"
    assert run_in_process(video_args(inputs, part, "--margin", "0", "--frames", "4")).code == 0
    work = tmp_path / "part.mp4.nst-work"
    old = _as_written_before_the_margin(work)
    # Read as it rendered (no margin), the old job is intact, not "damaged".
    assert Manifest.from_dict(old).job.settings.image.margin == 0
    # Today's default (a 16 px margin) would mix two looks: refused, naming the one change.
    done = run_in_process(video_args(inputs, part))
    assert done.code == 1
    assert "rendered with other settings: --margin 0 -> 16;" in done.err
    # The old look, asked for, continues the old frames byte for byte.
    done = run_in_process(video_args(inputs, part, "--margin", "0"))
    assert done.code == 0, done.err
    assert frame_bytes(work) == expected


@pytest.mark.slow
def test_a_work_dir_made_with_scales_is_refused_in_one_line(
    inputs: Inputs, reference: Reference, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    old = _as_written_before_the_margin(work, scales=2)
    with pytest.raises(ResumeError) as caught:
        Manifest.from_dict(old)
    assert str(caught.value) == (
        "this render used --scales 2, which this version of nst-video no longer has; "
        "finish it with the version that began it, or pass --restart to render it again"
    )


def _as_written_with_a_fingerprint_of_before(work: Path) -> dict:
    """Rewrites a manifest as the version before settings came from one source wrote it (a
    video job's optim.iterations a copy of --first-iterations, image.init in the fingerprint),
    and as a version that predates a whole settings group (compute) and two video settings:
    settings added since, whose defaults render as before, need no format bump."""
    data = manifest(work)
    for settings in (data["job"]["settings"], data["fingerprint"]["settings"]):
        settings["optim"]["iterations"] = settings["video"]["first_iterations"]
        settings["image"]["init"] = "content"
        del settings["compute"]
        del settings["video"]["pass_blend"], settings["video"]["temporal_from_pass"]
    (work / "manifest.json").write_text(json.dumps(data))
    return data


@pytest.mark.slow
def test_a_work_dir_with_an_older_fingerprint_continues_exactly(
    inputs: Inputs, reference: Reference, run_in_process: RunInProcess, tmp_path: Path
) -> None:
    work = copy_work(reference, tmp_path / "work")
    old = _as_written_with_a_fingerprint_of_before(work)
    assert "compute" not in old["fingerprint"]["settings"]
    for name in ("000005.png", "000006.png", "000007.png"):
        (work / "frames" / name).unlink()
    output = tmp_path / "out.mp4"
    done = run_in_process(video_args(inputs, output, "--work-dir", str(work)))
    assert done.code == 0, done.err
    assert_same_frames(work, reference)
    # A missing setting is filled with its default, so a changed one is still named.
    (work / "manifest.json").write_text(json.dumps(old))
    again = tmp_path / "again.mp4"
    done = run_in_process(video_args(inputs, again, "--work-dir", str(work), "--pass-blend", "0.5"))
    assert done.code == 1
    assert "rendered with other settings: --pass-blend 1 -> 0.5;" in done.err
