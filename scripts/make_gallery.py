"""Build the README gallery in docs/ with nst-video's own commands and default network.

- `docs/gallery-stills.jpg`: each photograph next to its painting in the style of
  samples/starry-night.jpg (`nst-video image PHOTO -s STYLE --size 384 --iterations 200`);
- `docs/gallery-clip.gif`: samples/tree.mp4 next to a painting of it (`--clip`; the README's
  is `nst-video video samples/tree.mp4 -s samples/starry-night.jpg -o demo.mp4 --size 256
  --first-iterations 100 --iterations 30`, make demo's default is out/demo.mp4).

The photographs are scikit-image's sample data (astronaut: NASA, public domain; chelsea and
coffee: CC0), shipped in its wheel:

    pip download --no-deps --only-binary=:all: scikit-image -d /tmp/sk
    unzip -q /tmp/sk/scikit_image-*.whl 'skimage/data/*' -d /tmp/sk
    make demo
    .venv/bin/python scripts/make_gallery.py --photos /tmp/sk/skimage/data

Each still costs about 200 loss evaluations of VGG19 at 384 px: 5-10 CPU-minutes.
Arguments after `--` go to `nst-video image` (e.g. `-- --model vgg19-caffe --weights FILE`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")
STYLE = ROOT / "samples" / "starry-night.jpg"
SIZE = 384  # big enough to see brush strokes, small enough for a few CPU-minutes each
ITERATIONS = 200  # L-BFGS has settled by then at this size (the default 300 changes little)
GAP = 4
LABEL_HEIGHT = 18


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """`image` with a white strip above it holding `text`."""
    strip = np.full((LABEL_HEIGHT, image.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, image])


def hstack(images: list[np.ndarray]) -> np.ndarray:
    """Side by side on white, tops aligned."""
    height = max(image.shape[0] for image in images)
    parts = []
    for image in images:
        pad = np.full((height - image.shape[0], image.shape[1], 3), 255, np.uint8)
        parts += [np.vstack([image, pad]), np.full((height, GAP, 3), 255, np.uint8)]
    return np.hstack(parts[:-1])


def vstack(rows: list[np.ndarray]) -> np.ndarray:
    """One above the other on white, left aligned."""
    width = max(row.shape[1] for row in rows)
    parts = []
    for row in rows:
        pad = np.full((row.shape[0], width - row.shape[1], 3), 255, np.uint8)
        parts += [np.hstack([row, pad]), np.full((GAP, width, 3), 255, np.uint8)]
    return np.vstack(parts[:-1])


def rgb(path: Path, long_side: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
        return np.asarray(im)


def paint(photo: Path, out: Path, extra: list[str]) -> None:
    cmd = [sys.executable, "-m", "nst_video", "image", str(photo), "-s", str(STYLE)]
    cmd += ["-o", str(out), "--size", str(SIZE), "--iterations", str(ITERATIONS), *extra]
    subprocess.run(cmd, check=True)


def write_stills(photos: Path, out: Path, extra: list[str], done: Path | None) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in PHOTOS:
            painted = (done or Path(tmp)) / name
            if not painted.exists():
                paint(photos / name, painted, extra)
            result = rgb(painted, SIZE)
            rows.append(
                hstack(
                    [
                        labelled(rgb(photos / name, SIZE), f"photograph: {Path(name).stem}"),
                        labelled(result, "nst-video, style: The Starry Night"),
                    ]
                )
            )
    Image.fromarray(vstack(rows)).save(out, quality=85, optimize=True)


def write_gif(styled: Path, out: Path) -> None:
    cmd = [sys.executable, str(ROOT / "scripts" / "side_by_side.py")]
    cmd += [str(ROOT / "samples" / "tree.mp4"), str(styled), "-o", str(out)]
    subprocess.run(cmd, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="skimage/data from the wheel")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--clip", type=Path, default=ROOT / "out" / "demo.mp4", help="make demo's")
    parser.add_argument("--painted", type=Path, help="paintings already made (NAME.png): reuse")
    parser.add_argument("extra", nargs="*", help="after --: more options for nst-video image")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_stills(args.photos, args.out / "gallery-stills.jpg", args.extra, args.painted)
    write_gif(args.clip, args.out / "gallery-clip.gif")
    print(f"wrote {args.out / 'gallery-stills.jpg'} and {args.out / 'gallery-clip.gif'}")


if __name__ == "__main__":
    main()
