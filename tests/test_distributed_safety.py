"""Parallel renders stopped mid-way (issue 21, items 6 and 12): SIGINT and SIGTERM behave as
without workers, and a render killed with -9 resumes without --workers to the same bytes.

Real `python -m nst_video` subprocesses on a local Ray, as in test_distributed.py, whose
fixtures and helpers these share.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_distributed
from test_distributed import (
    FRAMES,
    RENDER_TIMEOUT,
    Clip,
    finish,
    ray_only,
    ray_processes,
    render_args,
    start,
)

from nst_video.workdir.store import WorkDir

pytestmark = [pytest.mark.slow, pytest.mark.ray, ray_only]
clip = test_distributed.clip  # its module fixture: the 12-frame moving clip and a style


@pytest.fixture
def ray_dir() -> Iterator[Path]:
    """A fresh RAY_TMPDIR per test: the Ray processes of one render are told apart by it."""
    path = Path(tempfile.mkdtemp(prefix="nst-ray-", dir="/tmp"))
    yield path
    for pid in ray_processes(path, grace=0):  # only those this test started
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def env_for(weights: Path, ray_dir: Path, threads: str) -> dict[str, str]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "NST_VIDEO_WEIGHTS": str(weights),
        "RAY_TMPDIR": str(ray_dir),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("NST_VIDEO_DEBUG", None)
    return env


def frames_done(work: Path) -> int:
    return len(WorkDir(work).frames.done_frames(range(FRAMES)))


def wait_for(proc, ready) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + RENDER_TIMEOUT
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"the render ended first:\n{finish(proc).stderr}"
    assert ready(), "the render never reached the point to stop it at"


def frame_bytes(work: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((work / "frames").glob("*.png"))}


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_parallel_render_as_it_stops_one_process(
    signum: int, code: int, clip: Clip, tmp_path: Path, weights_file: Path, ray_dir: Path
) -> None:
    out, work = tmp_path / "out", tmp_path / "out.nst-work"
    proc = start(render_args(clip, out, "--workers", "2"), env_for(weights_file, ray_dir, "1"))
    wait_for(proc, lambda: frames_done(work) >= 1)
    proc.send_signal(signum)
    result = finish(proc)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and "SystemError" not in result.stderr
    assert result.stderr.endswith(
        f"nst-video: interrupted; finished frames are saved. Continue with:\n"
        f"  nst-video resume {work}\n"
    ), result.stderr
    assert ray_processes(ray_dir) == []
    assert frames_done(work) >= 1  # what was finished stays


def test_a_killed_parallel_render_resumes_on_one_process_to_the_same_bytes(
    clip: Clip, tmp_path: Path, weights_file: Path, ray_dir: Path
) -> None:
    # The reference: the same render, never stopped (OMP_NUM_THREADS=1, as the user set it).
    env = env_for(weights_file, ray_dir, "1")
    # Enough evaluations that 1 and 2 threads give other bytes (at 4 and 2 they did not).
    more = ["--first-iterations", "8", "--iterations", "6", "--workers", "2"]
    reference = finish(start(render_args(clip, tmp_path / "ref", *more), env))
    assert reference.returncode == 0, reference.stderr
    expected = frame_bytes(tmp_path / "ref.nst-work")
    assert len(expected) == FRAMES
    out, work = tmp_path / "out", tmp_path / "out.nst-work"
    proc = start(render_args(clip, out, *more), env)
    wait_for(proc, lambda: 2 <= frames_done(work) <= FRAMES - 3)
    proc.kill()
    proc.wait()
    # Resumed without --workers, and with another OMP_NUM_THREADS: the recorded count is kept.
    resumed = finish(start(["resume", str(work)], env_for(weights_file, ray_dir, "2")))
    assert resumed.returncode == 0, resumed.stderr
    got = frame_bytes(work)
    assert sorted(got) == sorted(expected)
    assert [n for n in got if got[n] != expected[n]] == []
    assert (
        "continuing with 1 CPU thread per process, as this render began (not 2): its frames "
        "depend on the count" in resumed.stderr
    )
    assert json.loads((work / "manifest.json").read_text())["threads"] == 1
