"""Benchmark (never a test): how far reduced precision moves losses and outputs from fp32.

For each precision (fp32, bf16, and tf32 on CUDA) it reports, on the same frame:

* one pass: the loss of the content image and the cosine between its gradient and fp32's;
* a whole optimization from the content (--evaluations, no early stop): the output's style and
  content terms scored in fp32, the pixel difference from fp32's output, seconds per evaluation;
* the baseline that makes those differences readable: fp32 again from a start perturbed by
  1e-4 (optimization paths drift apart by themselves, whatever the precision).

    .venv/bin/python scripts/eval_precision.py --input ../shared/data/tree.avi \\
        --style ../shared/data/starry_night.jpg --model vgg16-caffe --weights W.pth \\
        --size 256 --device auto
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchlib import add_network_options, network_label, with_network

from nst_video.config import OptimConfig, Settings
from nst_video.core.device import configure_backend, native_bf16, pick_device
from nst_video.core.engine import Engine, to_tensor
from nst_video.core.weights import load_state_dict
from nst_video.media import open_source
from nst_video.media.images import read_image
from nst_video.video.resize import resize_long_side


def one_pass(engine: Engine, frame: np.ndarray) -> tuple[float, torch.Tensor]:
    """Loss and gradient at the content image itself (a stylized target makes both nonzero)."""
    x = to_tensor(frame, engine.device).requires_grad_(True)
    loss, _ = engine.loss_for(frame)(x)
    loss.backward()
    assert x.grad is not None
    return float(loss.detach()), x.grad.flatten().double()


def optimized(engine: Engine, frame: np.ndarray, init: np.ndarray, budget: int) -> dict[str, Any]:
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    done = engine.stylize(frame, init, budget)
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    return {"image": done.image, "s_per_eval": (time.perf_counter() - start) / budget}


def pixel_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"mean_levels": float(diff.mean()), "p99_levels": float(np.percentile(diff, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="samples/tree.mp4")
    parser.add_argument("--style", default="samples/starry-night.jpg")
    add_network_options(parser)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--evaluations", type=int, default=100)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    device = pick_device(args.device)
    state = load_state_dict(args.weights, args.model)
    style = read_image(args.style)
    frame = resize_long_side(next(iter(open_source(args.input).frames(args.start, 1))), args.size)
    base = with_network(Settings(), args)
    base = replace(base, optim=OptimConfig(tolerance=0.0))

    def engine(precision: str) -> Engine:
        compute = replace(base.compute, precision=precision)
        return Engine(state, [style], replace(base, compute=compute), device)

    precisions = ["fp32", "tf32", "bf16"] if device.type == "cuda" else ["fp32", "bf16"]
    reference = engine("fp32")
    ref_loss, ref_grad = one_pass(reference, frame)
    ref_run = optimized(reference, frame, frame, args.evaluations)
    rows: dict[str, Any] = {}
    for precision in precisions:
        candidate = reference if precision == "fp32" else engine(precision)
        # TF32 is a process-wide switch: set it for this run, back to fp32 for the scoring.
        configure_backend(device, precision)
        loss, grad = one_pass(candidate, frame)
        run = (
            ref_run if precision == "fp32" else optimized(candidate, frame, frame, args.evaluations)
        )
        configure_backend(device, "fp32")
        rows[precision] = {
            "loss_rel_diff": abs(loss - ref_loss) / abs(ref_loss),
            "grad_cosine": float(torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0)),
            **reference.measure(frame, run["image"]),
            **pixel_difference(run["image"], ref_run["image"]),
            "s_per_eval": run["s_per_eval"],
        }
    rng = np.random.default_rng(0)
    nudged = np.clip(frame / 255.0 + rng.normal(0, 1e-4, frame.shape), 0, 1).astype(np.float32)
    drift = optimized(reference, frame, nudged, args.evaluations)
    rows["fp32, start +1e-4 noise"] = {
        **reference.measure(frame, drift["image"]),
        **pixel_difference(drift["image"], ref_run["image"]),
        "s_per_eval": drift["s_per_eval"],
    }
    print(f"{network_label(args)}; this CPU has native bf16 (AVX512-BF16 or AMX-BF16): "
          f"{'yes' if native_bf16() else 'no, oneDNN emulates it'}")  # fmt: skip
    print_table(rows, device, frame.shape, args.evaluations)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def print_table(rows: dict[str, Any], device: torch.device, shape: tuple[int, ...],
                evaluations: int) -> None:  # fmt: skip
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"{name}, {shape[1]}x{shape[0]}, {evaluations} evaluations from the content\n")
    print("| run | loss vs fp32 (one pass) | gradient cosine | style | content | "
          "pixels vs fp32: mean / p99 (levels) | s per evaluation |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        one = (
            (f"{r['loss_rel_diff']:.1e}", f"{r['grad_cosine']:.5f}")
            if "grad_cosine" in r
            else ("-", "-")
        )
        pixels = f"{r['mean_levels']:.2f} / {r['p99_levels']:.0f}"
        print(f"| {label} | {one[0]} | {one[1]} | {r['style']:.5f} | {r['content']:.4f} | "
              f"{pixels} | {r['s_per_eval'] * 1000:.0f} ms |")  # fmt: skip


if __name__ == "__main__":
    main()
