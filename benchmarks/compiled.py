"""Benchmark (never a test): a faster VGG pass on the CPU? (issue 24, docs/benchmarks.md)

Each variant replaces the engine's VGG slice and is timed on one loss evaluation (forward and
backward of the whole loss, as L-BFGS calls it) on a frame's optimized canvas (the frame with
its mirrored margin), CPU seconds per evaluation (median of --repeats), after its warm-up; the
warm-up (where compilation happens) is reported apart. Drift: the loss and gradient of one pass
against eager fp32's, and a whole --evaluations optimization's pixels against eager's, beside
fp32's own run-to-run drift (the same optimization from a start nudged by 1e-4, as
`benchmarks precision` measures it).

* `eager`: today's pass (channels-last on the CPU);
* `eager-nchw`: contiguous layout;
* `compile`: torch.compile (inductor; conv+bias and ReLU fused by its C++/oneDNN lowering);
* `compile-freeze`: the same with inductor's freezing (weights as constants, oneDNN prepacked);
* `jit-freeze`: torch.jit.trace + torch.jit.freeze with oneDNN graph fusion enabled;
* `bf16`: the eager pass under bf16 autocast (`--precision bf16`), for CPUs with native bf16.

    OMP_NUM_THREADS=1 python -m benchmarks compiled --input tree.avi \\
        --style starry_night_cropped.jpg --size 256 --evaluations 30
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from benchmarks.harness import Result, Table, add_network_options, with_network
from benchmarks.precision import one_pass, optimized, pixel_difference
from nst_video.api import make_engine
from nst_video.config import ComputeConfig, OptimConfig, Settings
from nst_video.core.engine import Engine, to_tensor
from nst_video.media import open_source
from nst_video.media.images import read_image
from nst_video.video.resize import resize_long_side

SUMMARY = "torch.compile, jit.freeze and layouts of the VGG pass against eager, CPU"
VARIANTS = ("eager", "eager-nchw", "compile", "compile-freeze", "jit-freeze", "bf16")


def _compiled(engine: Engine, freezing: bool) -> torch.nn.Module:
    import torch._dynamo
    import torch._inductor.config as inductor

    torch._dynamo.reset()  # a fresh compilation: the previous variant's graphs are not reused
    inductor.freezing = freezing
    return torch.compile(engine.vgg)


def _jit_frozen(engine: Engine, example: torch.Tensor) -> torch.nn.Module:
    torch.jit.enable_onednn_fusion(True)
    traced = torch.jit.trace(engine.vgg.eval(), example, strict=False)
    return torch.jit.freeze(traced)


def variant(engine: Engine, name: str, example: torch.Tensor) -> Engine:
    """A shallow copy of `engine` whose VGG slice runs the `name` way."""
    other = copy.copy(engine)
    vgg = copy.deepcopy(engine.vgg)
    other.vgg = vgg
    if name == "eager-nchw":
        other.vgg = vgg.to(memory_format=torch.contiguous_format)
        other.channels_last = False
    elif name == "compile":
        other.vgg = _compiled(other, freezing=False)
    elif name == "compile-freeze":
        other.vgg = _compiled(other, freezing=True)
    elif name == "bf16":
        other.bf16 = True
    elif name == "jit-freeze":
        other.vgg = _jit_frozen(other, example)
    return other


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        out.append(time.process_time() - start)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True)
    parser.add_argument("--style", required=True)
    add_network_options(parser)
    parser.add_argument("--start", type=int, default=35)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--evaluations", type=int, default=30)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)


def run(args: argparse.Namespace) -> Result:
    style = read_image(args.style)
    frame = resize_long_side(next(iter(open_source(args.input).frames(args.start, 1))), args.size)
    base = with_network(Settings(compute=ComputeConfig(device="cpu")), args)
    base = replace(base, optim=OptimConfig(tolerance=0.0))
    margin = base.image.margin
    canvas = np.pad(frame, ((margin, margin), (margin, margin), (0, 0)), mode="reflect")
    reference = make_engine([style], base, args.weights)
    example = to_tensor(canvas, reference.device)
    ref_loss, ref_grad = one_pass(reference, canvas)
    ref_run = optimized(reference, frame, frame, args.evaluations)
    rows: dict[str, dict[str, Any]] = {}
    for name in args.variants:
        try:
            start, wall = time.process_time(), time.perf_counter()
            engine = variant(reference, name, example)
            loss, grad = one_pass(engine, canvas)  # the warm-up: compiles here
            warmup = time.process_time() - start
            warmup_wall = time.perf_counter() - wall
        except Exception as error:  # noqa: BLE001 (a variant that fails is a finding)
            rows[name] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"}
            continue
        times = timed(lambda engine=engine: one_pass(engine, canvas), args.repeats)
        run_ = optimized(engine, frame, frame, args.evaluations)
        rows[name] = {
            "cpu_s_per_eval": statistics.median(times),
            "warmup_cpu_s": warmup,
            "warmup_wall_s": warmup_wall,  # inductor compiles in worker processes too
            "loss_rel_diff": abs(loss - ref_loss) / abs(ref_loss),
            "grad_cosine": float(torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0)),
            **pixel_difference(run_["image"], ref_run["image"]),
        }
    rng = np.random.default_rng(0)
    nudged = np.clip(frame / 255.0 + rng.normal(0, 1e-4, frame.shape), 0, 1).astype(np.float32)
    drift = optimized(reference, frame, nudged, args.evaluations)
    rows["eager, start +1e-4 (fp32 drift)"] = pixel_difference(drift["image"], ref_run["image"])
    return Result([table(rows, canvas.shape, args)], rows, [f"threads {torch.get_num_threads()}"])


def table(rows: dict[str, dict[str, Any]], shape: tuple[int, ...], args) -> Table:
    eager = rows.get("eager", {}).get("cpu_s_per_eval")
    result = Table(
        f"CPU, canvas {shape[1]}x{shape[0]}, {args.evaluations} evaluations from the content",
        ["variant", "CPU s / evaluation", "vs eager", "warm-up CPU s (this process)",
         "warm-up wall s", "loss vs eager",
         "gradient cosine", "pixels vs eager: mean / p99 (levels)", "error"],
    )  # fmt: skip
    for name, r in rows.items():
        per = r.get("cpu_s_per_eval")
        pixels = f"{r['mean_levels']:.2f} / {r['p99_levels']:.0f}" if "mean_levels" in r else None
        result.rows.append([name, per, per / eager if per and eager else None,
                            r.get("warmup_cpu_s"), r.get("warmup_wall_s"),
                            r.get("loss_rel_diff"), r.get("grad_cosine"),
                            pixels, r.get("error")])  # fmt: skip
    return result
