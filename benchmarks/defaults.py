"""Benchmark (never a test): the seed tutorial's way, the previous default and today's default on
the same frames, in one process, one after the other (issue 24's one-run table).

* `tutorial`: every frame from its content, exactly 300 L-BFGS evaluations (no early stop), no
  warm start, no temporal term, fp32 (the seed tutorial's loop, with our stable optimizer and
  today's network and losses);
* `previous default`: the settings before issue 24 (previous_settings: 300 evaluations for the
  first frame, single scale; up to 100 for later ones; temporal weight 100; early stop at a
  relative improvement below 1e-3 over 20 evaluations; plain L-BFGS; fp32);
* `default`: today's defaults (`--precision auto`: bf16 on CPUs with bf16 units);
* `default, fp32` and `default, bf16`: today's defaults with that precision.

Each way renders through the pipeline's entry point, like `nst-video video`. Columns: CPU
seconds (this process's, so also the flow and the frame I/O) of the first frame, of a later
frame (mean) and of the whole clip with its ratio to the previous default; evaluations (first,
later mean); the independent VGG16 scores of the saved frames (metrics.py, mean over frames),
and the adjacent warping error (metrics.py).

    nice -n 0 env OMP_NUM_THREADS=1 python -m benchmarks defaults \\
        --input tree.avi --style starry_night_cropped.jpg --dedupe --frames 20 \\
        --tutorial-frames 2 --size 256 --networks hed tumor
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

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
from benchmarks.metrics import NetworkScores, flows_between, mean_warping_error
from nst_video.config import ComputeConfig, Settings
from nst_video.media.images import read_image
from nst_video.progress import FrameDone, FrameStarted
from nst_video.video.flow import FrameFlow

SUMMARY = "the seed tutorial's way, the previous default and today's default on the same frames"
SCORES = ("hed_style", "hed_content", "tumor_style", "tumor_content")


def previous_settings(base: Settings) -> Settings:
    """`base` with the settings of before issue 24: budgets, stop rule, temporal weight, plain
    L-BFGS, and fp32 (what `auto` meant on every CPU)."""
    return replace(
        base,
        optim=replace(base.optim, tolerance=1e-3, window=20, temporal_precondition=0.0),
        loss=replace(base.loss, temporal_weight=100.0),
        video=replace(base.video, first_iterations=300, iterations=100),
        image=replace(base.image, coarse_start=0),
        compute=replace(base.compute, precision="fp32"),
    )


def ways(base: Settings, tutorial_evaluations: int) -> dict[str, Settings]:
    return {
        # The seed tutorial computes in fp32, whatever `auto` means on this machine.
        "tutorial": tutorial_settings(
            replace(base, compute=replace(base.compute, precision="fp32")), tutorial_evaluations
        ),
        "previous default": previous_settings(base),
        "default": base,
        "default, fp32": replace(base, compute=replace(base.compute, precision="fp32")),
        "default, bf16": replace(base, compute=replace(base.compute, precision="bf16")),
    }


class FrameClock:
    """A progress callback: this process's CPU seconds per frame (FrameStarted to FrameDone)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def __call__(self, event: object) -> None:
        if isinstance(event, FrameStarted):
            self._start = time.process_time()
        elif isinstance(event, FrameDone):
            self.seconds.append(time.process_time() - self._start)


def render_way(
    settings: Settings, in_dir: Path, count: int, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    """The first `count` frames of `in_dir` rendered like `nst-video video`: the report's
    rows, the frames, CPU seconds per frame and for the whole render."""
    settings = replace(settings, video=replace(settings.video, frames=count))
    tmp.mkdir()
    report, clock = tmp / "report.jsonl", FrameClock()
    start = time.process_time()
    render(in_dir, args.style, tmp / "out", tmp / "work", settings, args.weights, report,
           progress=clock)  # fmt: skip
    cpu = time.process_time() - start
    return {"stats": read_report(report), "outputs": read_frames(tmp / "out"),
            "frame_cpu": clock.seconds, "cpu": cpu}  # fmt: skip


def row(name: str, inputs: list, done: dict[str, Any], flows: list[FrameFlow],
        scores: NetworkScores) -> dict[str, Any]:  # fmt: skip
    outputs, cpu = done["outputs"], done["frame_cpu"]
    evals = [s["iterations"] for s in done["stats"]]
    measured = [scores(o, c) for o, c in zip(outputs, inputs, strict=True)]
    return {
        "way": name,
        "frames": len(evals),
        "first_cpu_s": cpu[0],
        "later_cpu_s": statistics.mean(cpu[1:]) if len(cpu) > 1 else None,
        "clip_cpu_s": done["cpu"],
        "cpu_s_per_frame": done["cpu"] / len(evals),
        "evals_first": evals[0],
        "evals_later": statistics.mean(evals[1:]) if len(evals) > 1 else None,
        **{k: statistics.mean(m[k] for m in measured) for k in scores.columns},
        "warping_error": mean_warping_error(outputs, flows),
    }


def table(rows: list[dict[str, Any]]) -> Table:
    previous = next((r for r in rows if r["way"] == "previous default"), None)
    columns = ["way", "frames", "first frame CPU s", "later frame CPU s", "CPU s / frame",
               "vs previous (per frame)", "evaluations: first, later", *SCORES,
               "warping error"]  # fmt: skip
    out = Table("", columns)
    for r in rows:
        ratio = r["cpu_s_per_frame"] / previous["cpu_s_per_frame"] if previous else None
        later = f"{r['evals_later']:.1f}" if r["evals_later"] is not None else "-"
        out.rows.append([r["way"], r["frames"], r["first_cpu_s"], r["later_cpu_s"],
                         r["cpu_s_per_frame"], ratio, f"{r['evals_first']}, {later}",
                         *(r.get(k) for k in SCORES), r["warping_error"]])  # fmt: skip
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_options(parser, frames=20)
    add_network_options(parser)
    add_budget_options(parser)
    parser.add_argument("--tutorial-frames", type=int, default=2)
    add_tutorial_option(parser)
    parser.add_argument("--networks", nargs="*", default=["hed", "tumor"])
    parser.add_argument("--cache", type=Path, default=Path("bench-out/score-cache"))
    parser.add_argument("--ways", nargs="*", default=["tutorial", "previous default", "default"])


def run(args: argparse.Namespace) -> Result:
    inputs, _, _ = extract_inputs(args)
    base = with_network(Settings(compute=ComputeConfig(device="cpu")), args)
    base = with_budgets(replace(base, image=replace(base.image, size=args.size)), args)
    flows = flows_between(inputs)
    scores = NetworkScores(args.networks, args.cache, read_image(args.style))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        in_dir = Path(tmp) / "in"
        write_frames(in_dir, inputs)
        for name, settings in ways(base, args.tutorial_evaluations).items():
            if name not in args.ways:
                continue
            count = args.tutorial_frames if name == "tutorial" else len(inputs)
            done = render_way(settings, in_dir, count, args, Path(tmp) / name.replace(" ", "-"))
            rows.append(row(name, inputs[:count], done, flows, scores))
            progress(str(rows[-1]))
    return Result([table(rows)], {"rows": rows})
