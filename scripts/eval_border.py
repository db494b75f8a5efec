"""The dark frame line along the border: how the VGG's padding changes it (docs/quality.md).

Stylizes each content image once per --padding, --margins value and size, writes the outputs,
and prints the frame-line figure (`border_band`, defined in score_quality.py: how much darker
the outer 3 px band is than the next 3 px inward, in grey levels, minus the same in the
content) with CPU time.

    python scripts/eval_border.py --content frames/ --style starry_night_cropped.jpg \\
        --model vgg19-caffe --weights vgg19.pth --padding zero replicate --sizes 256 512 \\
        --out bench-out/border
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
from benchlib import add_network_options, network_label, with_network
from score_quality import band_step, border_band, content_images, read_rgb

from nst_video.api import make_engine
from nst_video.config import PADDINGS, Settings
from nst_video.video.resize import resize_long_side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", type=Path, required=True)
    parser.add_argument("--style", type=Path, required=True)
    parser.add_argument("--padding", nargs="+", choices=PADDINGS, default=list(PADDINGS))
    parser.add_argument(
        "--margins",
        nargs="+",
        type=int,
        default=[0],
        help="ImageConfig.margin values: px of mirrored canvas optimized around the frame",
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[256])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--out", type=Path, required=True)
    add_network_options(parser)
    args = parser.parse_args()

    style = read_rgb(args.style)
    for padding, margin in itertools.product(args.padding, args.margins):
        settings = with_network(Settings(), args)
        settings = replace(
            settings,
            image=replace(settings.image, padding=padding, margin=margin),
            optim=replace(settings.optim, iterations=args.iterations),
        )
        engine = make_engine([style], settings, args.weights)
        for size in args.sizes:
            for path in content_images(args.content):
                content = resize_long_side(read_rgb(path), size)
                start = time.process_time()
                done = engine.stylize(content, content, args.iterations)
                seconds = time.process_time() - start
                name = f"{padding}-m{margin}-{size}" if margin else f"{padding}-{size}"
                target = args.out / name / f"{path.stem}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(target), cv2.cvtColor(done.image, cv2.COLOR_RGB2BGR))
                row = {
                    "padding": padding,
                    "margin": margin,
                    "size": size,
                    "image": path.stem,
                    "border_band": round(border_band(done.image, content), 2),
                    "band_step": round(band_step(done.image), 2),
                    "content_band_step": round(band_step(content), 2),
                    "evaluations": done.optimization.evaluations,
                    "cpu_s": round(seconds, 1),
                }
                print(json.dumps(row), flush=True)
    print(f"network: {network_label(args)}; {args.iterations} evaluations")


if __name__ == "__main__":
    main()
