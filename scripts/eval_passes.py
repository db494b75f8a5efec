"""Benchmark: the multi-pass algorithm (--passes N) against the single forward pass.

Renders one clip once with the largest --passes value through the pass loop `nst-video video`
runs, keeping every pass, and scores pass k as the result of `--passes k` (pass k never depends
on how many passes follow) the same way:

* adjacent warping error (Lai et al. 2018, as scripts/eval_temporal.py): mean over consecutive
  pairs of the squared difference between output t and output t-1 warped by the flow of the
  INPUT frames, on pixels where that flow is consistent (occluded ones excluded), colors in [0, 1];
* long-range warping error for each --offsets k: the same between outputs t and t-k, with the
  flow computed directly between input frames t and t-k (not composed), occluded pixels
  excluded by its forward-backward check;
* revealed-pixel error for each --offsets k (eval_temporal.revealed_error): the long-range
  error on pixels reliable between t-k and t but not between t-1 and t;
* content and style terms: the engine's unweighted terms of each final frame, averaged;
* evaluations and optimizing seconds per frame, summed over passes 1..k.

All renders see identical input frames: the clip is decoded once, resized with nst_video's
resize and written as PNGs. Seconds are comparable only on a quiet machine; evaluations are
exact.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/eval_passes.py --input ../shared/data/tree.avi \
        --style ../shared/data/starry_night.jpg --start 250 --frames 20 --dedupe \
        --size 128 --model vgg16-caffe --weights bench-out/vgg16/vgg16-caffe-hed.pth \
        --passes 1,3,5 --out bench-out/passes
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import add_network_options, network_label, with_network
from eval_temporal import DEDUPE_THRESHOLD, long_range_flows, mean_abs_diff, revealed_error

from nst_video.api import make_engine
from nst_video.config import ComputeConfig, Settings, VideoConfig
from nst_video.core.engine import Engine
from nst_video.media import open_source, read_image, write_image
from nst_video.pipeline.passes import render_passes
from nst_video.progress import Event, FrameDone, Message
from nst_video.video import flow
from nst_video.video.resize import resize_long_side
from nst_video.workdir.store import FrameStore

CPU = ComputeConfig(device="cpu")  # benchmarks measure the CPU path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="video file or image sequence")
    parser.add_argument("--style", required=True, help="style image")
    parser.add_argument("--start", type=int, default=0, help="first input frame")
    parser.add_argument("--frames", type=int, default=20, help="frames to render")
    parser.add_argument("--size", type=int, default=128, help="long side of the render")
    parser.add_argument("--dedupe", action="store_true", help="skip repeated input frames")
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
    return parser.parse_args(argv)


def prepare_inputs(args: argparse.Namespace) -> list[np.ndarray]:
    """The frames every render reads: decoded once, resized, written as PNGs under --out."""
    folder = args.out / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    source = open_source(args.input)
    frames: list[np.ndarray] = []
    last: np.ndarray | None = None
    for raw in source.frames(args.start):
        # Repeated frames of a constant-rate decode carry no motion (as eval_temporal --dedupe).
        if args.dedupe and last is not None and mean_abs_diff(raw, last) < DEDUPE_THRESHOLD:
            continue
        last = raw
        frames.append(resize_long_side(raw, args.size))
        if len(frames) == args.frames:
            break
    for index, frame in enumerate(frames):
        write_image(folder / f"{index:06d}.png", frame)
    return frames


class KeptPass(FrameStore):
    """A pass's frames that stay after the next pass is done, to be scored."""

    def discard(self) -> None:
        pass


def render_all_passes(args: argparse.Namespace, engine: Engine, count: int) -> None:
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

    video = engine.settings.video
    render_passes(engine, video, source, stores, range(count), args.size, print_progress)


def print_progress(event: Event) -> None:
    if isinstance(event, FrameDone):
        print(
            f"  {event.init} frame {event.index}: {event.evaluations} evaluations, "
            f"{event.seconds:.1f} s",
            flush=True,
        )
    elif isinstance(event, Message):
        print(event.text, flush=True)


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


def warping_errors(outputs: list[np.ndarray], flows: list[flow.FrameFlow], offset: int) -> float:
    """Mean warping error between outputs t and t-offset, `flows` (long_range_flows) computed
    between inputs t and t-offset."""
    errors = [
        flow.warping_error(outputs[t - offset], outputs[t], ff)
        for t, ff in zip(range(offset, len(outputs)), flows, strict=True)
    ]
    return float(np.mean(errors))


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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.score_only:
        folder = args.out / "inputs"
        inputs = [read_image(p) for p in sorted(folder.glob("*.png"))]
    else:
        inputs = prepare_inputs(args)
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
    settings = with_network(Settings(compute=CPU, video=video), args)
    # As in the CLI, the optimizer's own budget is the first frame's.
    settings = replace(settings, optim=replace(settings.optim, iterations=video.first_iterations))
    engine = make_engine([args.style], settings, args.weights)
    folder = args.out / "run"
    if not args.score_only:
        began = time.perf_counter()
        render_all_passes(args, engine, len(inputs))
        print(f"rendered in {time.perf_counter() - began:.0f} s", flush=True)
    flows = {k: long_range_flows(inputs, k) for k in offsets}
    rows = []
    for passes in wanted:
        outputs, spent = pass_results(folder, passes, len(inputs))
        row = {
            "passes": passes,
            **{f"warp_k{k}": warping_errors(outputs, flows[k], k) for k in offsets},
            # pixels reliable between t-k and t but not between t-1 and t (eval_temporal's)
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
        print(json.dumps(row), flush=True)
    if args.picture:
        write_picture(args, inputs, folder, wanted)
    summary = {
        "network": network_label(args),
        "temporal_offsets": list(video.temporal_offsets),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    name = "scores.json" if args.score_only else "results.json"
    (args.out / name).write_text(json.dumps({**summary, "rows": rows}, indent=1))
    header = [
        "passes",
        *(f"warp k={k}" for k in offsets),
        *(f"revealed k={k}" for k in offsets[1:]),
        "content",
        "style",
        "evals/frame",
        "s/frame",
        "s/eval",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [
            str(row["passes"]),
            *(f"{row[f'warp_k{k}']:.3g}" for k in offsets),
            *(_figure(row[f"revealed_k{k}"]) for k in offsets[1:]),
            f"{row['content']:.4f}",
            f"{row['style']:.4f}",
            f"{row['evaluations_per_frame']:.0f}",
            f"{row['seconds_per_frame']:.1f}",
            f"{row['seconds_per_evaluation']:.2f}",
        ]
        print("| " + " | ".join(cells) + " |")


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


if __name__ == "__main__":
    main()
