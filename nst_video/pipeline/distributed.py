"""Render the segments of one clip in parallel as Ray tasks (optional extra: nst-video[ray]).

The driver plans segments, submits one task per segment (each pinned to a GPU, or one CPU
worker), and encodes once all are done. Tasks only share the work directory: on a cluster it
must be a path every node sees (a shared filesystem); nothing relies on shared memory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nst_video.core.device import use_threads
from nst_video.errors import Interrupted, NstError, OptionError, is_out_of_memory, plural
from nst_video.media import open_source
from nst_video.pipeline.passes import render_passes
from nst_video.pipeline.styling import guided_source
from nst_video.pipeline.sweep import EngineFactory
from nst_video.progress import Callback, FrameDone, Message, ignore
from nst_video.video.segments import Segment
from nst_video.workdir.manifest import Job
from nst_video.workdir.store import FrameStore, WorkDir

RAY_MISSING = 'Ray is not installed; install it with: pip install "nst-video[ray]"'
WATCH_INTERVAL = 1.0  # seconds between a task's checks that its driver is still there
WAIT_STEP = 0.5  # seconds the driver waits on its tasks between progress and signal checks
MAX_RETRIES = 3  # a lost worker's task runs again and resumes from the work directory


def require_ray() -> Any:
    try:  # optional (nst-video[ray]): imported only when a render asks for workers
        import ray
    except ImportError:
        raise OptionError(RAY_MISSING) from None
    return ray


class DriverGone(NstError):
    """The render this task belongs to was abandoned (its driver died or another run began)."""


class DriverWatch:
    """Stops a segment task whose driver is gone, within about a second and always before it
    saves a frame. After a kill -9 of the driver, Ray reaps its workers only seconds later, and
    meanwhile a new run (say with --restart and other settings) may own the work directory.

    Two signs, checked at most every WATCH_INTERVAL from the progress events: the driver's pid
    no longer exists (when it ran on this host; a pid on another node cannot be checked), or
    segments/driver.json no longer names this run (a new run rewrote or removed it: this works
    across nodes through the shared filesystem).
    """

    def __init__(self, work_path: Path, driver: dict[str, Any]):
        self.path = WorkDir(work_path).driver_path
        self.driver = driver
        self._checked = -float("inf")

    def __call__(self, _event: object) -> None:
        self.check()

    def check(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < WATCH_INTERVAL:
            return
        self._checked = now
        reason = self._gone()
        if reason:
            raise DriverGone(f"stopping segment work: {reason}")

    def _gone(self) -> str | None:
        pid, host = self.driver["pid"], self.driver["host"]
        if host == socket.gethostname() and not _pid_alive(pid):
            return f"the driver (pid {pid}) has exited"
        try:
            current = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return f"{self.path} is gone; another run took over the work directory"
        if current.get("run") != self.driver["run"]:
            return f"another run (pid {current.get('pid')}) took over the work directory"
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_driver_file(work: WorkDir) -> dict[str, Any]:
    """Claim the segments for this run; tasks of an earlier run stop when they see it."""
    driver = {"pid": os.getpid(), "host": socket.gethostname(), "run": uuid.uuid4().hex}
    work.write_driver(driver)
    return driver


def render_segment_task(
    job_data: dict[str, Any],
    work_path: str,
    segment_data: dict[str, int],
    long_side: int,
    make_engine: EngineFactory,
    driver: dict[str, Any] | None = None,
    threads: int | None = None,
) -> int:
    """One Ray task: render (or resume) one segment into the shared work directory with the
    engine `make_engine` builds; stops (DriverGone) once `driver`, the run that started it, is
    gone."""
    job = Job.from_dict(job_data)
    segment = Segment(**segment_data)
    watch = DriverWatch(Path(work_path), driver) if driver is not None else None
    if watch is not None:
        watch.check(force=True)  # a retry after the driver died must not start at all
    work = WorkDir(Path(work_path))
    # The driver is checked before every save, not only every second.
    check = (lambda: watch.check(force=True)) if watch is not None else None
    passes = job.settings.video.passes

    def stores(number: int) -> FrameStore:
        # Each segment runs its own passes over its frames, warm-up included.
        return work.segment_pass_frames(segment, number, passes, before_save=check)

    stores(passes).remove_temporaries()  # a killed earlier attempt's half-written warm-up frames
    worker = {"pid": os.getpid(), "host": socket.gethostname()}
    work.write_worker(segment.index, worker)
    engine = make_engine(job)
    use_threads(threads)  # after the engine: building it set the process default
    plain = open_source(job.input, job.settings.video.fps)
    source = guided_source(plain, job.settings.video, segment.frames)
    callback = watch if watch is not None else ignore
    video = job.settings.video
    return render_passes(engine, video, source, stores, segment.frames, long_side, callback)


class SignalFlag:
    """SIGINT and SIGTERM while Ray runs: recorded, and raised as Interrupted between waits.

    Raised from the handler, the exception surfaced inside Ray's C++ wait as a SystemError
    traceback (exit 1); and ray.init installs its own SIGTERM handler (exit 1, a C++ dump, no
    resume hint). So this handler only records, installed after ray.init, and the handlers
    found before (the render's) come back once Ray is shut down.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.main = threading.current_thread() is threading.main_thread()
        self.previous = {s: signal.getsignal(s) for s in self.SIGNALS} if self.main else {}

    def install(self) -> None:
        for signum in self.previous:
            signal.signal(signum, self._record)

    def _record(self, signum: int, _frame: object) -> None:
        self.received = self.received or signum

    def check(self) -> None:
        if self.received is not None:
            raise Interrupted(self.received)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _start_ray(
    ray: Any, workers: int, address: str | None, cpu_only: bool, threads: int | None
) -> dict[str, Any]:
    """Connect to a cluster or start a local instance; returns the per-task resources.
    `threads`: each task's CPU threads, the count the work directory recorded (None: the
    worker's default)."""
    if address:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        gpus = 0 if cpu_only else ray.cluster_resources().get("GPU", 0)
    else:
        gpus = 0 if cpu_only else min(workers, torch.cuda.device_count())
        ray.init(
            num_cpus=workers,
            num_gpus=gpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
    resources: dict[str, Any] = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    if threads is not None:  # float sums depend on it: every task renders with the same count
        resources["runtime_env"] = {"env_vars": {"OMP_NUM_THREADS": str(threads)}}
    return resources


def render_segments(
    job: Job,
    work: WorkDir,
    segments: Sequence[Segment],
    long_side: int,
    workers: int,
    address: str | None,
    callback: Callback,
    make_engine: EngineFactory,
    threads: int | None = None,
) -> None:
    """Run every segment as a Ray task and wait; re-raises the first user error as itself, and
    SIGINT / SIGTERM as Interrupted once Ray is shut down. `threads`: see _start_ray."""
    ray = require_ray()
    cpu_only = job.settings.compute.device == "cpu"
    signals = SignalFlag()
    try:
        resources = _start_ray(ray, workers, address, cpu_only, threads)
        signals.install()
        signals.check()
        task = ray.remote(max_retries=MAX_RETRIES)(render_segment_task).options(**resources)
        data = job.to_dict()
        driver = write_driver_file(work)
        pending = [
            task.remote(data, str(work.path), s.as_dict(), long_side, make_engine, driver, threads)
            for s in segments
        ]
        callback(
            Message(
                f"rendering {plural(len(segments), 'segment')} on "
                f"{'ray ' + address if address else f'{workers} local workers'}"
            )
        )
        total = sum(len(range(s.start, s.stop)) for s in segments)
        reported = 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=WAIT_STEP)
            signals.check()
            for ref in ready:
                _get(ray, ref, work)
            reported = _report_progress(work, segments, total, reported, callback)
    finally:
        ray.shutdown()
        signals.restore()
    signals.check()


def _get(ray: Any, ref: Any, work: WorkDir) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, NstError) or is_out_of_memory(exc.cause):
            raise exc.cause from None  # the CLI's one line, as without workers
        raise
    except ray.exceptions.RayError as exc:  # worker or node lost more often than retried
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NstError(
            f"a segment failed after {MAX_RETRIES} retries ({reason}); finished frames are "
            f"kept: run nst-video resume {work.path}"
        ) from exc


def _report_progress(
    work: WorkDir, segments: Sequence[Segment], total: int, reported: int, callback: Callback
) -> int:
    done = sum(len(work.frames.done_frames(range(s.start, s.stop))) for s in segments)
    for count in range(reported + 1, done + 1):
        callback(FrameDone(-1, count, total, "segment", 0, 0.0, {}))
    return max(reported, done)
