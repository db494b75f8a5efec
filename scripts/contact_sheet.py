"""A labelled contact sheet (small JPEG) from rows of images, for docs/*.jpg.

    python scripts/contact_sheet.py --out docs/frame-line.jpg --height 192 \\
        --row "256 px" zero=a.png replicate=b.png --row "512 px" zero=c.png replicate=d.png

Every image is scaled to --height (aspect kept); with --crop N only the top-left N x N px
corner of each image is shown, enlarged --zoom times with nearest neighbour (to see pixels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

PAD = 6
LABEL_H = 18


def _label(width: int, text: str) -> np.ndarray:
    strip = np.full((LABEL_H, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def _tile(path: Path, label: str, height: int, crop: int, zoom: int) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"contact_sheet: cannot read {path}")
    if crop:
        image = image[:crop, :crop]
        image = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    else:
        width = round(image.shape[1] * height / image.shape[0])
        interpolation = cv2.INTER_AREA if image.shape[0] > height else cv2.INTER_CUBIC
        image = cv2.resize(image, (width, height), interpolation=interpolation)
    return np.vstack([_label(image.shape[1], label), image])


def _hstack(tiles: list[np.ndarray]) -> np.ndarray:
    height = max(t.shape[0] for t in tiles)
    parts = []
    for tile in tiles:
        if tile.shape[0] < height:
            tile = np.vstack(
                [tile, np.full((height - tile.shape[0], *tile.shape[1:]), 255, np.uint8)]
            )
        parts += [tile, np.full((height, PAD, 3), 255, np.uint8)]
    return np.hstack(parts[:-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--crop", type=int, default=0, help="show the top-left N px corner only")
    parser.add_argument("--zoom", type=int, default=4)
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument(
        "--row", nargs="+", action="append", required=True, help="TITLE LABEL=IMAGE ..."
    )
    args = parser.parse_args()
    rows = []
    for title, *cells in args.row:
        tiles = []
        for cell in cells:
            label, _, path = cell.partition("=")
            tiles.append(_tile(Path(path), f"{title}: {label}", args.height, args.crop, args.zoom))
        rows.append(_hstack(tiles))
    width = max(r.shape[1] for r in rows)
    padded = [
        np.hstack([r, np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)]) for r in rows
    ]
    sheet = np.vstack(
        [x for r in padded for x in (r, np.full((PAD, width, 3), 255, np.uint8))][:-1]
    )
    cv2.imwrite(str(args.out), sheet, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
    print(f"{args.out}: {sheet.shape[1]}x{sheet.shape[0]}, {args.out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
