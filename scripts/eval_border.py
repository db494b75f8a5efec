"""The dark frame line along the border: how the VGG's padding changes it (docs/quality.md).

Stylizes each content image once per --padding and size, writes the outputs, and prints the
frame-line figure (`border_band`, defined in score_quality.py: how much darker the outer 3 px
band is than the next 3 px inward, in grey levels, minus the same in the content) with CPU time.

    python scripts/eval_border.py --content frames/ --style starry_night_cropped.jpg \\
        --model vgg19-caffe --weights vgg19.pth --padding zero reflect --sizes 256 512 \\
        --out bench-out/border
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from benchlib import add_network_options, network_label, with_network
from score_quality import border_band, content_images, read_rgb

from nst_video.api import make_engine
from nst_video.config import PADDINGS, Settings
from nst_video.core.engine import Engine, Stylized
from nst_video.video.resize import resize_long_side

CANVAS = "canvas"
MARGIN = 16  # px of mirrored canvas around the frame: one relu3_1 receptive field and more


def stylize(engine: Engine, content: np.ndarray, budget: int, canvas: bool) -> Stylized:
    """The engine's result, or with `canvas` its result on the mirrored canvas, cropped."""
    if not canvas:
        return engine.stylize(content, content, budget)
    big = cv2.copyMakeBorder(content, *(MARGIN,) * 4, cv2.BORDER_REFLECT_101)
    done = engine.stylize(big, big, budget)
    return replace(done, image=done.image[MARGIN:-MARGIN, MARGIN:-MARGIN].copy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", type=Path, required=True)
    parser.add_argument("--style", type=Path, required=True)
    parser.add_argument(
        "--padding",
        nargs="+",
        choices=(*PADDINGS, CANVAS),
        default=list(PADDINGS),
        help=f"{CANVAS}: zero padding, on the content mirrored {MARGIN} px past each edge "
        "(the margin is optimized too and cropped away after)",
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[256])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--out", type=Path, required=True)
    add_network_options(parser)
    args = parser.parse_args()

    style = read_rgb(args.style)
    rows = []
    for padding in args.padding:
        settings = with_network(Settings(), args)
        settings = replace(
            settings,
            image=replace(settings.image, padding="zero" if padding == CANVAS else padding),
            optim=replace(settings.optim, iterations=args.iterations),
        )
        engine = make_engine([style], settings, args.weights)
        for size in args.sizes:
            for path in content_images(args.content):
                content = resize_long_side(read_rgb(path), size)
                start = time.process_time()
                done = stylize(engine, content, args.iterations, padding == CANVAS)
                seconds = time.process_time() - start
                target = args.out / f"{padding}-{size}" / f"{path.stem}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(target), cv2.cvtColor(done.image, cv2.COLOR_RGB2BGR))
                row = {
                    "padding": padding,
                    "size": size,
                    "image": path.stem,
                    "border_band": border_band(done.image, content),
                    "evaluations": done.optimization.evaluations,
                    "cpu_s": seconds,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"network: {network_label(args)}; {args.iterations} evaluations")


if __name__ == "__main__":
    main()
