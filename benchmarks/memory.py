"""Peak memory of one frame's optimization per resolution (a benchmark, never a test).

Each size runs in a fresh child process so the peaks do not mix:

    python -m benchmarks memory --model vgg16-caffe --weights W.pth \
        --sizes 256x144,512x288,1920x1080

Reports peak GPU memory (torch.cuda.max_memory_allocated) on CUDA, else the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.harness import Result, Table, add_network_options, with_network

SUMMARY = "peak memory of one frame's optimization per resolution"
CHECKOUT = Path(__file__).resolve().parent.parent  # where the child finds `benchmarks`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="256x144,512x288,1280x720,1920x1080")
    add_network_options(parser)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--evaluations", type=int, default=8)
    parser.add_argument("--history-size", type=int, default=50)


def child(args: argparse.Namespace, size: str) -> None:
    """One size in this (fresh) process: prints its peak GPU memory as JSON."""
    import numpy as np
    import torch

    from nst_video.api import make_engine
    from nst_video.config import Settings

    w, h = (int(v) for v in size.split("x"))
    base = with_network(Settings(), args)
    settings = replace(
        base,
        optim=replace(base.optim, history_size=args.history_size, tolerance=0.0),
        compute=replace(base.compute, device=args.device),
    )
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    engine = make_engine([style], settings, args.weights)
    engine.stylize(frame, frame, args.evaluations)
    cuda = engine.device.type == "cuda"
    gpu = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    print(json.dumps({"size": size, "gpu_peak_mib": gpu}))


def run(args: argparse.Namespace) -> Result:
    table = Table("", ["frame size", "history", "peak GPU memory, MiB", "peak host RSS, MiB"])
    for size in args.sizes.split(","):
        command = [
            sys.executable, "-m", "benchmarks.memory", size, "--device", args.device,
            "--evaluations", str(args.evaluations), "--history-size", str(args.history_size),
            "--model", args.model,
        ]  # fmt: skip
        if args.weights:
            command += ["--weights", args.weights]
        paths = [str(CHECKOUT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        row = json.loads(out.strip().splitlines()[-1])
        # ru_maxrss of children is the largest child's so far: a smaller size reads as none.
        host = round(peak / 1024) if peak > before else "(below an earlier size)"
        gpu = row["gpu_peak_mib"]
        table.rows.append([size, args.history_size, round(gpu) if gpu is not None else None, host])
    return Result([table])


if __name__ == "__main__":  # the child process of one size (see run)
    parser = argparse.ArgumentParser()
    parser.add_argument("size")
    add_arguments(parser)
    parsed = parser.parse_args()
    child(parsed, parsed.size)
