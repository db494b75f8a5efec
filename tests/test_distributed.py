"""Parallel segment renders on a local Ray instance (`--workers N`), and the CLI around them.

The renders run as real `python -m nst_video` subprocesses, each starting (and on exit stopping)
its own local Ray; they are module fixtures shared by the tests, so Ray starts only twice. Every
Ray process they start carries RAY_TMPDIR=<a fresh directory> in its environment, which is how
the tests tell that none is left behind without touching anyone else's Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nst_video.api import engine_for
from nst_video.cli import app, main
from nst_video.config import OptimConfig, Settings, VideoConfig
from nst_video.errors import OptionError
from nst_video.media.images import read_image
from nst_video.pipeline.distributed import (
    RAY_MISSING,
    DriverGone,
    DriverWatch,
    render_segment_task,
    write_driver_file,
)
from nst_video.video.segments import Segment, blend_weight
from nst_video.workdir.manifest import Job
from nst_video.workdir.status import segment_status
from nst_video.workdir.store import FrameStore, WorkDir

FRAMES = 12
RENDER_TIMEOUT = 150  # seconds; a healthy 12-frame render takes ~15 s on 2 loaded cores
runner = CliRunner()


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


ray_only = pytest.mark.skipif(not ray_available(), reason="Ray is not installed (nst-video[ray])")


# --- fixtures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    frames: Path  # directory of PNG frames
    style: Path


@dataclass(frozen=True)
class Render:
    out: Path  # directory output: lossless frames
    work: Path
    process: subprocess.CompletedProcess
    leftovers: list[int]  # Ray processes still alive after the render exited


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, make_moving_frames: Callable[..., list]) -> Clip:
    root = tmp_path_factory.mktemp("seg-clip")
    (root / "in").mkdir()
    for index, frame in enumerate(make_moving_frames(FRAMES, 48, 32)):
        Image.fromarray(frame).save(root / "in" / f"f_{index:03d}.png")
    Image.fromarray(make_moving_frames(1, 40, 40, step=0)[0][:, ::-1].copy()).save(
        root / "style.png"
    )
    return Clip(root / "in", root / "style.png")


@pytest.fixture(scope="module")
def ray_tmp() -> Iterator[Path]:
    # Short, under /tmp: Ray's unix sockets live below it and their paths are length-limited.
    path = Path(tempfile.mkdtemp(prefix="nst-ray-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def render_env(weights_file: Path, ray_tmp: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "NST_VIDEO_WEIGHTS": str(weights_file),
        "RAY_TMPDIR": str(ray_tmp),
        "RAY_USAGE_STATS_ENABLED": "0",  # no usage report over the network
    }
    env.pop("NST_VIDEO_DEBUG", None)
    return env


def render_args(clip: Clip, out: Path, *extra: str) -> list[str]:
    return [
        "video", str(clip.frames), "--style", str(clip.style), "--output", f"{out}/",
        "--size", "32", "--first-iterations", "4", "--iterations", "2", "--device", "cpu",
        "--quiet", "--segment-warmup", "4", *extra,
    ]  # fmt: skip


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nst_video", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = RENDER_TIMEOUT) -> subprocess.CompletedProcess:
    """Wait for the render; past the timeout, interrupt it (its finally stops Ray) and fail."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"render did not finish in {timeout} s; stderr:\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def ray_processes(ray_tmp: Path, grace: float = 15.0) -> list[int]:
    """Live processes started with our RAY_TMPDIR, after waiting up to `grace` s for them to go.

    Ray workers rename themselves (ray::IDLE), so their environment, which they inherit from the
    driver, is what marks them as ours.
    """
    marker = f"RAY_TMPDIR={ray_tmp}".encode()
    deadline = time.monotonic() + grace
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in environ.split(b"\0") and state != "Z":
                found.append(int(entry.name))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def run_render(clip: Clip, root: Path, env: dict[str, str], ray_tmp: Path, *extra: str) -> Render:
    out = root / "out"
    process = finish(start(render_args(clip, out, *extra), env))
    assert process.returncode == 0, process.stderr
    leftovers = ray_processes(ray_tmp) if "--workers" in extra else []
    return Render(out, root / "out.nst-work", process, leftovers)


@pytest.fixture(scope="module")
def one_worker(
    clip: Clip, tmp_path_factory: pytest.TempPathFactory, render_env: dict[str, str], ray_tmp: Path
) -> Render:
    return run_render(clip, tmp_path_factory.mktemp("one"), render_env, ray_tmp)


@pytest.fixture(scope="module")
def two_workers(
    clip: Clip, tmp_path_factory: pytest.TempPathFactory, render_env: dict[str, str], ray_tmp: Path
) -> Render:
    if not ray_available():
        pytest.skip("Ray is not installed (nst-video[ray])")
    return run_render(clip, tmp_path_factory.mktemp("two"), render_env, ray_tmp, "--workers", "2")


def plan_of(work: Path) -> dict:
    return json.loads((work / "manifest.json").read_text())["plan"]


def output_frames(out: Path) -> list[np.ndarray]:
    return [read_image(p) for p in sorted(out.glob("*.png"))]


# --- two workers vs one -------------------------------------------------------------------------

EXPECTED_SEGMENTS = [
    {"index": 0, "start": 0, "stop": 6, "warmup": 0},
    {"index": 1, "start": 6, "stop": 12, "warmup": 4},
]


@pytest.mark.slow
@pytest.mark.ray
@ray_only
def test_two_workers_render_every_frame_like_one(one_worker: Render, two_workers: Render) -> None:
    assert sorted(p.name for p in two_workers.out.glob("*.png")) == sorted(
        p.name for p in one_worker.out.glob("*.png")
    )
    assert len(list(two_workers.out.glob("*.png"))) == FRAMES
    assert WorkDir(two_workers.work).frames.done_frames(range(FRAMES)) == list(range(FRAMES))
    assert plan_of(one_worker.work)["segments"] is None
    assert plan_of(two_workers.work)["segments"] == EXPECTED_SEGMENTS
    assert "wrote" not in two_workers.process.stderr  # --quiet
    # Segment 1 rendered its 4 warm-up frames into its own folder, and only those.
    warm = sorted(p.name for p in (two_workers.work / "segments" / "001").glob("*.png"))
    assert warm == [f"{i:06d}.png" for i in range(2, 6)]
    assert not list((two_workers.work / "segments" / "000").glob("*.png"))


@pytest.mark.slow
@pytest.mark.ray
@ray_only
def test_first_segment_matches_the_single_worker_render(
    one_worker: Render, two_workers: Render
) -> None:
    # Same chain from frame 0 on: segment 0 is the single-worker render's first 6 frames (up to
    # float noise from a different thread count); segment 1 starts its own chain.
    one, two = output_frames(one_worker.out), output_frames(two_workers.out)
    for index in (0, 1):
        diff = np.abs(one[index].astype(int) - two[index].astype(int))
        assert diff.mean() < 1.0, index
    assert np.abs(one[11].astype(int) - two[11].astype(int)).mean() > 0


@pytest.mark.slow
@pytest.mark.ray
@ray_only
def test_seam_frames_are_the_crossfade_of_both_segments(two_workers: Render) -> None:
    work = WorkDir(two_workers.work)
    segment = Segment(**EXPECTED_SEGMENTS[1])
    warm = work.segment_frames(segment)
    out = output_frames(two_workers.out)
    differs = 0
    for index in range(FRAMES):
        stored = work.frames.load_frame(index)
        assert stored is not None
        if index not in segment.overlap:
            np.testing.assert_array_equal(out[index], stored, err_msg=f"frame {index}")
            continue
        alpha = (index - 2 + 1) / 5  # 0.2, 0.4, 0.6, 0.8 over frames 2-5
        assert blend_weight(segment, index) == pytest.approx(alpha)
        other = warm.load_frame(index)
        assert other is not None
        expected = np.rint((1 - alpha) * stored + alpha * other.astype(np.float64))
        np.testing.assert_array_equal(out[index], expected.astype(np.uint8), f"frame {index}")
        differs += int(np.any(stored != other))
    assert differs == 4  # the two chains really differ over the overlap: blending did something


@pytest.mark.slow
@pytest.mark.ray
@ray_only
def test_no_ray_process_outlives_the_render(two_workers: Render) -> None:
    assert two_workers.leftovers == []
    for data in EXPECTED_SEGMENTS:
        worker = json.loads(
            (two_workers.work / "segments" / f"{data['index']:03d}" / "worker.json").read_text()
        )
        assert not Path(f"/proc/{worker['pid']}").exists() or _zombie(worker["pid"])


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# --- status ------------------------------------------------------------------------------------


@pytest.fixture
def partial_work(two_workers: Render, tmp_path: Path) -> Path:
    """A copy of the two-worker work directory with frames 8-11 of segment 1 not done yet."""
    work = tmp_path / "work"
    shutil.copytree(two_workers.work, work)
    for index in range(8, 12):
        (work / "frames" / f"{index:06d}.png").unlink()
    return work


@pytest.mark.slow
@pytest.mark.ray
@ray_only
def test_status_lists_segments(partial_work: Path) -> None:
    workers = [
        json.loads((partial_work / "segments" / f"{k:03d}" / "worker.json").read_text())
        for k in (0, 1)
    ]
    result = runner.invoke(app, ["status", str(partial_work)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("8/12 frames done (")
    assert lines[1:] == [
        f"  segment 0: frames 0-5, 6/6 done, warm-up 0, "
        f"worker pid {workers[0]['pid']} on {workers[0]['host']}",
        f"  segment 1: frames 6-11, 2/6 done, warm-up 4, "
        f"worker pid {workers[1]['pid']} on {workers[1]['host']}",
    ]


@pytest.mark.slow
@pytest.mark.ray
@ray_only
def test_status_json_has_segments(partial_work: Path) -> None:
    result = runner.invoke(app, ["status", str(partial_work), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (info["done"], info["total"]) == (8, 12)
    rows = info["segments"]
    assert [(r["index"], r["start"], r["stop"], r["warmup"]) for r in rows] == [
        (0, 0, 6, 0),
        (1, 6, 12, 4),
    ]
    assert [(r["done"], r["total"]) for r in rows] == [(6, 6), (2, 6)]
    assert all(isinstance(r["worker"]["pid"], int) and r["worker"]["host"] for r in rows)


def test_segment_status_before_any_worker_started(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    work.frames_dir.mkdir()
    rows = segment_status(work, [Segment(0, 0, 3, 0)])
    assert rows == [{"index": 0, "start": 0, "stop": 3, "warmup": 0, "done": 0, "total": 3,
                     "worker": None, "pass": None}]  # fmt: skip


# --- a worker killed mid-segment -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.ray
@ray_only
def test_killed_worker_is_retried(
    clip: Clip, tmp_path: Path, render_env: dict[str, str], ray_tmp: Path
) -> None:
    out, work = tmp_path / "out", tmp_path / "out.nst-work"
    warm_dir = work / "segments" / "001"
    proc = start(render_args(clip, out, "--workers", "2"), render_env)
    killed = None
    try:
        deadline = time.monotonic() + RENDER_TIMEOUT
        # Kill segment 1's worker once it has rendered some of its frames but not all of them.
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            done = len(list(warm_dir.glob("*.png"))) + len(
                WorkDir(work).frames.done_frames(range(6, FRAMES))
            )
            info = warm_dir / "worker.json"
            if 0 < done < 10 and info.is_file():
                killed = json.loads(info.read_text())["pid"]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.02)
    finally:
        result = finish(proc)
    assert killed is not None, f"never saw segment 1 mid-way; stderr:\n{result.stderr}"
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob("*.png"))) == FRAMES
    assert WorkDir(work).frames.done_frames(range(FRAMES)) == list(range(FRAMES))
    assert len(list(warm_dir.glob("*.png"))) == 4
    # The retry ran in a new worker process, which resumed the segment from the work directory.
    assert json.loads((warm_dir / "worker.json").read_text())["pid"] != killed
    assert ray_processes(ray_tmp) == []


# --- option errors (no Ray started) ------------------------------------------------------------


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes `import ray` raise ImportError, as on a machine without the extra.
    monkeypatch.setitem(sys.modules, "ray", None)


def test_workers_without_ray_is_one_line_error(
    no_ray: None,
    clip: Clip,
    tmp_path: Path,
    weights_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, render_args(clip, out, "--workers", "2"))
    assert result.exit_code == 1
    assert isinstance(result.exception, OptionError)
    assert str(result.exception) == RAY_MISSING
    assert 'pip install "nst-video[ray]"' in RAY_MISSING
    assert not out.exists() and not (tmp_path / "out.nst-work").exists()  # refused before work
    # Through the console entry point: one line on stderr, exit status 1.
    monkeypatch.delenv("NST_VIDEO_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["nst-video", *render_args(clip, out, "--workers", "3")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"nst-video: error: {RAY_MISSING}\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--ray-address", "ray://head:10001"],
            "--ray-address needs --workers N (N >= 2): the number of segments to render in "
            "parallel",
        ),
        (
            ["--ray-address", "auto", "--workers", "1"],
            "--ray-address needs --workers N (N >= 2): the number of segments to render in "
            "parallel",
        ),
        (["--workers", "0"], "--workers must be >= 1, got 0"),
    ],
)
def test_parallel_option_errors(
    extra: list[str], message: str, clip: Clip, tmp_path: Path, weights_env: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, render_args(clip, out, *extra))
    assert result.exit_code == 1
    assert isinstance(result.exception, OptionError)
    assert str(result.exception) == message
    assert not (tmp_path / "out.nst-work").exists()


# --- a driver killed with -9: its tasks stop instead of rendering on (issue 11) ----------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _segment_job(clip: Clip, tmp_path: Path, weights_file: Path) -> dict:
    settings = Settings(
        optim=OptimConfig(iterations=2),
        video=VideoConfig(first_iterations=2, iterations=1, segment_warmup=0),
    )
    job = Job(str(clip.frames), (str(clip.style),), f"{tmp_path}/out/", str(weights_file), None,
              settings)  # fmt: skip
    return job.to_dict()


def test_driver_watch_signs_of_an_abandoned_render(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    driver = write_driver_file(work)
    DriverWatch(tmp_path, driver).check()  # alive, and the run is still ours
    dead = {**driver, "pid": _dead_pid()}
    with pytest.raises(DriverGone, match=rf"the driver \(pid {dead['pid']}\) has exited"):
        DriverWatch(tmp_path, dead).check()
    # Another run took the work directory over (a pid on another node cannot be checked).
    elsewhere = {**driver, "host": "another-node"}
    watch = DriverWatch(tmp_path, elsewhere)
    watch.check()
    write_driver_file(work)
    watch.check()  # checked a moment ago: no second read within WATCH_INTERVAL
    with pytest.raises(DriverGone, match="another run .* took over the work directory"):
        watch.check(force=True)
    (tmp_path / "segments" / "driver.json").unlink()  # --restart removed the old plan
    with pytest.raises(DriverGone, match="driver.json is gone"):
        DriverWatch(tmp_path, elsewhere).check()


def test_segment_task_of_a_dead_driver_renders_nothing(
    clip: Clip, tmp_path: Path, weights_file: Path
) -> None:
    work = tmp_path / "out.nst-work"
    driver = {**write_driver_file(WorkDir(work)), "pid": _dead_pid()}
    segment = Segment(0, 0, 3, 0).as_dict()
    with pytest.raises(DriverGone):
        job = _segment_job(clip, tmp_path, weights_file)
        render_segment_task(job, str(work), segment, 32, engine_for, driver)
    assert WorkDir(work).frames.done_frames(range(FRAMES)) == []


def test_segment_task_stops_before_saving_once_another_run_took_over(
    clip: Clip, tmp_path: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "out.nst-work"
    driver = write_driver_file(WorkDir(work))
    original = FrameStore.save_frame

    def save_then_take_over(self: FrameStore, index: int, image: np.ndarray, stats: dict) -> None:
        original(self, index, image, stats)
        write_driver_file(WorkDir(work))  # a new run (say --restart) starts after frame 0

    monkeypatch.setattr(FrameStore, "save_frame", save_then_take_over)
    segment = Segment(0, 0, 4, 0).as_dict()
    with pytest.raises(DriverGone):
        job = _segment_job(clip, tmp_path, weights_file)
        render_segment_task(job, str(work), segment, 32, engine_for, driver)
    assert WorkDir(work).frames.done_frames(range(FRAMES)) == [0]
