"""Benchmark (never a test): the seed tutorial's way, the previous default and today's default on
the same frames, in one process, one after the other.

* `tutorial`: every frame from its content, exactly 300 L-BFGS evaluations (no early stop), no
  warm start, no temporal term (the seed tutorial's loop, with our stable optimizer);
* `previous default`: the defaults before long-term offsets and channels-last CPU passes
  (`--temporal-offsets 1`, contiguous VGG layout);
* `default`: today's defaults.

Each way renders through the frame loop (sweep.FirstPass), like `nst-video video`. Columns: seconds
per frame, evaluations per frame (all frames, and later frames alone), the style and content
terms of the saved frames (Engine.measure, mean), and the adjacent warping error (as in
eval_temporal.py).

    nice -n 0 env OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_defaults.py \\
        --input tree.avi --style starry_night.jpg --model vgg16-caffe --weights W.pth \\
        --start 250 --dedupe --frames 4 --tutorial-frames 2 --size 256
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import with_layout
from bench_carry import cpu_name
from benchlib import add_network_options, network_label, with_network
from eval_temporal import extract_inputs, warping_errors, write_frames

from nst_video.api import make_engine
from nst_video.config import ComputeConfig, Settings
from nst_video.core.engine import Engine
from nst_video.media import open_source
from nst_video.media.images import read_image
from nst_video.pipeline.sweep import FirstPass
from nst_video.video import flow
from nst_video.workdir.store import WorkDir

TUTORIAL_EVALUATIONS = 300


def ways(base: Settings) -> dict[str, tuple[Settings, str]]:
    """Name -> (settings, VGG layout)."""
    video, optim = base.video, base.optim
    tutorial = replace(
        base,
        optim=replace(optim, tolerance=0.0, iterations=TUTORIAL_EVALUATIONS),
        video=replace(video, init="content", first_iterations=TUTORIAL_EVALUATIONS),
    )
    previous = replace(base, video=replace(video, temporal_offsets=(1,)))
    return {
        "tutorial": (tutorial, "cl"),
        "previous default": (previous, "nchw"),
        "default": (base, "cl"),
    }


def render(engine: Engine, in_dir: Path, count: int, size: int) -> tuple[list[dict], list, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = WorkDir(Path(tmp))
        work.frames_dir.mkdir(parents=True)
        began = time.perf_counter()
        FirstPass(
            engine, engine.settings.video, open_source(str(in_dir)), work.frames, range(count), size
        ).run()
        wall = time.perf_counter() - began
        stats = [work.frames.read_stats(i) for i in range(count)]
        outputs = [work.frames.load_frame(i) for i in range(count)]
    return stats, outputs, wall


def row(name: str, engine: Engine, inputs: list, stats: list, outputs: list, wall: float,
        flows: list[flow.FrameFlow]) -> dict[str, Any]:  # fmt: skip
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
        "warping_error": statistics.mean(warping_errors(outputs, flows[: len(outputs) - 1]))
        if len(outputs) > 1
        else None,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| way | frames | s/frame | evaluations/frame | later frames: evaluations, s | style | "
        "content | warping error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        later = f"{r['evals_later']:.1f}, {r['seconds_later']:.0f}" if r["evals_later"] else "-"
        warp = f"{r['warping_error']:.2e}" if r["warping_error"] is not None else "-"
        lines.append(
            f"| {r['way']} | {r['frames']} | {r['s_per_frame']:.0f} | {r['evals_per_frame']:.1f} | "
            f"{later} | {r['style']:.4f} | {r['content']:.3f} | {warp} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--style", required=True)
    add_network_options(parser)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--start", type=int, default=250)
    parser.add_argument("--frames", type=int, default=4, help="frames per default way")
    parser.add_argument("--tutorial-frames", type=int, default=2)
    parser.add_argument("--dedupe", action="store_true", help="skip repeated input frames")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    inputs, _, _ = extract_inputs(args)
    base = with_network(Settings(compute=ComputeConfig(device="cpu")), args)
    flows = [flow.frame_flow(a, b, "dis") for a, b in zip(inputs, inputs[1:], strict=False)]
    style = read_image(args.style)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        in_dir = Path(tmp) / "in"
        write_frames(in_dir, inputs)
        for name, (settings, layout) in ways(base).items():
            engine = with_layout(make_engine([style], settings, args.weights), layout)
            count = args.tutorial_frames if name == "tutorial" else len(inputs)
            stats, outputs, wall = render(engine, in_dir, count, args.size)
            rows.append(row(name, engine, inputs[:count], stats, outputs, wall, flows))
            print(json.dumps(rows[-1]), flush=True)
    machine = f"{cpu_name()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end"
    print(f"\n{network_label(args)}, {args.size} px, {machine}\n")
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
