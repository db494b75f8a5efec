"""Coarse-to-fine against single scale for a first frame (docs/quality.md, Coarse-to-fine).

For each content image at --size, renders it single-scale with --iterations evaluations, then
once per --variant START:STEP:SHARE (coarse_start, coarse_step, fine_share) with the same total
evaluations. Prints, per run: the CPU seconds, the final full-size loss (the optimized loss,
weighted, as the engine's last level reports it) and the unweighted terms; and, for each
variant, the CPU seconds single scale took to reach the variant's final loss (from its
progress events, every 10 evaluations). Outputs are written for score_quality.py.

    python scripts/eval_coarse.py --content frames/ --style starry.jpg --size 512 \\
        --model vgg19-caffe --weights vgg19.pth --variant 256:2:0.333 256:1.4142:0.333 \\
        --out bench-out/coarse
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
from benchlib import add_network_options, network_label, with_network
from score_quality import content_images, read_rgb

from nst_video.api import make_engine
from nst_video.config import Settings
from nst_video.core.engine import level_long_sides, split_budget
from nst_video.progress import Iteration
from nst_video.video.resize import resize_long_side


def run(engine, content, budget: int) -> tuple[object, list[tuple[float, float]], float]:
    """The result, (CPU seconds, best loss) every 10 evaluations, and the CPU seconds."""
    trace: list[tuple[float, float]] = []
    start = time.process_time()

    def callback(event: object) -> None:
        if isinstance(event, Iteration):
            trace.append((time.process_time() - start, event.loss))

    done = engine.stylize(content, content, budget, callback=callback)
    return done, trace, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--out", type=Path, required=True)
    add_network_options(parser)
    args = parser.parse_args()

    base = with_network(Settings(), args)
    image = base.image if args.padding is None else replace(base.image, padding=args.padding)
    image = image if args.margin is None else replace(image, margin=args.margin)
    base = replace(base, image=replace(image, coarse_start=0))
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
    for path in content_images(args.content):
        content = resize_long_side(read_rgb(path), args.size)
        for name, image_config in runs:
            engine = make_engine([style], replace(base, image=image_config), args.weights)
            sides = level_long_sides(args.size, image_config)
            for side in sides:  # a render computes them once for all its frames: not timed
                engine.style_targets(side)
            done, trace, seconds = run(engine, content, args.iterations)
            target = args.out / name / f"{path.stem}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(target), cv2.cvtColor(done.image, cv2.COLOR_RGB2BGR))
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
            }
            print(json.dumps(row), flush=True)
    print(f"network: {network_label(args)}; {args.iterations} evaluations in all")


if __name__ == "__main__":
    main()
