"""What the benchmark scripts share: the network options and an in-process `video` render.

Not part of the package: scripts import it as a sibling module (`python scripts/x.py` puts
scripts/ first on sys.path).
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace
from pathlib import Path

from nst_video.api import engine_for
from nst_video.config import LossConfig, Settings
from nst_video.models import MODEL_NAMES
from nst_video.pipeline.job import Parallel, render_video
from nst_video.workdir.manifest import Job


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """--model, --weights and --style-weight, the same in every benchmark."""
    parser.add_argument(
        "--model",
        default=LossConfig().model,
        choices=MODEL_NAMES,
        help="network the weights file holds (default: the library's)",
    )
    parser.add_argument("--weights", help="weights file for --model (default: $NST_VIDEO_WEIGHTS)")
    parser.add_argument(
        "--style-weight", type=float, help="style weight (default: the library's default)"
    )


def with_network(settings: Settings, args: argparse.Namespace) -> Settings:
    """`settings` with the network and style weight the command line asked for."""
    loss = replace(settings.loss, model=args.model)
    if getattr(args, "style_weight", None) is not None:
        loss = replace(loss, style_weight=args.style_weight)
    return replace(settings, loss=loss)


def network_label(args: argparse.Namespace) -> str:
    weights = Path(args.weights).name if args.weights else "default download"
    return f"{args.model} ({weights})"


def render(
    input_path: str | Path,
    style: str | Path,
    frames_dir: Path,
    work_dir: Path,
    settings: Settings,
    weights: str | None,
    report: Path | None = None,
    workers: int = 1,
    restart: bool = True,
) -> float:
    """What `nst-video video INPUT -s STYLE -o FRAMES_DIR/ --overwrite --restart` does, with
    any Settings (the CLI of this branch has no --model); returns the wall seconds.
    restart=False continues the frames already in `work_dir` (same settings), like a rerun.

    As in the CLI, the optimizer's own budget is the first frame's.
    """
    settings = replace(
        settings, optim=replace(settings.optim, iterations=settings.video.first_iterations)
    )
    job = Job(
        str(Path(input_path).resolve()),
        (str(Path(style).resolve()),),
        str(frames_dir.resolve()) + "/",
        str(Path(weights).resolve()) if weights else None,
        str(report.resolve()) if report else None,
        settings,
    )
    start = time.perf_counter()
    render_video(
        job,
        work_dir,
        engine_for,
        overwrite=True,
        restart=restart,
        parallel=Parallel(workers),
    )
    return time.perf_counter() - start


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
