"""Benchmark: do warm starts drift over a long render? Early frames against late ones.

Renders --frames consecutive frames of a clip with the video pipeline (flow warm starts and the
temporal loss, default budgets unless given), then scores every output frame:

* style: the normalized style term on the optimizing network (fine for drift: the question is
  whether late frames satisfy the same objective as early ones, not how good the objective is);
* content: the normalized content term, likewise;
* sharpness: variance of the Laplacian of the output's luminance divided by the same measure of
  its input frame, so the clip's own changes (focus, motion blur, scene) cancel out;
* colour: mean R, G, B and mean HSV saturation of the output.

Frames inside each window (--windows, offsets from --start) are summarized by their median.
Every --reference-every-th frame of each window is also rendered on its own from the content
with the first frame's budget: what a frame of that part of the clip looks like without any
history. A chain that blurs or drifts moves away from its reference rows as the windows go on.

    python -m benchmarks drift --input ../shared/data/tree.avi \\
        --style ../shared/data/starry_night.jpg --model vgg16-caffe --weights W.pth \\
        --size 96 --frames 300 --out bench-out/drift
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.harness import (
    Result,
    Table,
    add_budget_options,
    add_network_options,
    network_label,
    progress,
    read_frames,
    read_report,
    render,
    with_budgets,
    with_network,
)
from benchmarks.metrics import laplacian_variance
from nst_video.api import make_engine
from nst_video.config import WARP_INTERPOLATIONS, ComputeConfig, Settings, VideoConfig
from nst_video.core.engine import Engine
from nst_video.media import open_source
from nst_video.pipeline.start import Earlier, temporal_start
from nst_video.video import flow
from nst_video.video.resize import resize_long_side

SUMMARY = "do warm starts drift over a long render? early frames against late ones"
METRICS = ("style", "content", "sharpness", "saturation", "r", "g", "b")

CPU = ComputeConfig(device="cpu")  # benchmarks measure the CPU path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="video file or image sequence")
    parser.add_argument("--style", required=True, help="style image")
    add_network_options(parser)
    parser.add_argument("--size", type=int, default=96, help="long side of the render")
    parser.add_argument("--start", type=int, default=0, help="first input frame")
    parser.add_argument("--frames", type=int, default=300, help="consecutive frames to render")
    parser.add_argument(
        "--windows",
        default="0-29,100-129,270-299",
        help="frame ranges (offsets from --start, inclusive) summarized in the table",
    )
    add_budget_options(parser)
    parser.add_argument(
        "--reference-every",
        type=int,
        default=10,
        help="render every N-th frame of each window independently too (0: none)",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="score the chain already rendered in OUT"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-out/drift"))


def parse_windows(text: str, frames: int) -> list[range]:
    windows = []
    for part in text.split(","):
        low, high = (int(v) for v in part.split("-"))
        if not 0 <= low <= high < frames:
            raise SystemExit(f"drift: window {part} is outside 0-{frames - 1}")
        windows.append(range(low, high + 1))
    return windows


def settings_for(args: argparse.Namespace) -> Settings:
    settings = with_network(Settings(), args)
    video = replace(settings.video, start=args.start, frames=args.frames)
    video = with_budgets(replace(settings, video=video), args).video
    image = replace(settings.image, size=args.size)
    return replace(settings, image=image, video=video, compute=CPU)


# --- measures ----------------------------------------------------------------------------------


def frame_measures(engine: Engine, content: np.ndarray, output: np.ndarray) -> dict[str, float]:
    terms = engine.measure(content, output)
    hsv = cv2.cvtColor(output, cv2.COLOR_RGB2HSV)
    mean_rgb = output.reshape(-1, 3).mean(axis=0) / 255.0
    return {
        "style": terms["style"],
        "content": terms["content"],
        "sharpness": laplacian_variance(output) / max(laplacian_variance(content), 1e-12),
        "saturation": float(hsv[..., 1].mean()) / 255.0,
        "r": float(mean_rgb[0]),
        "g": float(mean_rgb[1]),
        "b": float(mean_rgb[2]),
    }


def independent(engine: Engine, content: np.ndarray, budget: int) -> dict[str, float]:
    """Measures of `content` rendered from itself, as frame 0 and scene cuts are."""
    return frame_measures(engine, content, engine.stylize(content, content, budget).image)


def resampling_only(
    inputs: list[np.ndarray], video: VideoConfig, windows: list[range]
) -> dict[str, list[float]]:
    """Each kernel's warm-start chain without any optimization: every frame is its plan's init
    (previous one warped, disocclusions from the content). Median sharpness per window."""
    pairs = zip(inputs, inputs[1:], strict=False)
    flows = [None] + [flow.frame_flow(a, b, video.flow) for a, b in pairs]
    out: dict[str, list[float]] = {}
    for kernel in WARP_INTERPOLATIONS:
        config = replace(video, warp_interpolation=kernel)
        chain, prev_in, prev_out = [], None, None
        for content, adjacent in zip(inputs, flows, strict=True):
            earlier = [] if prev_in is None else [Earlier(1, prev_in, prev_out)]
            known = {1: adjacent} if adjacent is not None else None
            prev_out = temporal_start(content, earlier, config, known).image
            prev_in = content
            chain.append(laplacian_variance(prev_out) / max(laplacian_variance(content), 1e-12))
        out[kernel] = [float(np.median([chain[i] for i in window])) for window in windows]
    return out


def summarize(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.median([row[key] for row in rows])) for key in METRICS}


# --- report ------------------------------------------------------------------------------------


def table(windows: list[dict[str, Any]]) -> Table:
    columns = ["frames", "render", "n", "style", "content", "sharpness (out/in)", "saturation",
               "mean R, G, B", "evals (mean)"]  # fmt: skip
    rows = []
    for row in windows:
        m = row["median"]
        rgb = f"{m['r']:.3f}, {m['g']:.3f}, {m['b']:.3f}"
        rows.append([row["window"], row["render"], row["n"], m["style"], m["content"],
                     m["sharpness"], m["saturation"], rgb, row["evals"]])  # fmt: skip
    return Table("", columns, rows)


def run(args: argparse.Namespace) -> Result:
    args.out.mkdir(parents=True, exist_ok=True)
    windows = parse_windows(args.windows, args.frames)
    settings = settings_for(args)
    frames_dir, report = args.out / "chain", args.out / "chain.jsonl"
    if args.reuse and report.is_file():
        seconds = None
        progress(f"reusing {frames_dir}")
    else:
        shutil.rmtree(frames_dir, ignore_errors=True)
        progress(f"{network_label(args)}: {settings.video}")
        seconds = render(
            args.input, args.style, frames_dir, args.out / "chain.nst-work", settings,
            args.weights, report,
        )  # fmt: skip
    stats = read_report(report)
    outputs = read_frames(frames_dir)
    source = open_source(args.input)
    long_side = args.size
    inputs = [resize_long_side(f, long_side) for f in source.frames(args.start, len(outputs))]
    engine = make_engine([args.style], settings, args.weights)
    per_frame = [frame_measures(engine, c, o) for c, o in zip(inputs, outputs, strict=True)]

    rows: list[dict[str, Any]] = []
    budget = settings.video.first_iterations
    for window in windows:
        label = f"{window.start}-{window.stop - 1}"
        chain = [per_frame[i] for i in window]
        rows.append({
            "window": label, "render": "chain (warm starts)", "n": len(chain),
            "median": summarize(chain),
            "evals": float(np.mean([stats[i]["iterations"] for i in window])),
            "inits": sorted({stats[i]["init"] for i in window}),
        })  # fmt: skip
        if args.reference_every > 0:
            picked = list(window[:: args.reference_every])
            fresh = [independent(engine, inputs[i], budget) for i in picked]
            rows.append({
                "window": label, "render": "independent, same frames", "n": len(fresh),
                "median": summarize(fresh), "evals": None, "frames": picked,
                "chain_same_frames": summarize([per_frame[i] for i in picked]),
            })  # fmt: skip
    height, width = outputs[0].shape[:2]
    rendered = "reused" if seconds is None else f"{seconds:.0f} s"
    title = (f"style weight {settings.loss.style_weight:g}; {len(outputs)} frames from "
             f"{args.start} at {width}x{height}; chain render {rendered}")  # fmt: skip
    resampled = resampling_only(inputs, settings.video, windows)
    warps = Table(
        "Warps only, no optimization (sharpness out/in, median per window)",
        ["kernel", *(f"{w.start}-{w.stop - 1}" for w in windows)],
        [[kernel, *values] for kernel, values in resampled.items()],
    )
    first = table(rows)
    first.title = title
    data = {
        "settings_video": str(settings.video),
        "style_weight": settings.loss.style_weight,
        "render_seconds": seconds,
        "per_frame": per_frame,
        "windows": rows,
        "resampling_only": resampled,
    }
    return Result([first, warps], data)
