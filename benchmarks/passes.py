"""Benchmark: the multi-pass algorithm (--passes N) against the single forward pass.

Renders one clip once with the largest --passes value through the pass loop `nst-video video`
runs, keeping every pass, and scores pass k as the result of `--passes k` (pass k never depends
on how many passes follow) the same way:

* adjacent warping error (Lai et al. 2018, metrics.py): mean over consecutive
  pairs of the squared difference between output t and output t-1 warped by the flow of the
  INPUT frames, on pixels where that flow is consistent (occluded ones excluded), colors in [0, 1];
* long-range warping error for each --offsets k: the same between outputs t and t-k, with the
  flow computed directly between input frames t and t-k (not composed), occluded pixels
  excluded by its forward-backward check;
* revealed-pixel error for each --offsets k (metrics.revealed_error): the long-range
  error on pixels reliable between t-k and t but not between t-1 and t;
* content and style terms: the engine's unweighted terms of each final frame, averaged;
* evaluations and optimizing seconds per frame, summed over passes 1..k.

All renders see identical input frames: the clip is decoded once, resized with nst_video's
resize and written as PNGs. Seconds are comparable only on a quiet machine; evaluations are
exact.

    OMP_NUM_THREADS=1 nice -n 10 python -m benchmarks passes --input ../shared/data/tree.avi \
        --style ../shared/data/starry_night.jpg --start 250 --frames 20 --dedupe \
        --size 128 --model vgg16-caffe --weights bench-out/vgg16/vgg16-caffe-hed.pth \
        --passes 1,3,5 --out bench-out/passes
"""

from __future__ import annotations

import argparse
import shutil
import time
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
    extract_inputs,
    progress,
    read_frames,
    with_budgets,
    with_network,
    write_frames,
)
from benchmarks.metrics import flows_between, mean_warping_error, revealed_error
from nst_video.api import make_engine
from nst_video.config import ComputeConfig, Settings, VideoConfig
from nst_video.core.engine import Engine
from nst_video.media import open_source, write_image
from nst_video.pipeline.passes import render_passes
from nst_video.progress import Event, FrameDone, Message
from nst_video.workdir.store import FrameStore

SUMMARY = "the multi-pass algorithm (--passes N) against the single forward pass"
CPU = ComputeConfig(device="cpu")  # benchmarks measure the CPU path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_options(parser, frames=20, size=128)
    add_budget_options(parser)
    parser.add_argument("--passes", default="1,3,5", help="comma-separated --passes values")
    parser.add_argument("--pass-iterations", type=int, help="nst-video default if omitted")
    parser.add_argument("--temporal-from-pass", type=int, help="nst-video default if omitted")
    parser.add_argument("--offsets", default="4,8", help="long-range offsets k")
    parser.add_argument(
        "--temporal-offsets", help="the render's --temporal-offsets (nst-video default if omitted)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the render kept in OUT/run instead of starting afresh (e.g. later passes "
        "on a pass 1 copied from another run: pass 1 does not depend on how later ones work)",
    )
    add_network_options(parser)
    parser.add_argument("--out", type=Path, default=Path("bench-out/passes"))
    parser.add_argument(
        "--picture",
        type=Path,
        help="write these frames (--picture-frames) side by side: input, then each --passes row",
    )
    parser.add_argument("--picture-frames", default="12,19", help="frames of the picture")
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="score the passes an earlier (or still running) render kept in OUT/run",
    )


def prepare_inputs(args: argparse.Namespace) -> list[np.ndarray]:
    """The frames every render reads: decoded once, resized, written as PNGs under --out."""
    frames, _, _ = extract_inputs(args)
    write_frames(args.out / "inputs", frames)
    return frames


class KeptPass(FrameStore):
    """A pass's frames that stay after the next pass is done, to be scored."""

    def discard(self) -> None:
        pass


def render_all_passes(
    args: argparse.Namespace, engine: Engine, video: VideoConfig, count: int
) -> None:
    """One render with the largest --passes value, every pass kept in OUT/run/NN.

    Pass k of an N-pass render is the whole of a k-pass render: nothing in a pass depends on
    how many follow (they only decide where its frames are stored), so one render gives every
    row; pass 1 is the single-pass render.
    """
    folder = args.out / "run"
    if folder.exists() and not args.resume:
        shutil.rmtree(folder)
    source = open_source(str(args.out / "inputs"))

    def stores(number: int) -> FrameStore:
        return KeptPass(folder / f"{number:02d}")

    render_passes(engine, video, source, stores, range(count), args.size, print_progress)


def print_progress(event: Event) -> None:
    if isinstance(event, FrameDone):
        progress(
            f"  {event.init} frame {event.index}: {event.evaluations} evaluations, "
            f"{event.seconds:.1f} s"
        )
    elif isinstance(event, Message):
        progress(event.text)


def pass_results(folder: Path, number: int, count: int) -> tuple[list[np.ndarray], dict]:
    """Pass `number`'s frames, and what passes 1..number cost together."""
    frames = [FrameStore(folder / f"{number:02d}").load_frame(i) for i in range(count)]
    stats = [
        FrameStore(folder / f"{n:02d}").read_stats(i) or {}
        for n in range(1, number + 1)
        for i in range(count)
    ]
    spent = {
        "evaluations": sum(s["iterations"] for s in stats),
        "optimizing_seconds": sum(s["seconds"] for s in stats),
        "last_pass_evaluations": [s["iterations"] for s in stats[-count:]],
    }
    return frames, spent  # type: ignore[return-value]


def terms(engine: Any, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> dict[str, float]:
    measured = [engine.measure(c, o) for c, o in zip(inputs, outputs, strict=True)]
    return {k: float(np.mean([m[k] for m in measured])) for k in ("content", "style")}


def write_picture(
    args: argparse.Namespace, inputs: list[np.ndarray], folder: Path, wanted: list[int]
) -> None:
    """One row per --picture-frames frame: its input, then its result after each pass count."""
    rows = []
    for index in (int(i) for i in args.picture_frames.split(",")):
        results = [FrameStore(folder / f"{n:02d}").load_frame(index) for n in wanted]
        rows.append(np.concatenate([inputs[index], *results], axis=1))
    write_image(args.picture, np.concatenate(rows, axis=0))


def run(args: argparse.Namespace) -> Result:
    args.out.mkdir(parents=True, exist_ok=True)
    inputs = read_frames(args.out / "inputs") if args.score_only else prepare_inputs(args)
    offsets = [1, *(int(k) for k in args.offsets.split(","))]
    wanted = [int(p) for p in args.passes.split(",")]
    video = replace(VideoConfig(), passes=max(wanted))
    if args.pass_iterations:
        video = replace(video, pass_iterations=args.pass_iterations)
    if args.temporal_from_pass:
        video = replace(video, temporal_from_pass=args.temporal_from_pass)
    if args.temporal_offsets:
        offsets_option = tuple(int(k) for k in args.temporal_offsets.split(","))
        video = replace(video, temporal_offsets=offsets_option)
    settings = with_budgets(with_network(Settings(compute=CPU, video=video), args), args)
    engine = make_engine([args.style], settings, args.weights)
    folder = args.out / "run"
    if not args.score_only:
        began = time.perf_counter()
        render_all_passes(args, engine, settings.video, len(inputs))
        progress(f"rendered in {time.perf_counter() - began:.0f} s")
    flows = {k: flows_between(inputs, k) for k in offsets}
    rows = []
    for passes in wanted:
        outputs, spent = pass_results(folder, passes, len(inputs))
        row = {
            "passes": passes,
            **{f"warp_k{k}": mean_warping_error(outputs, flows[k], k) for k in offsets},
            **{
                f"revealed_k{k}": revealed_error(outputs, flows[k], flows[1], k)
                for k in offsets[1:]
            },
            **terms(engine, inputs, outputs),
            "evaluations_per_frame": spent["evaluations"] / len(inputs),
            "seconds_per_frame": spent["optimizing_seconds"] / len(inputs),
            "seconds_per_evaluation": spent["optimizing_seconds"] / spent["evaluations"],
            **spent,
        }
        rows.append(row)
        progress(str(row))
    if args.picture:
        write_picture(args, inputs, folder, wanted)
    header = ["passes", *(f"warp k={k}" for k in offsets),
              *(f"revealed k={k}" for k in offsets[1:]),
              "content", "style", "evals/frame", "s/frame", "s/eval"]  # fmt: skip
    table = Table(f"temporal offsets {','.join(map(str, video.temporal_offsets))}", header)
    for row in rows:
        table.rows.append([row["passes"], *(row[f"warp_k{k}"] for k in offsets),
                           *(row[f"revealed_k{k}"] for k in offsets[1:]), row["content"],
                           row["style"], row["evaluations_per_frame"],
                           row["seconds_per_frame"], row["seconds_per_evaluation"]])  # fmt: skip
    return Result([table], {"temporal_offsets": list(video.temporal_offsets), "rows": rows})
