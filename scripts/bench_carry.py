"""Benchmark (never a test): L-BFGS memory carried across frames, and the seed tutorial's way.

One process renders one clip several ways, frame by frame, interleaved so that load from other
processes hits every way alike:

* `today`: every warm-started frame's L-BFGS starts with no memory (no carry);
* `scale`: it starts with the previous frame's inverse-Hessian scale s.y / y.y;
* `pairsN`: it starts with the previous frame's newest N curvature pairs (and their scale);
* the seed tutorial's way on the first --tutorial-frames frames: every frame from its content,
  exactly 300 evaluations (no early stop), no warm start, no temporal term.

Frame 0 is rendered once and shared by every way (none carries anything into it). Per frame and
way it records the evaluations, seconds, the loss terms, L-BFGS resets, and the best loss after
every evaluation, from which it derives how many evaluations each way needed to reach `today`'s
final loss of that frame, and where other early-stop windows would have stopped (the stop rule
only truncates the optimizer's path, so this is exact for the frame, not for its successors).
Scores: warping error of consecutive outputs (Lai et al. 2018, flow of the input frames, as in
eval_temporal.py) and the style and content terms of the saved uint8 frames (Engine.measure).

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_carry.py \\
        --input tree.avi --style starry_night.jpg --model vgg16-caffe --weights W.pth \\
        --start 250 --frames 6 --tutorial-frames 3 --json bench-out/carry.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchlib import add_network_options, network_label, with_network
from eval_temporal import extract_inputs

from nst_video.api import make_engine
from nst_video.config import ComputeConfig, Settings
from nst_video.core.engine import Engine
from nst_video.core.lbfgs import Memory
from nst_video.pipeline.start import frame_start
from nst_video.progress import Event, Iteration
from nst_video.video import flow

WINDOWS = (5, 10, 15, 20)  # early-stop windows replayed on the recorded best-loss paths
TUTORIAL_EVALUATIONS = 300


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def way_keep(name: str) -> int | None:
    """Pairs a way carries: None for no carry, 0 for the scale alone."""
    if name == "today":
        return None
    if name == "scale":
        return 0
    if name.startswith("pairs") and name[5:].isdigit():
        return int(name[5:])
    raise SystemExit(f"bench_carry: unknown way {name!r}; valid: today, scale, pairsN")


def stylize(
    engine: Engine, content: np.ndarray, start: Any, keep: int | None
) -> tuple[Any, float, list[float]]:
    """One frame as FrameLoop renders it; returns the result, seconds and best-loss path."""
    path: list[float] = []

    def record(event: Event) -> None:
        if isinstance(event, Iteration):
            path.append(event.loss)

    began = time.perf_counter()
    done = engine.stylize(
        content, start.image, start.budget, start.temporal, record, start.memory, keep or 0
    )
    return done, time.perf_counter() - began, path


def frame_row(done: Any, seconds: float, path: list[float], init: str) -> dict[str, Any]:
    result = done.optimization
    return {
        "init": init,
        "evaluations": result.evaluations,
        "seconds": seconds,
        "loss": result.loss,
        "stop": result.stop,
        "resets": result.resets,
        "terms": result.terms,
        "path": path,
    }


def carried(done: Any, keep: int | None) -> Memory | None:
    return _part(done.optimization.memory, keep)


def _part(memory: Memory | None, keep: int | None) -> Memory | None:
    """What a way carries of `memory`: nothing, the scale, or the newest `keep` pairs."""
    if keep is None or memory is None:
        return None
    return Memory(memory.scale, memory.pairs[len(memory.pairs) - keep :] if keep else ())


def reached(path: list[float], target: float) -> int | None:
    """Evaluations until the best loss was at most `target` (None: never)."""
    return next((i + 1 for i, loss in enumerate(path) if loss <= target), None)


def replay_stop(path: list[float], window: int, tolerance: float) -> tuple[int, float]:
    """(evaluations, best loss) where the early stop with `window` would have ended the path."""
    for evaluations in range(window + 1, len(path) + 1):
        before, best = path[evaluations - window - 1], path[evaluations - 1]
        if before - best <= tolerance * abs(before):
            return evaluations, best
    return len(path), path[-1]


def render_ways(
    engine: Engine, frames: list[np.ndarray], ways: list[str], partial: Path | None = None
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[np.ndarray]], list[flow.FrameFlow]]:
    video = engine.settings.video
    flows = [flow.frame_flow(a, b, video.flow) for a, b in zip(frames, frames[1:], strict=False)]
    start = frame_start(frames[0], None, None, video)
    # Frame 0 once, keeping as many pairs as any way carries; each way takes its part.
    most = max((way_keep(w) or 0) for w in ways)
    done, seconds, path = stylize(engine, frames[0], start, most)
    first = frame_row(done, seconds, path, start.init)
    print(f"frame 0: {first['evaluations']} evaluations, {seconds:.1f} s", flush=True)
    rows = {w: [first] for w in ways}
    outputs = {w: [done.image] for w in ways}
    memories = {w: _part(done.optimization.memory, way_keep(w)) for w in ways}
    for index in range(1, len(frames)):
        for way in ways:
            keep = way_keep(way)
            start = frame_start(
                frames[index], frames[index - 1], outputs[way][-1], video, flows[index - 1],
                memories[way],
            )  # fmt: skip
            done, seconds, path = stylize(engine, frames[index], start, keep)
            rows[way].append(frame_row(done, seconds, path, start.init))
            outputs[way].append(done.image)
            memories[way] = carried(done, keep)
            if partial is not None:  # what a kill would otherwise lose on a busy machine
                partial.write_text(json.dumps(rows, default=float))
                np.savez_compressed(partial.with_suffix(".npz"), **{
                    f"{w}_{i}": image for w, images in outputs.items()
                    for i, image in enumerate(images)
                })  # fmt: skip
            r = rows[way][-1]
            to_today = reached(path, rows["today"][index]["loss"])
            print(f"[{way}] frame {index}: {r['init']}, {r['evaluations']} evaluations "
                  f"({to_today} to today's loss), {r['seconds']:.1f} s, loss {r['loss']:.6g}, "
                  f"terms {r['terms']}, resets {r['resets']}", flush=True)  # fmt: skip
    return rows, outputs, flows


def tutorial_way(engine: Engine, frames: list[np.ndarray]) -> dict[str, Any]:
    """The seed tutorial's way: each frame from its content, exactly 300 evaluations (no early
    stop), no warm start, no temporal term; the same VGG and style targets as the ways."""
    tutorial = copy.copy(engine)
    tutorial.settings = replace(engine.settings, optim=replace(engine.settings.optim, tolerance=0))
    outputs, rows = [], []
    for frame in frames:
        began = time.perf_counter()
        done = tutorial.stylize(frame, frame, TUTORIAL_EVALUATIONS)
        rows.append(frame_row(done, time.perf_counter() - began, [], "content"))
        outputs.append(done.image)
        print(f"[tutorial] {done.optimization.evaluations} evaluations, "
              f"{rows[-1]['seconds']:.1f} s", flush=True)  # fmt: skip
    return {"rows": rows, "outputs": outputs}


def summary(
    engine: Engine,
    frames: list[np.ndarray],
    rows: list[dict[str, Any]],
    outputs: list[np.ndarray],
    flows: list[flow.FrameFlow],
    today: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """Per-way figures; `later` are frames 1.. (warm-started), `today` the reference way."""
    measured = [engine.measure(f, o) for f, o in zip(frames, outputs, strict=False)]
    pairs = zip(outputs, outputs[1:], flows, strict=False)
    errors = [flow.warping_error(a, b, ff) for a, b, ff in pairs]
    later = rows[1:]
    out: dict[str, Any] = {
        "frames": len(rows),
        "s_per_frame": statistics.mean(r["seconds"] for r in rows),
        "s_per_later_frame": statistics.mean(r["seconds"] for r in later) if later else None,
        "evals_per_frame": statistics.mean(r["evaluations"] for r in rows),
        "evals_later": [r["evaluations"] for r in later],
        "resets_later": [r["resets"] for r in later],
        "loss_later": [r["loss"] for r in later],
        "loss_vs_today": [r["loss"] / t["loss"] for r, t in zip(later, today[1:], strict=True)]
        if today is not None
        else None,
        "style": statistics.mean(m["style"] for m in measured),
        "content": statistics.mean(m["content"] for m in measured),
        "temporal_later": [r["terms"].get("temporal") for r in later],
        "style_later_opt": [r["terms"].get("style") for r in later],
        "content_later_opt": [r["terms"].get("content") for r in later],
        "warping_error": float(np.mean(errors)) if errors else None,
        "warping_errors": errors,
    }
    if today is not None and later and later[0]["path"]:
        out["evals_to_today_loss"] = [
            reached(r["path"], t["loss"]) for r, t in zip(later, today[1:], strict=True)
        ]
        tolerance = engine.settings.optim.tolerance
        # Within the early stop's own tolerance of today's final loss: the loss today's rule
        # treats as converged.
        out["evals_to_today_within_tolerance"] = [
            reached(r["path"], t["loss"] * (1 + tolerance))
            for r, t in zip(later, today[1:], strict=True)
        ]
        out["replayed_stops"] = {
            str(w): [replay_stop(r["path"], w, tolerance) for r in later] for w in WINDOWS
        }
    return out


def _mean(values: list[Any]) -> str:
    known = [v for v in values if v is not None]
    text = f"{statistics.mean(known):.1f}" if known else "-"
    return text + (f" ({len(values) - len(known)} never)" if len(known) < len(values) else "")


def print_tables(result: dict[str, Any]) -> None:
    print(f"\n{result['network']}; {result['machine']}; {result['clip']}\n")
    print("| way | frames | s/frame | s/later frame | evals/frame | evals later (mean) | "
          "evals to today's loss / within 0.1% (mean) | later loss / today's | style | content | "
          "warping error |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, w in result["ways"].items():
        later = "-" if w["s_per_later_frame"] is None else f"{w['s_per_later_frame']:.1f}"
        evals_later = _mean(w["evals_later"]) if w["evals_later"] else "-"
        to_today = _mean(w["evals_to_today_loss"]) if "evals_to_today_loss" in w else "-"
        if "evals_to_today_within_tolerance" in w:
            to_today += f" / {_mean(w['evals_to_today_within_tolerance'])}"
        error = "-" if w["warping_error"] is None else f"{w['warping_error']:.3e}"
        ratio = f"{statistics.mean(w['loss_vs_today']):.4f}" if w["loss_vs_today"] else "-"
        print(f"| {name} | {w['frames']} | {w['s_per_frame']:.1f} | {later} | "
              f"{w['evals_per_frame']:.1f} | {evals_later} | {to_today} | {ratio} | "
              f"{w['style']:.4f} | {w['content']:.4f} | {error} |")  # fmt: skip
    print("\nearly stop replayed on each way's best-loss paths (later frames): mean evaluations, "
          "mean loss relative to today's final loss")  # fmt: skip
    today = result["ways"].get("today", {}).get("loss_later")
    for name, w in result["ways"].items():
        for window, stops in w.get("replayed_stops", {}).items():
            evals = statistics.mean(e for e, _ in stops)
            ratio = statistics.mean(loss / t for (_, loss), t in zip(stops, today, strict=True))
            print(f"- {name}, window {window}: {evals:.1f} evaluations, loss {ratio:.4f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--style", required=True)
    add_network_options(parser)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--start", type=int, default=250)
    parser.add_argument("--frames", type=int, default=6, help="frames to render (after dedupe)")
    parser.add_argument(
        "--dedupe",
        action="store_true",
        help="drop frames (nearly) identical to the previous kept one, as eval_temporal.py does "
        "(tree.avi repeats each image 6-7 times even in its moving part)",
    )
    parser.add_argument("--ways", default="today,scale,pairs50", help="comma-separated")
    parser.add_argument("--tutorial-frames", type=int, default=3, help="0: skip the tutorial")
    parser.add_argument(
        "--tutorial-only",
        action="store_true",
        help="render only the tutorial's way on the first --tutorial-frames frames (to run it "
        "beside a --tutorial-frames 0 run of the ways on a busy machine)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ways = args.ways.split(",")
    if ways[0] != "today" and not args.tutorial_only:
        raise SystemExit("bench_carry: the first way must be today (the reference)")
    for way in ways:
        way_keep(way)
    settings = with_network(Settings(), args)
    settings = replace(
        settings,
        image=replace(settings.image, size=args.size),
        optim=replace(settings.optim, log_every=1),  # runtime only: every best loss is sent
        compute=ComputeConfig(device="cpu"),
    )
    engine = make_engine([args.style], settings, args.weights)
    frames, read, _ = extract_inputs(args)
    began = time.perf_counter()
    if args.tutorial_only:
        frames = frames[: args.tutorial_frames]
        flows = [flow.frame_flow(a, b, "dis") for a, b in zip(frames, frames[1:], strict=False)]
        rows, outputs = {}, {}
        ways = []
    else:
        partial = args.json.with_suffix(".partial.json") if args.json else None
        if partial is not None:
            partial.parent.mkdir(parents=True, exist_ok=True)
        rows, outputs, flows = render_ways(engine, frames, ways, partial)
    result: dict[str, Any] = {
        "network": network_label(args),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch thread(s), load average {os.getloadavg()[0]:.1f}",
        "clip": f"{Path(args.input).name}: {len(frames)} frames from frame {args.start} "
        f"({read} read{', deduplicated' if args.dedupe else ''}) "
        f"at {frames[0].shape[1]}x{frames[0].shape[0]}",
        "consistent_fraction": [ff.consistent_fraction for ff in flows],
        "ways": {},
    }
    for way in ways:
        result["ways"][way] = summary(engine, frames, rows[way], outputs[way], flows, rows["today"])
    if args.tutorial_frames > 0:
        n = args.tutorial_frames
        tutorial = tutorial_way(engine, frames[:n])
        if args.json:  # the frames, for scores across runs
            images = {f"tutorial_{i}": image for i, image in enumerate(tutorial["outputs"])}
            np.savez_compressed(args.json.with_suffix(".tutorial.npz"), **images)
        result["ways"]["tutorial (first frames)"] = summary(
            engine, frames[:n], tutorial["rows"], tutorial["outputs"], flows[: n - 1], None
        )
        for way in ways:  # the same frames, for a like-for-like row
            result["ways"][f"{way} (first {n} frames)"] = summary(
                engine, frames[:n], rows[way][:n], outputs[way][:n], flows[: n - 1], None
            )
    result["total_seconds"] = time.perf_counter() - began
    result["rows"] = rows
    print_tables(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
