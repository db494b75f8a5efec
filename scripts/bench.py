"""Speed benchmark (never a test): VGG floor, per-evaluation overhead, s/frame, memory,
multi-scale, and the seed tutorial's way (independent frames, 300 L-BFGS evaluations).

    .venv/bin/python scripts/bench.py --input samples/tree.mp4 --style samples/starry-night.jpg \\
        --model vgg16-caffe --weights W.pth --size 256 --frames 6 --device auto

Prints a Markdown table and writes JSON (--json). Medians over --repeats, all in one run.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchlib import add_network_options, network_label, with_network
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

from nst_video.config import ComputeConfig, Settings
from nst_video.core import device as core_device
from nst_video.core import losses
from nst_video.core.device import configure_backend, pick_device
from nst_video.core.engine import Engine, to_tensor
from nst_video.core.optimize import optimize
from nst_video.core.weights import load_state_dict
from nst_video.media import open_source
from nst_video.media.images import read_image
from nst_video.pipeline.sweep import FirstPass
from nst_video.video.resize import resize_long_side
from nst_video.workdir.store import WorkDir


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# The clock of `once`: wall time, or with --clock cpu this process's CPU time, which on a shared
# machine leaves out the time other processes held the cores (CPU device, one thread).
CLOCK = time.perf_counter


def once(fn, device: torch.device) -> float:  # noqa: ANN001
    """Seconds of one fn() call, device work included."""
    sync(device)
    start = CLOCK()
    fn()
    sync(device)
    return CLOCK() - start


def floor_and_evaluation(
    engine: Engine, frame: np.ndarray, evaluations: int, repeats: int
) -> tuple[float, float, float]:
    """Median seconds of one bare VGG forward+backward to the deepest layer in use (the floor)
    and of one loss evaluation inside the optimizer, and the median of their per-round ratio.
    The two alternate round by round, so load from other processes hits both alike."""
    return interleaved_floors([engine], frame, evaluations, repeats)[0]


def interleaved_floors(
    engines: list[Engine], frame: np.ndarray, evaluations: int, repeats: int
) -> list[tuple[float, float, float]]:
    """floor_and_evaluation for several engines, their rounds interleaved (A B A B ...), so
    their figures compare under the same load."""
    rounds = [_floor_round(engine, frame, evaluations) for engine in engines]
    for run in rounds:
        run()  # warm-up: allocator, cuDNN autotuning
    floors: list[list[float]] = [[] for _ in engines]
    evals: list[list[float]] = [[] for _ in engines]
    for _ in range(repeats):
        for run, floor, per_eval in zip(rounds, floors, evals, strict=True):
            f, e = run()
            floor.append(f)
            per_eval.append(e)
    return [
        (
            statistics.median(f),
            statistics.median(e),
            statistics.median(a / b for a, b in zip(e, f, strict=True)),
        )
        for f, e in zip(floors, evals, strict=True)
    ]


def _floor_round(engine: Engine, frame: np.ndarray, evaluations: int):  # noqa: ANN202
    """One round: seconds of a bare pass (mean of 5) and of an evaluation (mean over a run)."""
    x = to_tensor(frame, engine.device).requires_grad_(True)

    def bare() -> None:
        for _ in range(5):
            features = engine.features(x)
            sum(f.float().mean() for f in features.values()).backward()
            x.grad = None

    def optimized() -> None:
        result = engine.stylize(frame, frame, evaluations)
        assert result.optimization.evaluations == evaluations

    def run() -> tuple[float, float]:
        floor = once(bare, engine.device) / 5
        return floor, once(optimized, engine.device) / evaluations

    return run


def evaluation_parts(engine: Engine, frame: np.ndarray, repeats: int) -> dict[str, float]:
    """Median seconds of the parts of one evaluation, each forward+backward on its own: the bare
    VGG pass, the loss alone (no optimizer), the five Grams, the style terms (Grams and relative
    errors), and the content, TV and range terms (on detached features)."""
    loss_fn = engine.loss_for(frame)
    x = to_tensor(frame, engine.device).requires_grad_(True)
    features = {k: v.detach().requires_grad_(True) for k, v in engine.features(x).items()}
    targets = engine.style_targets(max(frame.shape[:2]))
    content = engine.settings.loss.content_layers[0]

    def bare() -> None:
        sum(f.mean() for f in engine.features(x).values()).backward()

    def loss_alone() -> None:
        loss_fn(x)[0].backward()

    def grams() -> None:
        sum(losses.gram(features[name]).sum() for name in targets.grams).backward()

    def style_terms() -> None:
        targets.loss(features).backward()

    def other_terms() -> None:
        term = losses.content_loss(features[content], features[content].detach() * 0.9)
        (term + losses.tv_loss(x) + losses.range_loss(x)).backward()

    parts = {
        "bare VGG pass": bare,
        "loss evaluation without the optimizer": loss_alone,
        "5 Gram matrices": grams,
        "style terms (Grams + relative errors)": style_terms,
        "content, TV and range terms": other_terms,
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(repeats + 1):  # the first round warms up
        for name, fn in parts.items():
            times[name].append(once(fn, engine.device))
            x.grad = None
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def with_layout(engine: Engine, layout: str) -> Engine:
    """The engine with its VGG in `layout` (cl: channels-last, the default on CPU and CUDA;
    nchw: contiguous, what the CPU used before), for the layout comparison."""
    fmt = torch.channels_last if layout == "cl" else torch.contiguous_format
    other = copy.copy(engine)
    other.vgg = copy.deepcopy(engine.vgg).to(memory_format=fmt)
    other.channels_last = layout == "cl"
    return other


def render_clip(engine: Engine, source, indices: range, long_side: int) -> dict[str, Any]:  # noqa: ANN001
    """Render frames like `nst-video video` does; returns timing and loss statistics."""
    with tempfile.TemporaryDirectory() as tmp:
        work = WorkDir(Path(tmp))
        work.frames_dir.mkdir(parents=True)
        sync(engine.device)
        start = time.perf_counter()
        FirstPass(engine, engine.settings.video, source, work.frames, indices, long_side).run()
        sync(engine.device)
        wall = time.perf_counter() - start
        stats = [work.frames.read_stats(i) for i in indices]
    busy = sum(s["seconds"] for s in stats)
    return {
        "wall": wall,
        "s_per_frame": wall / len(indices),
        "optimizer_busy": busy / wall,
        "evals_first": stats[0]["iterations"],
        "evals_later": statistics.mean(s["iterations"] for s in stats[1:])
        if len(stats) > 1
        else None,
        "style": statistics.mean(s["style"] for s in stats),
    }


def device_busy(engine: Engine, source, indices: range, long_side: int) -> float:  # noqa: ANN001
    """Fraction of a clip render's wall time the device spends computing: on CUDA the union of
    kernel intervals, on the CPU the union of top-level torch ops (under the profiler)."""
    cuda = engine.device.type == "cuda"
    activity = ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU
    with tempfile.TemporaryDirectory() as tmp:
        work = WorkDir(Path(tmp))
        work.frames_dir.mkdir(parents=True)
        sync(engine.device)
        with profile(activities=[activity]) as prof:
            start = time.perf_counter()
            FirstPass(engine, engine.settings.video, source, work.frames, indices, long_side).run()
            sync(engine.device)
            wall = time.perf_counter() - start
    kind = DeviceType.CUDA if cuda else DeviceType.CPU
    spans = sorted(
        (e.time_range.start, e.time_range.end)
        for e in prof.events()
        if e.device_type == kind and (cuda or e.cpu_parent is None)
    )
    busy, reach = 0.0, float("-inf")
    for begin, end in spans:  # union of intervals, in microseconds
        busy += max(0.0, end - max(begin, reach))
        reach = max(reach, end)
    return busy / 1e6 / wall


def host_reads(engine: Engine, frame: np.ndarray, evaluations: int) -> dict[str, float]:
    """Device-to-host reads per loss evaluation: ours vs torch.optim.LBFGS on the same loss.
    Each is a synchronisation on a GPU (the queue drains while Python decides)."""
    content = to_tensor(frame, engine.device)
    loss_fn = engine.loss_for(frame)
    ours = _Reads()
    real_read = core_device.to_host
    core_device.to_host = lambda *v: ours.copied() or real_read(*v)  # type: ignore[assignment]
    try:
        with ours:
            result = optimize(loss_fn, content, evaluations, replace(Settings().optim, tolerance=0))
    finally:
        core_device.to_host = real_read
    x = content.clone().requires_grad_(True)
    history = engine.settings.optim.history_size
    reference = torch.optim.LBFGS([x], max_iter=evaluations, max_eval=evaluations,
                                  history_size=history, tolerance_grad=0, tolerance_change=0,
                                  line_search_fn="strong_wolfe")  # fmt: skip

    def closure() -> torch.Tensor:
        reference.zero_grad()
        value = loss_fn(x)[0]
        value.backward()
        return value

    theirs = _Reads()
    with theirs:
        reference.step(closure)
    spent = reference.state[x]["func_evals"]
    return {
        "ours_per_eval": ours.count / result.evaluations,
        "torch_lbfgs_per_eval": theirs.count / spent,
    }


class _Reads(TorchDispatchMode):
    """Counts tensor-to-number conversions and explicit reads (each a device sync on CUDA)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def copied(self) -> None:
        self.count += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def tutorial_way(engine: Engine, frames: list[np.ndarray]) -> dict[str, Any]:
    """Each frame from its content with 300 L-BFGS evaluations, no warm start, no early stop."""
    engine = copy.copy(engine)  # tolerance 0: the default early stop would end small frames early
    engine.settings = replace(engine.settings, optim=replace(engine.settings.optim, tolerance=0))
    styles = []
    sync(engine.device)
    start = time.perf_counter()
    for frame in frames:
        out = engine.stylize(frame, frame, 300)
        styles.append(out.optimization.terms["style"])
    sync(engine.device)
    wall = time.perf_counter() - start
    return {"wall": wall, "s_per_frame": wall / len(frames), "style": statistics.mean(styles)}


def multiscale(make: Any, frame: np.ndarray, budget: int) -> dict[str, Any]:
    """Full-size only vs coarse-to-fine from half size (2 levels, the same total evaluations),
    scored at full size the same way."""
    out: dict[str, Any] = {}
    for scales in (1, 2):
        half = max(frame.shape[:2]) // 2
        engine = make(coarse_start=half if scales == 2 else 0)
        engine.style_targets(max(frame.shape[:2]))
        sync(engine.device)
        start = time.perf_counter()
        image = engine.stylize(frame, frame, budget).image
        sync(engine.device)
        out[f"scales{scales}"] = {
            "seconds": time.perf_counter() - start,
            **engine.measure(frame, image),
        }
    return out


def peak_memory(device: torch.device) -> dict[str, float]:
    host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    gpu = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return {"host_peak_mib": host, "gpu_peak_mib": gpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="samples/tree.mp4")
    parser.add_argument("--style", default="samples/starry-night.jpg")
    add_network_options(parser)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--evaluations", type=int, default=50)
    parser.add_argument("--skip-tutorial", action="store_true")
    parser.add_argument(
        "--skip-profile", action="store_true", help="no profiled second clip render"
    )
    parser.add_argument(
        "--skip-multiscale", action="store_true", help="no single vs 2-scale comparison"
    )
    parser.add_argument(
        "--floor-only",
        action="store_true",
        help="measure only the VGG floor and the per-evaluation time (no clip, no multiscale)",
    )
    parser.add_argument(
        "--layouts",
        default="cl",
        help="with --floor-only: comma-separated VGG layouts to compare, rounds interleaved "
        "(cl: channels-last, the default; nchw: contiguous)",
    )
    parser.add_argument(
        "--parts",
        action="store_true",
        help="with --floor-only: also time the parts of an evaluation (Grams, other terms)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what the floor and per-evaluation figures time: wall seconds, or this process's "
        "CPU seconds (for a loaded shared CPU with OMP_NUM_THREADS=1; not for CUDA)",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    state = load_state_dict(args.weights, args.model)
    style = read_image(args.style)
    base = with_network(Settings(), args)
    base = replace(
        base,
        image=replace(base.image, size=args.size),
        compute=ComputeConfig(device=args.device, precision=args.precision),
    )
    device = pick_device(args.device)
    configure_backend(device, args.precision)  # what make_engine does for a render

    def make(**image: Any) -> Engine:
        return Engine(state, [style], replace(base, image=replace(base.image, **image)), device)

    engine = make()
    source = open_source(args.input)
    indices = range(args.start, args.start + args.frames)
    frames = [resize_long_side(f, args.size) for f in source.frames(args.start, args.frames)]
    frame = frames[0]
    engine.style_targets(max(frame.shape[:2]))
    if args.floor_only:
        layouts = args.layouts.split(",")
        engines = [with_layout(engine, layout) for layout in layouts]
        rows = interleaved_floors(engines, frame, args.evaluations, args.repeats)
        for layout, (floor, per_eval, ratio) in zip(layouts, rows, strict=True):
            print(f"| {network_label(args)} | {layout} | {frame.shape[1]}x{frame.shape[0]} | "
                  f"{floor * 1000:.1f} ms | {per_eval * 1000:.1f} ms | {ratio:.2f}x |")  # fmt: skip
        if args.parts:
            parts = [evaluation_parts(e, frame, args.repeats) for e in engines]
            print(f"\n| part, ms ({network_label(args)}) | {' | '.join(layouts)} |")
            print("|---|" + "---|" * len(layouts))
            for name in parts[0]:
                print(f"| {name} | " + " | ".join(f"{p[name] * 1000:.1f}" for p in parts) + " |")
        return
    floor, per_eval, ratio = floor_and_evaluation(engine, frame, args.evaluations, args.repeats)
    clip = render_clip(engine, source, indices, args.size)
    memory = peak_memory(device)  # before the profiler, whose event records take memory
    busy = None if args.skip_profile else device_busy(engine, source, indices, args.size)
    reads = host_reads(engine, frame, args.evaluations)
    result: dict[str, Any] = {
        "network": network_label(args),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, "
        + (torch.cuda.get_device_name() if device.type == "cuda" else "CPU"),
        "device": str(device),
        "precision": f"{args.precision} -> {engine.precision}",  # what auto became here
        "size": list(frame.shape[1::-1]),
        "vgg_floor_s": floor,
        "per_eval_s": per_eval,
        "overhead_ratio": ratio,
        "clip": clip,
        "device_busy": busy,
        "host_reads": reads,
        "fps": 1 / clip["s_per_frame"],
    }
    if not args.skip_multiscale:
        result["multiscale"] = multiscale(make, frame, 300)
    if not args.skip_tutorial:
        tut = tutorial_way(engine, frames)
        result["tutorial"] = tut
        result["speedup_vs_tutorial"] = tut["wall"] / clip["wall"]
    result.update(memory)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_table(r: dict[str, Any]) -> None:
    clip = r["clip"]
    rows = [
        ("network", r["network"]),
        ("machine", r["machine"]),
        ("precision (asked -> resolved)", r["precision"]),
        ("frame size (w x h)", "x".join(map(str, r["size"]))),
        ("VGG fwd+bwd floor", f"{r['vgg_floor_s'] * 1000:.1f} ms"),
        ("per loss evaluation", f"{r['per_eval_s'] * 1000:.1f} ms ({r['overhead_ratio']:.2f}x)"),
        ("seconds per frame", f"{clip['s_per_frame']:.2f} s ({r['fps']:.2f} fps)"),
        ("evaluations first / later", f"{clip['evals_first']} / {clip['evals_later']}"),
        ("optimizer busy fraction", f"{clip['optimizer_busy']:.3f}"),
        ("device busy fraction (profiler)", _fraction(r["device_busy"])),
        (
            "host reads per evaluation",
            f"{r['host_reads']['ours_per_eval']:.2f} "
            f"(torch.optim.LBFGS: {r['host_reads']['torch_lbfgs_per_eval']:.1f})",
        ),
        ("peak host / GPU memory", f"{r['host_peak_mib']:.0f} MiB / {r['gpu_peak_mib']} MiB"),
    ]
    ms = r.get("multiscale", {})
    for key, label in (("scales1", "single scale, 300 evals"), ("scales2", "2 levels, 300 in all")):
        if key not in ms:
            continue
        m = ms[key]
        rows.append(
            (label, f"{m['seconds']:.1f} s, style {m['style']:.4f}, content {m['content']:.3f}")
        )
    if "tutorial" in r:
        t = r["tutorial"]
        rows.append(
            (
                "tutorial way (300 evals/frame)",
                f"{t['s_per_frame']:.2f} s/frame, style {t['style']:.4f} vs ours "
                f"{clip['style']:.4f}; ours {r['speedup_vs_tutorial']:.1f}x faster",
            )
        )
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
