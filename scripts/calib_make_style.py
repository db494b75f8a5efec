"""Make the second calibration style: a monochrome ink-wash picture with flat tones.

No public-domain ink painting ships in a package we may install, so this derives one,
reproducibly, from a CC0 photograph in scikit-image's wheel (`skimage/data/coffee.png`, by Rachel
Michetti, CC0): its luminance is smoothed and cut into four flat grey washes with soft edges,
black ink lines follow its strong edges, and the whole sits on a warm paper tone. It is as far
from Starry Night as a style gets: no colour, no brush texture, flat areas and outlines.

    pip download --no-deps scikit-image -d whl && unzip -j whl/scikit_image-*.whl \\
        skimage/data/coffee.png -d src
    python scripts/calib_make_style.py src/coffee.png -o ink.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

PAPER = np.array([226, 232, 238], np.float32)  # BGR: a warm off-white
INK = np.array([28, 24, 22], np.float32)
LEVELS = (0.0, 0.35, 0.62, 1.0)  # ink density of the four washes, paper to near-black


def ink_wash(bgr: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    smooth = grey
    for _ in range(4):  # edge-keeping smoothing: flat areas, sharp boundaries
        smooth = cv2.bilateralFilter(smooth, 9, 40, 9)
    cuts = np.quantile(smooth, [0.3, 0.55, 0.8])
    density = np.take(LEVELS[::-1], np.digitize(smooth, cuts)).astype(np.float32)
    density = cv2.GaussianBlur(density, (0, 0), 1.5)  # wet edges of the washes
    edges = cv2.Canny(smooth, 40, 110)
    lines = cv2.dilate(edges, np.ones((2, 2), np.uint8)).astype(np.float32) / 255.0
    lines = cv2.GaussianBlur(lines, (0, 0), 0.7)
    density = np.maximum(density, 0.95 * lines)
    out = PAPER * (1 - density[..., None]) + INK * density[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    bgr = cv2.imread(str(args.source), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"calib_make_style: cannot read {args.source}")
    cv2.imwrite(str(args.output), ink_wash(bgr))


if __name__ == "__main__":
    main()
