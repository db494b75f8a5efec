"""Render a grid of settings variants x styles x content images for calibrating defaults.

Each variant is NAME or NAME:section.field=value,... over today's Settings (the network given
by --model/--weights); values are read as Python literals. Outputs go to
OUT/STYLE_STEM/NAME/CONTENT_STEM.png (the layout scripts/score_quality.py reads), one JSON line
per render (CPU seconds, evaluations, final loss and terms) to OUT/runs.jsonl and stdout.

    python scripts/calib_sweep.py --content frames/ --style starry.jpg ink.png --size 256 \\
        --variants base sw1:loss.style_weight=1 sw10:loss.style_weight=10 --out calib-out

A render whose PNG already exists is skipped, so an interrupted sweep continues.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's benchmarks/

from benchmarks.harness import add_network_options, network_label, with_network  # noqa: E402
from benchmarks.metrics import content_images, read_rgb  # noqa: E402
from nst_video.api import make_engine  # noqa: E402
from nst_video.config import Settings  # noqa: E402
from nst_video.video.resize import resize_long_side  # noqa: E402


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """'sw1:loss.style_weight=1,loss.tv_weight=3' -> ('sw1', {'loss.style_weight': 1, ...})."""
    name, _, rest = spec.partition(":")
    changes: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            changes[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            changes[key] = value  # a bare word such as w2
    return name, changes


def apply(settings: Settings, changes: dict[str, Any]) -> Settings:
    for key, value in changes.items():
        section, name = key.split(".")
        part = replace(getattr(settings, section), **{name: value})
        settings = replace(settings, **{section: part})
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", type=Path, nargs="+", required=True)
    parser.add_argument("--style", type=Path, nargs="+", required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--variants", nargs="+", default=["base"])
    parser.add_argument("--out", type=Path, required=True)
    add_network_options(parser)
    args = parser.parse_args()

    contents = [p for c in args.content for p in content_images(c)]
    log = args.out / "runs.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)
    for style_path in args.style:
        for spec in args.variants:
            name, changes = parse_variant(spec)
            settings = apply(with_network(Settings(), args), changes)
            todo = [p for p in contents if not _target(args, style_path, name, p).exists()]
            if not todo:
                continue
            engine = make_engine([read_rgb(style_path)], settings, args.weights)
            for path in todo:
                content = resize_long_side(read_rgb(path), args.size)
                start = time.process_time()
                done = engine.stylize(content, content, settings.optim.iterations)
                seconds = time.process_time() - start
                target = _target(args, style_path, name, path)
                target.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(target), cv2.cvtColor(done.image, cv2.COLOR_RGB2BGR))
                result = done.optimization
                row = {
                    "style_image": style_path.stem,
                    "variant": name,
                    "image": path.stem,
                    "size": args.size,
                    "cpu_s": round(seconds, 1),
                    "evaluations": result.evaluations,
                    "loss": round(result.loss, 5),
                    **{k: round(v, 5) for k, v in result.terms.items()},
                    "network": network_label(args),
                }
                with log.open("a") as stream:
                    stream.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


def _target(args: argparse.Namespace, style: Path, variant: str, content: Path) -> Path:
    return args.out / style.stem / variant / f"{content.stem}.png"


if __name__ == "__main__":
    main()
