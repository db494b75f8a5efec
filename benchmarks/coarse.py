"""Coarse-to-fine against single scale for a first frame (docs/quality.md, Coarse-to-fine).

For each content image at --size, renders it single-scale with --iterations evaluations, then
once per --variant START:STEP:SHARE (coarse_start, coarse_step, fine_share) with the same total
evaluations. Prints, per run: the CPU seconds, the final full-size loss (the optimized loss,
weighted, as the engine's last level reports it) and the unweighted terms; and, for each
variant, the best loss every 10 evaluations (its progress events) in the JSON's `data`, from
which the CPU seconds single scale took to reach a variant's final loss follow. Outputs are
written for `python -m benchmarks quality`; with --save-every N also the best full-size
iterate every N evaluations (counted over all levels) to OUT/NAME@EVAL/, with its CPU seconds in
the JSON, so a run can be scored along the way (single scale after 150 of 300 evaluations is
the same picture as single scale with 150).

    python -m benchmarks coarse --content frames/ --style starry.jpg --size 512 \\
        --model vgg19-caffe --weights vgg19.pth --variant 256:2:0.333 256:1.4142:0.333 \\
        --out bench-out/coarse --save-every 50
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from benchmarks.harness import Result, Table, add_network_options, progress, with_network
from benchmarks.metrics import content_images, read_rgb
from nst_video.api import make_engine
from nst_video.config import Settings
from nst_video.media import write_image
from nst_video.progress import ITERATE, Iteration, asking
from nst_video.video.levels import level_long_sides, split_budget
from nst_video.video.resize import resize_long_side

SUMMARY = "coarse-to-fine against single scale for a first frame, same total evaluations"
COLUMNS = ["run", "image", "levels", "budgets", "CPU s", "evaluations", "loss", "style",
           "content"]  # fmt: skip


TRACE_EVERY = 10  # the trace's loss every this many evaluations (counted over all levels)


def timed(
    engine, content, budget: int, save_every: int = 0, save: Callable | None = None
) -> tuple[object, list[tuple[float, float]], float]:
    """The result, (CPU seconds, best loss) every TRACE_EVERY evaluations over the levels, and
    the CPU seconds; with `save_every`, save(evaluation, CPU seconds, image) for the best
    full-size iterate every that many evaluations, counted over all levels."""
    trace: list[tuple[float, float]] = []
    start = time.process_time()
    traced = [0]  # the evaluation of the trace's last entry

    def callback(event: object) -> None:
        if not isinstance(event, Iteration):
            return
        seconds = time.process_time() - start
        # Events come every log_every evaluations of a level: a level after an early stop
        # starts off the multiples of TRACE_EVERY.
        if event.evaluation - traced[0] >= TRACE_EVERY:
            trace.append((seconds, event.loss))
            traced[0] = event.evaluation
        full = event.image is not None and event.level == event.levels - 1
        if save_every and event.evaluation % save_every == 0 and full and save is not None:
            save(event.evaluation, seconds, event.image)

    done = engine.stylize(
        content, content, budget, callback=asking(callback, ITERATE) if save_every else callback
    )
    return done, trace, time.process_time() - start


def saver(out: Path, name: str, stem: str, snapshots: list[tuple[int, float]]) -> Callable:
    """A `save` for `timed`: OUT/NAME@EVAL/STEM.png, noted in `snapshots`."""

    def save(evaluation: int, seconds: float, image) -> None:
        target = out / f"{name}@{evaluation:04d}" / f"{stem}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_image(target, image)
        snapshots.append((evaluation, round(seconds, 1)))

    return save


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content", type=Path, required=True)
    parser.add_argument("--style", type=Path, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--padding", default=None, help="ImageConfig.padding (default: its own)")
    parser.add_argument(
        "--margin", type=int, default=None, help="ImageConfig.margin (default: its own)"
    )
    parser.add_argument("--variant", nargs="*", default=["256:2:0.333"])
    parser.add_argument("--no-single", action="store_true", help="skip the single-scale run")
    parser.add_argument(
        "--save-every",
        type=int,
        default=0,
        help="also save the best full-size iterate every N evaluations (0: only the result)",
    )
    parser.add_argument("--out", type=Path, required=True)
    add_network_options(parser)


def run(args: argparse.Namespace) -> Result:
    base = with_network(Settings(), args)
    image = base.image if args.padding is None else replace(base.image, padding=args.padding)
    image = image if args.margin is None else replace(image, margin=args.margin)
    base = replace(base, image=replace(image, coarse_start=0))
    if args.save_every:  # events every evaluation, so levels of any budget line up
        base = replace(base, optim=replace(base.optim, log_every=1))
    style = read_rgb(args.style)
    runs = [("single", base.image)] if not args.no_single else []
    for text in args.variant:
        start, step, share = text.split(":")
        runs.append(
            (
                f"c2f-{start}-{float(step):.2f}-{float(share):.2f}",
                replace(
                    base.image,
                    coarse_start=int(start),
                    coarse_step=float(step),
                    fine_share=float(share),
                ),
            )
        )
    table = Table(f"{args.iterations} evaluations in all", COLUMNS)
    rows = []
    for path in content_images(args.content):
        content = resize_long_side(read_rgb(path), args.size)
        for name, image_config in runs:
            engine = make_engine([style], replace(base, image=image_config), args.weights)
            sides = level_long_sides(args.size, image_config)
            for side in sides:  # a render computes them once for all its frames: not timed
                engine.style_targets(side)
            snapshots: list[tuple[int, float]] = []
            save = saver(args.out, name, path.stem, snapshots)
            done, trace, seconds = timed(engine, content, args.iterations, args.save_every, save)
            target = args.out / name / f"{path.stem}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            write_image(target, done.image)
            row = {
                "run": name,
                "image": path.stem,
                "levels": sides,
                "budgets": split_budget(args.iterations, len(sides), image_config.fine_share),
                "cpu_s": round(seconds, 1),
                "evaluations": done.optimization.evaluations,
                "loss": done.optimization.loss,
                "terms": {k: round(v, 5) for k, v in done.optimization.terms.items()},
                "trace": [(round(t, 1), round(v, 5)) for t, v in trace],
                "snapshots": snapshots,  # (evaluation, CPU seconds) of OUT/NAME@EVAL/
            }
            rows.append(row)
            table.rows.append([name, path.stem, ", ".join(map(str, sides)),
                               ", ".join(map(str, row["budgets"])), row["cpu_s"],
                               row["evaluations"], done.optimization.loss,
                               *(row["terms"].get(k) for k in ("style", "content"))])  # fmt: skip
            progress(f"{name} {path.stem}: {seconds:.1f} CPU s")
    return Result([table], {"runs": rows})
