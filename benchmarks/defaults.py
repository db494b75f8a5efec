"""Benchmark (never a test): the seed tutorial's way, the previous default and today's default on
the same frames, in one process, one after the other.

* `tutorial`: every frame from its content, exactly 300 L-BFGS evaluations (no early stop), no
  warm start, no temporal term (the seed tutorial's loop, with our stable optimizer);
* `previous default`: the defaults before long-term offsets and channels-last CPU passes
  (`--temporal-offsets 1`, contiguous VGG layout);
* `default`: today's defaults.

Each way renders through the pipeline's entry point, like `nst-video video`. Columns: seconds
per frame, evaluations per frame (all frames, and later frames alone), the style and content
terms of the saved frames (Engine.measure, mean), and the adjacent warping error (metrics.py).

    nice -n 0 env OMP_NUM_THREADS=1 python -m benchmarks defaults \\
        --input tree.avi --style starry_night.jpg --model vgg16-caffe --weights W.pth \\
        --start 250 --dedupe --frames 4 --tutorial-frames 2 --size 256
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import (
    Result,
    Table,
    add_budget_options,
    add_clip_options,
    add_network_options,
    add_tutorial_option,
    extract_inputs,
    progress,
    read_frames,
    read_report,
    render,
    tutorial_settings,
    with_budgets,
    with_network,
    write_frames,
)
from benchmarks.metrics import flows_between, mean_warping_error
from benchmarks.speed import with_layout
from nst_video.api import make_engine
from nst_video.config import ComputeConfig, Settings
from nst_video.core.engine import Engine
from nst_video.media.images import read_image
from nst_video.video.flow import FrameFlow

SUMMARY = "the seed tutorial's way, the previous default and today's default on the same frames"


def ways(base: Settings, tutorial_evaluations: int) -> dict[str, tuple[Settings, str]]:
    """Name -> (settings, VGG layout)."""
    previous = replace(base, video=replace(base.video, temporal_offsets=(1,)))
    return {
        "tutorial": (tutorial_settings(base, tutorial_evaluations), "cl"),
        "previous default": (previous, "nchw"),
        "default": (base, "cl"),
    }


def render_way(
    engine: Engine, settings: Settings, in_dir: Path, count: int, args: argparse.Namespace,
    tmp: Path,
) -> tuple[list[dict], list[np.ndarray], float]:  # fmt: skip
    """The first `count` frames of `in_dir` rendered like `nst-video video` with `engine` (made
    from `settings`): the report's rows, the frames and the wall seconds."""
    settings = replace(settings, video=replace(settings.video, frames=count))
    tmp.mkdir()
    report = tmp / "report.jsonl"
    wall = render(in_dir, args.style, tmp / "out", tmp / "work", settings, args.weights, report,
                  make_engine=lambda job: engine)  # fmt: skip
    return read_report(report), read_frames(tmp / "out"), wall


def row(name: str, engine: Engine, inputs: list, stats: list, outputs: list, wall: float,
        flows: list[FrameFlow]) -> dict[str, Any]:  # fmt: skip
    terms = [engine.measure(c, o) for c, o in zip(inputs, outputs, strict=True)]
    evals = [s["iterations"] for s in stats]
    return {
        "way": name,
        "frames": len(stats),
        "s_per_frame": wall / len(stats),
        "evals_per_frame": statistics.mean(evals),
        "evals_later": statistics.mean(evals[1:]) if len(evals) > 1 else None,
        "seconds_later": statistics.mean(s["seconds"] for s in stats[1:])
        if len(stats) > 1
        else None,
        "style": statistics.mean(t["style"] for t in terms),
        "content": statistics.mean(t["content"] for t in terms),
        "warping_error": mean_warping_error(outputs, flows),
    }


def table(rows: list[dict[str, Any]]) -> Table:
    columns = ["way", "frames", "s/frame", "evaluations/frame", "later frames: evaluations",
               "later frames: s", "style", "content", "warping error"]  # fmt: skip
    return Table("", columns, [
        [r["way"], r["frames"], r["s_per_frame"], r["evals_per_frame"], r["evals_later"],
         r["seconds_later"], r["style"], r["content"], r["warping_error"]]
        for r in rows
    ])  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_options(parser, frames=4, start=250)
    add_network_options(parser)
    add_budget_options(parser)
    parser.add_argument("--tutorial-frames", type=int, default=2)
    add_tutorial_option(parser)


def run(args: argparse.Namespace) -> Result:
    inputs, _, _ = extract_inputs(args)
    base = with_network(Settings(compute=ComputeConfig(device="cpu")), args)
    base = with_budgets(replace(base, image=replace(base.image, size=args.size)), args)
    flows = flows_between(inputs)
    style = read_image(args.style)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        in_dir = Path(tmp) / "in"
        write_frames(in_dir, inputs)
        for name, (settings, layout) in ways(base, args.tutorial_evaluations).items():
            engine = with_layout(make_engine([style], settings, args.weights), layout)
            count = args.tutorial_frames if name == "tutorial" else len(inputs)
            stats, outputs, wall = render_way(
                engine, settings, in_dir, count, args, Path(tmp) / name
            )
            rows.append(row(name, engine, inputs[:count], stats, outputs, wall, flows))
            progress(str(rows[-1]))
    return Result([table(rows)], {"rows": rows})
