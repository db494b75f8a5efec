"""Speed benchmark (never a test): VGG floor, per-evaluation overhead, s/frame, memory,
multi-scale, and the seed tutorial's way (independent frames, 300 L-BFGS evaluations).

    python -m benchmarks speed --input samples/tree.mp4 --style samples/starry-night.jpg \\
        --model vgg16-caffe --weights W.pth --size 256 --frames 6 --device auto

Medians over --repeats, all in one run. The clip renders go through the pipeline's entry point
(what `nst-video video` runs), with the engine built once.
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.harness import (
    TUTORIAL_EVALUATIONS,
    Result,
    Table,
    add_budget_options,
    add_network_options,
    add_tutorial_option,
    network_label,
    read_report,
    render,
    tutorial_settings,
    with_budgets,
    with_network,
)
from nst_video.api import make_engine
from nst_video.config import ComputeConfig, Settings
from nst_video.core import device as core_device
from nst_video.core import losses
from nst_video.core.engine import Engine, to_tensor
from nst_video.core.optimize import optimize
from nst_video.media import open_source
from nst_video.media.images import read_image
from nst_video.video.resize import resize_long_side

SUMMARY = "VGG floor, per-evaluation overhead, s/frame, memory, multi-scale, the tutorial's way"


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


def evaluation_parts(
    engine: Engine, settings: Settings, frame: np.ndarray, repeats: int
) -> dict[str, float]:
    """Median seconds of the parts of one evaluation, each forward+backward on its own: the bare
    VGG pass, the loss alone (no optimizer), the five Grams, the style terms (Grams and relative
    errors), and the content, TV and range terms (on detached features)."""
    loss_fn = engine.loss_for(frame)
    x = to_tensor(frame, engine.device).requires_grad_(True)
    features = {k: v.detach().requires_grad_(True) for k, v in engine.features(x).items()}
    targets = engine.style_targets(max(frame.shape[:2]))
    content = settings.loss.content_layers[0]

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


def render_frames(
    engine: Engine, settings: Settings, args: argparse.Namespace, tmp: Path
) -> tuple[float, list]:
    """Render --frames from --start like `nst-video video` with `engine` (made from
    `settings`); wall seconds, rows of the render's report."""
    settings = replace(
        settings, video=replace(settings.video, start=args.start, frames=args.frames)
    )
    report = tmp / "report.jsonl"
    sync(engine.device)
    wall = render(args.input, args.style, tmp / "out", tmp / "work", settings, args.weights,
                  report, make_engine=lambda job: engine)  # fmt: skip
    sync(engine.device)
    return wall, read_report(report)


def render_clip(engine: Engine, settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Render the clip like `nst-video video` does; returns timing and loss statistics."""
    with tempfile.TemporaryDirectory() as tmp:
        wall, stats = render_frames(engine, settings, args, Path(tmp))
    busy = sum(s["seconds"] for s in stats)
    return {
        "wall": wall,
        "s_per_frame": wall / len(stats),
        "optimizer_busy": busy / wall,
        "evals_first": stats[0]["iterations"],
        "evals_later": statistics.mean(s["iterations"] for s in stats[1:])
        if len(stats) > 1
        else None,
        "style": statistics.mean(s["style"] for s in stats),
    }


def device_busy(engine: Engine, settings: Settings, args: argparse.Namespace) -> float:
    """Fraction of a clip render's wall time the device spends computing: on CUDA the union of
    kernel intervals, on the CPU the union of top-level torch ops (under the profiler)."""
    cuda = engine.device.type == "cuda"
    activity = ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU
    with tempfile.TemporaryDirectory() as tmp, profile(activities=[activity]) as prof:
        wall, _ = render_frames(engine, settings, args, Path(tmp))
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


def host_reads(
    engine: Engine, settings: Settings, frame: np.ndarray, evaluations: int
) -> dict[str, float]:
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
    history = settings.optim.history_size
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


def tutorial_way(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """The seed tutorial's way (harness.tutorial_settings) over the same frames."""
    tutorial = tutorial_settings(settings, args.tutorial_evaluations)
    engine = make_engine([read_image(args.style)], tutorial, args.weights)
    engine.style_targets(args.size)  # as the way it is compared with: targets made before
    with tempfile.TemporaryDirectory() as tmp:
        wall, stats = render_frames(engine, tutorial, args, Path(tmp))
    styles = [s["style"] for s in stats]
    return {"wall": wall, "s_per_frame": wall / len(stats), "style": statistics.mean(styles)}


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument(
        "--multiscale-evaluations", type=int, default=TUTORIAL_EVALUATIONS,
        help="budget of the single vs 2-scale comparison",
    )  # fmt: skip
    add_budget_options(parser)
    parser.add_argument("--skip-tutorial", action="store_true")
    add_tutorial_option(parser)
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


def floors(
    engine: Engine, settings: Settings, frame: np.ndarray, args: argparse.Namespace
) -> Result:
    """--floor-only: the floor and per-evaluation time per VGG layout (and the parts)."""
    layouts = args.layouts.split(",")
    engines = [with_layout(engine, layout) for layout in layouts]
    rows = interleaved_floors(engines, frame, args.evaluations, args.repeats)
    size = f"{frame.shape[1]}x{frame.shape[0]}"
    table = Table("", ["network", "layout", "size", "VGG floor, ms", "per evaluation, ms",
                       "ratio"])  # fmt: skip
    for layout, (floor, per_eval, ratio) in zip(layouts, rows, strict=True):
        table.rows.append([network_label(args), layout, size, floor * 1000, per_eval * 1000,
                           ratio])  # fmt: skip
    tables = [table]
    if args.parts:
        parts = [evaluation_parts(e, settings, frame, args.repeats) for e in engines]
        tables.append(
            Table(
                f"parts of an evaluation, ms ({network_label(args)})",
                ["part", *layouts],
                [[name, *(p[name] * 1000 for p in parts)] for name in parts[0]],
            )
        )
    return Result(tables, {"floors": rows})


def run(args: argparse.Namespace) -> Result:
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    style = read_image(args.style)
    base = with_budgets(with_network(Settings(), args), args)
    base = replace(
        base,
        image=replace(base.image, size=args.size),
        compute=ComputeConfig(device=args.device, precision=args.precision),
    )

    def make(**image: Any) -> Engine:
        settings = replace(base, image=replace(base.image, **image))
        return make_engine([style], settings, args.weights)

    engine = make()
    device = engine.device
    source = open_source(args.input)
    frames = [resize_long_side(f, args.size) for f in source.frames(args.start, args.frames)]
    frame = frames[0]
    engine.style_targets(max(frame.shape[:2]))
    if args.floor_only:
        return floors(engine, base, frame, args)
    floor, per_eval, ratio = floor_and_evaluation(engine, frame, args.evaluations, args.repeats)
    clip = render_clip(engine, base, args)
    memory = peak_memory(device)  # before the profiler, whose event records take memory
    busy = None if args.skip_profile else device_busy(engine, base, args)
    reads = host_reads(engine, base, frame, args.evaluations)
    result: dict[str, Any] = {
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
        result["multiscale"] = multiscale(make, frame, args.multiscale_evaluations)
    if not args.skip_tutorial:
        tut = tutorial_way(base, args)
        result["tutorial"] = tut
        result["speedup_vs_tutorial"] = tut["wall"] / clip["wall"]
    result.update(memory)
    return Result([summary_table(result, args)], result)


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary_table(r: dict[str, Any], args: argparse.Namespace) -> Table:
    clip = r["clip"]
    rows = [
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
    budget = args.multiscale_evaluations
    for key, label in (("scales1", f"single scale, {budget} evals"),
                       ("scales2", f"2 levels, {budget} in all")):  # fmt: skip
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
                f"tutorial way ({args.tutorial_evaluations} evals/frame)",
                f"{t['s_per_frame']:.2f} s/frame, style {t['style']:.4f} vs ours "
                f"{clip['style']:.4f}; ours {r['speedup_vs_tutorial']:.1f}x faster",
            )
        )
    return Table("", ["measure", "value"], [list(row) for row in rows])
