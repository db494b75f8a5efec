"""A grid of settings variants x styles x content images, rendered for calibrating defaults
(docs/quality.md, Calibration).

Each variant is NAME or NAME:section.field=value,... over today's Settings (the network given
by --model/--weights); values are read as Python literals. Outputs go to
OUT/STYLE_STEM/NAME/CONTENT_STEM.png (the layout `python -m benchmarks quality` reads), one
JSON line per render (CPU seconds, evaluations, final loss and terms) to OUT/runs.jsonl; the
table lists the renders this run made.

    python -m benchmarks calib --content frames/ --style starry.jpg ink.png --size 256 \\
        --variants base sw1:loss.style_weight=1 sw10:loss.style_weight=10 --out calib-out

A render whose PNG already exists is skipped, so an interrupted sweep continues.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    Result,
    Table,
    add_network_options,
    network_label,
    progress,
    with_network,
)
from benchmarks.metrics import content_images, read_rgb
from nst_video.api import make_engine
from nst_video.config import Settings
from nst_video.media import write_image
from nst_video.video.resize import resize_long_side

SUMMARY = "render settings variants x styles x content images for calibrating defaults"
COLUMNS = ["style", "variant", "image", "size", "evaluations", "CPU s", "loss"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content", type=Path, nargs="+", required=True,
                        help="content images or folders")  # fmt: skip
    parser.add_argument("--style", type=Path, nargs="+", required=True, help="style images")
    parser.add_argument("--size", type=int, default=256, help="long side of the render")
    parser.add_argument("--variants", nargs="+", default=["base"],
                        help="NAME or NAME:section.field=value,... (default: base)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    add_network_options(parser)


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """'sw1:loss.style_weight=1,loss.tv_weight=3' -> ('sw1', {'loss.style_weight': 1, ...});
    a tuple value keeps its commas: 'lw:loss.style_layer_weights=(4,3,2,1,1)'."""
    name, _, rest = spec.partition(":")
    changes: dict[str, Any] = {}
    for item in filter(None, re.split(r",(?=\w+\.\w+=)", rest)):
        key, _, value = item.partition("=")
        try:
            changes[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            changes[key] = value  # a bare word such as w2
    return name, changes


def apply(settings: Settings, changes: dict[str, Any]) -> Settings:
    """`settings` with each 'section.field' in `changes` set."""
    for key, value in changes.items():
        section, name = key.split(".")
        part = replace(getattr(settings, section), **{name: value})
        settings = replace(settings, **{section: part})
    return settings


def run(args: argparse.Namespace) -> Result:
    contents = [p for c in args.content for p in content_images(c)]
    log = args.out / "runs.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    skipped = 0
    for style_path in args.style:
        for spec in args.variants:
            name, changes = parse_variant(spec)
            settings = apply(with_network(Settings(), args), changes)
            todo = [p for p in contents if not _target(args, style_path, name, p).exists()]
            skipped += len(contents) - len(todo)
            if not todo:
                continue
            engine = make_engine([read_rgb(style_path)], settings, args.weights)
            for path in todo:
                row = _render(args, engine, settings, style_path, name, path)
                with log.open("a") as stream:
                    stream.write(json.dumps(row) + "\n")
                progress(json.dumps(row))
                rows.append(row)
    notes = [f"{skipped} renders already in {args.out}, skipped"] if skipped else []
    return Result([_table(args, rows)], {"runs": rows}, notes)


def _render(
    args: argparse.Namespace, engine: Any, settings: Settings, style_path: Path, name: str,
    path: Path,
) -> dict[str, Any]:  # fmt: skip
    """Render one content image with one variant; write it; its runs.jsonl row."""
    content = resize_long_side(read_rgb(path), args.size)
    start = time.process_time()
    done = engine.stylize(content, content, settings.optim.iterations)
    seconds = time.process_time() - start
    target = _target(args, style_path, name, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_image(target, done.image)
    result = done.optimization
    return {
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


def _table(args: argparse.Namespace, rows: list[dict[str, Any]]) -> Table:
    """The renders made, with every loss term any of them reported (a variant may add one)."""
    fixed = {"style_image", "variant", "image", "size", "cpu_s", "evaluations", "loss", "network"}
    terms = list(dict.fromkeys(k for row in rows for k in row if k not in fixed))
    table = Table(f"{args.size} px, renders made by this run", [*COLUMNS, *terms])
    for row in rows:
        table.rows.append(
            [row["style_image"], row["variant"], row["image"], row["size"], row["evaluations"],
             row["cpu_s"], row["loss"], *(row.get(term) for term in terms)]
        )  # fmt: skip
    return table


def _target(args: argparse.Namespace, style: Path, variant: str, content: Path) -> Path:
    return args.out / style.stem / variant / f"{content.stem}.png"
