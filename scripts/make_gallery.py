"""Build the README gallery under docs/ from samples/ with a trained network.

Writes, at most a few hundred KB in all:

- `docs/gallery-stills.jpg`: a frame of samples/clip.mp4, the style, and the result at a third
  of, at, and at three times the default style weight (one labelled row per style image);
- `docs/gallery-clip.gif`: the sample clip's input next to its stylized version, rendered by the
  video pipeline (flow warm starts and temporal loss, default settings) at a small size.

The network is HED's VGG16 backbone, made by scripts/trained_vgg16.py (`--model vgg16-caffe`):

    python scripts/trained_vgg16.py --out bench-out/vgg16
    python scripts/make_gallery.py --weights bench-out/vgg16/vgg16-caffe-hed.pth \\
        --extra-style ../shared/data/starry_night.jpg   # public domain (Van Gogh, 1889)

At the default sizes it costs about 30 minutes on two busy CPU cores (the README's pictures
used `--size 240 --clip-size 160 --clip-frames 12 --factors 0.333,1` with one thread).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from nst_video.api import engine_for, make_engine, stylize_array
from nst_video.config import LossConfig, Settings
from nst_video.media import open_source
from nst_video.media.images import read_image
from nst_video.pipeline.job import render_video
from nst_video.pipeline.preview import pick_frames
from nst_video.video.resize import resize_long_side
from nst_video.workdir.manifest import Job

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
GAP = 4
LABEL_HEIGHT = 18


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """`image` with a white strip above it holding `text`."""
    strip = np.full((LABEL_HEIGHT, image.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, image])


def hstack(images: list[np.ndarray]) -> np.ndarray:
    height = max(image.shape[0] for image in images)
    parts = []
    for image in images:
        pad = np.full((height - image.shape[0], image.shape[1], 3), 255, np.uint8)
        parts += [np.vstack([image, pad]), np.full((height, GAP, 3), 255, np.uint8)]
    return np.hstack(parts[:-1])


def vstack(rows: list[np.ndarray]) -> np.ndarray:
    width = max(row.shape[1] for row in rows)
    parts = []
    for row in rows:
        pad = np.full((row.shape[0], width - row.shape[1], 3), 255, np.uint8)
        parts += [np.hstack([row, pad]), np.full((GAP, width, 3), 255, np.uint8)]
    return np.vstack(parts[:-1])


def still_row(
    content: np.ndarray, style_path: Path, settings: Settings, weights: Path, factors: list[float]
) -> np.ndarray:
    """Content | style | result at each multiple of the default style weight."""
    base = settings.loss.style_weight
    style = read_image(style_path)
    tiles = [labelled(content, "content"), labelled(_fit(style, content.shape), "style")]
    for factor in factors:
        weight = base * factor
        loss = replace(settings.loss, style_weight=weight)
        engine = make_engine([style], replace(settings, loss=loss), weights)
        image = stylize_array(engine, content).image
        tiles.append(labelled(image, f"style weight {round(weight, 2):g}"))
    return hstack(tiles)


def _fit(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The style shown at the content's height, aspect kept."""
    scale = shape[0] / image.shape[0]
    size = (max(1, round(image.shape[1] * scale)), shape[0])
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def render_clip(
    clip: Path, style: Path, settings: Settings, weights: Path, frames: int, work: Path
) -> list[np.ndarray]:
    """The first `frames` frames of `clip` through the video pipeline, as RGB arrays."""
    video = replace(settings.video, frames=frames, audio=False)
    settings = replace(settings, video=video)
    out = work / "frames"
    out.mkdir()
    job = Job(str(clip), (str(style),), f"{out}/", str(weights), None, settings)
    render_video(job, work / "work", engine_for)
    return [read_image(p) for p in sorted(out.glob("*.png"))]


def write_gif(path: Path, inputs: list[np.ndarray], outputs: list[np.ndarray], fps: float) -> None:
    pairs = [
        hstack([labelled(a, "input"), labelled(b, "nst-video")])
        for a, b in zip(inputs, outputs, strict=True)
    ]
    images = [
        Image.fromarray(p).quantize(colors=255, method=Image.Quantize.MEDIANCUT) for p in pairs
    ]
    duration = round(1000 / fps)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="vgg16-caffe-hed.pth")
    parser.add_argument("--model", default="vgg16-caffe")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--size", type=int, default=192, help="long side of the stills")
    parser.add_argument("--clip-size", type=int, default=128)
    parser.add_argument("--clip-frames", type=int, default=12)
    parser.add_argument("--factors", default="0.333,1,3", help="multiples of the style weight")
    parser.add_argument("--extra-style", type=Path, action="append", default=[])
    parser.add_argument("--skip", choices=("clip", "stills"), help="leave that picture as it is")
    args = parser.parse_args()

    base = Settings(loss=LossConfig(model=args.model))
    clip = SAMPLES / "clip.mp4"
    source = open_source(clip)
    args.out.mkdir(parents=True, exist_ok=True)

    if args.skip != "clip":
        moving = replace(base, image=replace(base.image, size=args.clip_size))
        with tempfile.TemporaryDirectory() as tmp:
            outputs = render_clip(
                clip, SAMPLES / "style.png", moving, args.weights, args.clip_frames, Path(tmp)
            )
        inputs = [resize_long_side(f, args.clip_size) for f in source.frames(0, len(outputs))]
        write_gif(args.out / "gallery-clip.gif", inputs, outputs, float(source.fps))
    if args.skip == "stills":
        return

    factors = [float(f) for f in args.factors.split(",")]
    index = pick_frames(source.frame_count, 1)[0]
    content = resize_long_side(next(source.frames(index, 1)), args.size)
    stills = replace(base, image=replace(base.image, size=args.size))
    rows = [
        still_row(content, style, stills, args.weights, factors)
        for style in [SAMPLES / "style.png", *args.extra_style]
    ]
    Image.fromarray(vstack(rows)).save(args.out / "gallery-stills.jpg", quality=88)


if __name__ == "__main__":
    main()
