"""Peak memory of one frame's optimization per resolution (a benchmark, never a test).

Each size runs in a fresh child process so the peaks do not mix:

    .venv/bin/python scripts/bench_memory.py --model vgg16-caffe --weights W.pth \
        --sizes 256x144,512x288,1920x1080

Reports peak GPU memory (torch.cuda.max_memory_allocated) on CUDA, else the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from dataclasses import replace

from benchlib import add_network_options, network_label


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from benchlib import with_network

    from nst_video.config import Settings
    from nst_video.core.device import configure_backend, pick_device
    from nst_video.core.engine import Engine
    from nst_video.core.weights import load_state_dict

    w, h = (int(v) for v in args.child.split("x"))
    base = with_network(Settings(), args)
    settings = replace(
        base,
        optim=replace(base.optim, history_size=args.history_size, tolerance=0.0),
        compute=replace(base.compute, device=args.device),
    )
    device, weights, evaluations, size = args.device, args.weights, args.evaluations, args.child
    dev = pick_device(device)
    configure_backend(dev, settings.compute.precision)  # what make_engine does for a render
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    engine = Engine(load_state_dict(weights, args.model), [style], settings, dev)
    engine.stylize(frame, frame, evaluations)
    gpu = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    print(json.dumps({"size": size, "gpu_peak_mib": gpu}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256x144,512x288,1280x720,1920x1080")
    add_network_options(parser)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--evaluations", type=int, default=8)
    parser.add_argument("--history-size", type=int, default=50)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(network_label(args))
    print("| frame size | history | peak GPU memory | peak host RSS |\n|---|---|---|---|")
    for size in args.sizes.split(","):
        command = [
            sys.executable,
            __file__,
            "--child",
            size,
            "--device",
            args.device,
            "--evaluations",
            str(args.evaluations),
            "--history-size",
            str(args.history_size),
            "--model",
            args.model,
        ]
        if args.weights:
            command += ["--weights", args.weights]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        row = json.loads(out.strip().splitlines()[-1])
        host = f"{peak / 1024:.0f} MiB" if peak > before else "(below an earlier size)"
        gpu = f"{row['gpu_peak_mib']:.0f} MiB" if row["gpu_peak_mib"] is not None else "-"
        print(f"| {size} | {args.history_size} | {gpu} | {host} |")


if __name__ == "__main__":
    main()
