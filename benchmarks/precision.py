"""Benchmark (never a test): how far reduced precision moves losses and outputs from fp32.

For each precision (fp32, bf16, and tf32 on CUDA) it reports, on the same frame:

* one pass: the loss of the content image and the cosine between its gradient and fp32's;
* a whole optimization from the content (--evaluations, no early stop): the output's style and
  content terms scored in fp32, the pixel difference from fp32's output, seconds per evaluation;
* the baseline that makes those differences readable: fp32 again from a start perturbed by
  1e-4 (optimization paths drift apart by themselves, whatever the precision).

    python -m benchmarks precision --input ../shared/data/tree.avi \\
        --style ../shared/data/starry_night.jpg --model vgg16-caffe --weights W.pth \\
        --size 256 --device auto
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from benchmarks.harness import Result, Table, add_network_options, with_network
from nst_video.api import make_engine
from nst_video.config import OptimConfig, Settings
from nst_video.core.device import configure_backend, native_bf16
from nst_video.core.engine import Engine, to_tensor
from nst_video.media import open_source
from nst_video.media.images import read_image
from nst_video.video.resize import resize_long_side

SUMMARY = "how far reduced precision moves losses and outputs from fp32"


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default="samples/tree.mp4")
    parser.add_argument("--style", default="samples/starry-night.jpg")
    add_network_options(parser)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--evaluations", type=int, default=100)
    parser.add_argument("--device", default="auto")


def run(args: argparse.Namespace) -> Result:
    style = read_image(args.style)
    frame = resize_long_side(next(iter(open_source(args.input).frames(args.start, 1))), args.size)
    base = with_network(Settings(), args)
    base = replace(base, optim=OptimConfig(tolerance=0.0))

    def engine(precision: str) -> Engine:
        compute = replace(base.compute, device=args.device, precision=precision)
        return make_engine([style], replace(base, compute=compute), args.weights)

    reference = engine("fp32")
    device = reference.device
    precisions = ["fp32", "tf32", "bf16"] if device.type == "cuda" else ["fp32", "bf16"]
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
    native = "yes" if native_bf16() else "no, oneDNN emulates it"
    note = f"this CPU has native bf16 (AVX512-BF16 or AMX-BF16): {native}"
    return Result([table(rows, device, frame.shape, args.evaluations)], rows, [note])


def table(rows: dict[str, Any], device: torch.device, shape: tuple[int, ...],
          evaluations: int) -> Table:  # fmt: skip
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    result = Table(
        f"{name}, {shape[1]}x{shape[0]}, {evaluations} evaluations from the content",
        ["run", "loss vs fp32 (one pass)", "gradient cosine", "style", "content",
         "pixels vs fp32: mean / p99 (levels)", "ms per evaluation"],
    )  # fmt: skip
    for label, r in rows.items():
        pixels = f"{r['mean_levels']:.2f} / {r['p99_levels']:.0f}"
        result.rows.append([label, r.get("loss_rel_diff"), r.get("grad_cosine"), r["style"],
                            r["content"], pixels, r["s_per_eval"] * 1000])  # fmt: skip
    return result
