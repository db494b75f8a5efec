"""Benchmark: do segment seams of a parallel render (`--workers N`) show as temporal jumps?

Renders a clip as `nst-video video --workers N` does (in this process, through the pipeline's
entry point, so
any --model works; PNG frames, lossless), then scores every consecutive output pair (i-1, i)
with the temporal warping error (Lai et al. 2018; flow of the INPUT frames, consistent pixels
only, colors in [0, 1]) and compares:

* seam pairs: (b-1, b) for every segment boundary b, and the pairs inside each crossfade
  (overlap) window, i.e. every pair whose later frame is in a segment's overlap;
* inside pairs: every other pair.

Goal: seam pairs' mean error <= 1.5x the inside pairs'. With --baseline, the same pairs of a
one-worker render are scored too, which tells seam cost apart from harder content at the seams.
Pairs across a scene cut (flow mostly inconsistent) are left out of both groups.

    python -m benchmarks seams --input samples/tree.mp4 --style samples/starry-night.jpg \
        --model vgg16-caffe --weights vgg16.pth --workers 3 --size 96 \
        --first-iterations 40 --iterations 12
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import (
    Result,
    Table,
    add_network_options,
    network_label,
    progress,
    read_frames,
    render,
    with_network,
)
from nst_video.config import ComputeConfig, Settings, VideoConfig
from nst_video.media import open_source
from nst_video.video import flow, segments
from nst_video.video.resize import resize_long_side

SUMMARY = "do segment seams of a parallel render (--workers N) show as temporal jumps?"
GOAL = 1.5

CPU = ComputeConfig(device="cpu")  # benchmarks measure the CPU path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default="samples/tree.mp4")
    parser.add_argument("--style", default="samples/starry-night.jpg")
    add_network_options(parser)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--frames", type=int, help="frames to render (default: all)")
    parser.add_argument("--first-iterations", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument(
        "--warmup",
        type=int,
        help=f"warm-up frames per segment (default: the library's, {segments.DEFAULT_WARMUP})",
    )
    parser.add_argument(
        "--baseline", action="store_true", help="also render with 1 worker and score those pairs"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-out/seams"))


def render_frames(
    args: argparse.Namespace, workers: int, name: str
) -> tuple[list[np.ndarray], dict]:
    """Render like `nst-video video --workers N`, in this process; returns frames and plan."""
    frames_dir, work = args.out / name, args.out / f"{name}.nst-work"
    shutil.rmtree(frames_dir, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    settings = with_network(Settings(), args)
    video = replace(
        settings.video,
        first_iterations=args.first_iterations,
        iterations=args.iterations,
        frames=args.frames,
    )
    if args.warmup is not None:
        video = replace(video, segment_warmup=args.warmup)
    image = replace(settings.image, size=args.size)
    settings = replace(settings, image=image, video=video, compute=CPU)
    progress(f"[{name}] {network_label(args)}, {workers} workers, {video}")
    seconds = render(args.input, args.style, frames_dir, work, settings, args.weights,
                     workers=workers)  # fmt: skip
    plan = json.loads((work / "manifest.json").read_text())["plan"]
    plan["seconds"] = round(seconds, 1)
    return read_frames(frames_dir), plan


def input_frames(args: argparse.Namespace, start: int, count: int) -> list[np.ndarray]:
    """The input frames exactly as the render saw them (same decoder, same resize)."""
    source = open_source(args.input)
    return [resize_long_side(raw, args.size) for raw in source.frames(start, count)]


def seam_pairs(plan: dict[str, Any]) -> tuple[set[int], set[int]]:
    """Later-frame indices of boundary pairs (b-1, b) and of pairs inside the overlaps."""
    boundary, overlap = set(), set()
    for data in plan["segments"] or ():
        segment = segments.Segment(**data)
        if segment.index == 0:
            continue
        boundary.add(segment.start)
        overlap.update(segment.overlap)
    overlap.discard(plan["start"])  # no pair ends at the first frame
    return boundary, overlap - boundary


def group_means(
    errors: dict[int, float], boundary: set[int], overlap: set[int]
) -> dict[str, tuple[int, float]]:
    def mean(keys: list[int]) -> tuple[int, float]:
        return len(keys), float(np.mean([errors[k] for k in keys])) if keys else float("nan")

    seam = boundary | overlap
    return {
        "inside": mean([k for k in errors if k not in seam]),
        "seam (boundary + overlap)": mean([k for k in errors if k in seam]),
        "boundary (b-1, b)": mean([k for k in errors if k in boundary]),
        "overlap (crossfade)": mean([k for k in errors if k in overlap]),
    }


def table(results: dict[str, dict[str, tuple[int, float]]]) -> Table:
    rows = []
    for render_name, groups in results.items():
        inside = groups["inside"][1]
        for group, (count, value) in groups.items():
            rows.append([render_name, group, count, value, value / inside])
    return Table("", ["render", "pairs", "count", "mean warping error", "x inside"], rows)


def run(args: argparse.Namespace) -> Result:
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    outputs, plan = render_frames(args, args.workers, f"workers{args.workers}")
    inputs = input_frames(args, plan["start"], len(outputs))
    flows = {
        i: flow.frame_flow(inputs[i - 1 - plan["start"]], inputs[i - plan["start"]], "dis")
        for i in range(plan["start"] + 1, plan["stop"])
    }
    threshold = VideoConfig().scene_cut_threshold
    cuts = [i for i, motion in flows.items() if flow.is_scene_cut(motion, threshold)]

    def errors_of(frames: list[np.ndarray]) -> dict[int, float]:
        base = plan["start"]
        return {
            i: flow.warping_error(frames[i - 1 - base], frames[i - base], motion)
            for i, motion in flows.items()
            if i not in cuts
        }

    boundary, overlap = seam_pairs(plan)
    per_pair = {f"{args.workers} workers": errors_of(outputs)}
    timings = {f"{args.workers} workers": plan["seconds"]}
    if args.baseline:
        single, single_plan = render_frames(args, 1, "workers1")
        per_pair["1 worker (same pairs)"] = errors_of(single)
        timings["1 worker (same pairs)"] = single_plan["seconds"]
    results = {name: group_means(errs, boundary, overlap) for name, errs in per_pair.items()}
    title = (
        f"{len(outputs)} frames at {outputs[0].shape[1]}x{outputs[0].shape[0]}; segments: "
        + ", ".join(
            f"[{s['start']},{s['stop']}) warm-up {s['warmup']}" for s in plan["segments"] or ()
        )
        + f"; scene cuts left out: {cuts or 'none'}; render seconds: {timings}"
    )
    ratio = (
        results[f"{args.workers} workers"]["seam (boundary + overlap)"][1]
        / (results[f"{args.workers} workers"]["inside"][1])
    )
    note = f"{'PASS' if ratio <= GOAL else 'MISS'}: seams {ratio:.2f}x inside (goal <= {GOAL}x)"
    data = {
        "plan": plan,
        "cuts": cuts,
        "errors": {n: {str(k): round(v, 7) for k, v in e.items()} for n, e in per_pair.items()},
        "groups": results,
        "seam_ratio": ratio,
    }
    first = table(results)
    first.title = title
    return Result([first], data, [note])
