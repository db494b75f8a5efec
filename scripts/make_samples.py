"""Rebuild the demo inputs in ``samples/`` from their sources (see samples/README.md).

    python scripts/make_samples.py --tree tree.avi --painting starry_night_cropped.jpg

``tree.avi`` is OpenCV's sample clip (Apache-2.0, ``samples/data/tree.avi`` in the opencv
repository); the painting is a border-free crop of Van Gogh's The Starry Night (public domain).

tree.avi declares 15 fps but stores only 68 distinct pictures over 30 s (its player repeats
each one); the clip keeps the distinct pictures 53-64, where a hand sweeps in front of the tree,
and plays them at 6 fps so that the motion looks continuous.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import cv2
import imageio_ffmpeg
from PIL import Image

FIRST, LAST = 53, 64  # distinct pictures of tree.avi as a hand sweeps in (both inclusive)
FPS = 6  # 12 pictures at 6 fps: a 2 s clip
CRF = 24  # ~200 KB; no visible blocking at 320x240
STYLE_LONG_SIDE = 512  # nst-video resizes styles to the output anyway; keeps samples/ small


def distinct_frames(path: Path) -> list:
    """The pictures OpenCV decodes from the file, i.e. without the container's repeats."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if len(frames) <= LAST:
        raise SystemExit(f"{path}: {len(frames)} pictures, expected more than {LAST}")
    return frames


def write_clip(tree: Path, out: Path) -> None:
    frames = distinct_frames(tree)[FIRST : LAST + 1]
    with tempfile.TemporaryDirectory() as tmp:
        for i, frame in enumerate(frames):
            cv2.imwrite(str(Path(tmp) / f"f{i:03d}.png"), frame)
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y"]
        cmd += ["-framerate", str(FPS), "-i", str(Path(tmp) / "f%03d.png")]
        cmd += ["-c:v", "libx264", "-crf", str(CRF), "-pix_fmt", "yuv420p"]
        cmd += ["-movflags", "+faststart", "-map_metadata", "-1", str(out)]
        subprocess.run(cmd, check=True)


def write_style(painting: Path, out: Path) -> None:
    with Image.open(painting) as im:
        im = im.convert("RGB")
        im.thumbnail((STYLE_LONG_SIDE, STYLE_LONG_SIDE), Image.Resampling.LANCZOS)
        im.save(out, quality=90, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, required=True, help="OpenCV's tree.avi")
    parser.add_argument("--painting", type=Path, required=True, help="The Starry Night, cropped")
    parser.add_argument("--out", type=Path, default=Path("samples"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_clip(args.tree, args.out / "tree.mp4")
    write_style(args.painting, args.out / "starry-night.jpg")
    print(f"wrote {args.out / 'tree.mp4'} and {args.out / 'starry-night.jpg'}")


if __name__ == "__main__":
    main()
