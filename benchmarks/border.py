"""The dark frame line along the border: how the VGG's padding and margin change it
(docs/quality.md).

Stylizes each content image once per --padding, --margins value and size, writes the outputs
under --out, and reports the frame-line figure (`border` in metrics.py: how much darker the
outer 3 px band is than the next 3 px inward, in grey levels, minus the same in the content)
with CPU time.

    python -m benchmarks border --content frames/ --style starry_night_cropped.jpg \\
        --model vgg19-caffe --weights vgg19.pth --padding zero replicate --sizes 256 512 \\
        --out bench-out/border
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.harness import Result, Table, add_network_options, progress, with_network
from benchmarks.metrics import band_step, border_band, content_images, read_rgb
from nst_video.api import make_engine
from nst_video.config import PADDINGS, Settings
from nst_video.media import write_image
from nst_video.video.resize import resize_long_side

SUMMARY = "the frame line along the border per VGG padding, margin and size"
COLUMNS = ["padding", "margin", "size", "image", "border", "band step", "content band step",
           "evaluations", "CPU s"]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content", type=Path, required=True, help="content image or folder")
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
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    add_network_options(parser)


def run(args: argparse.Namespace) -> Result:
    style = read_rgb(args.style)
    table = Table(f"{args.iterations} evaluations", COLUMNS)
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
                write_image(target, done.image)
                row = [padding, margin, size, path.stem,
                       round(border_band(done.image, content), 2), round(band_step(done.image), 2),
                       round(band_step(content), 2), done.optimization.evaluations,
                       round(seconds, 1)]  # fmt: skip
                table.rows.append(row)
                progress(" ".join(map(str, row)))
    return Result([table])
