"""Make a semi-synthetic occlusion clip: a real object sliding in front of a real background.

The background is one frame of a real clip (tree.avi by default: foliage, a textured surface);
the object is a rectangle cut from another frame of the same clip, pasted in front of it and
moved sideways by a fixed step per frame, so every background pixel it passes is hidden for a
few frames and then revealed again. That is the case long-term temporal offsets are for: a
revealed region should come back painted as it was before it was hidden.

Semi-synthetic: both images are real video, the motion (a rigid slide over a still background)
is made up, so the flow has clean occlusion boundaries.

    python scripts/make_occlusion_clip.py --input ../shared/data/tree.avi --out bench-out/occl

With --compare A B (two folders of rendered frames, e.g. eval_temporal.py's nst-default and
nst-offsets-1-2-4) it draws instead, for frame --at and frame --at minus --back, the input and
both renders side by side, cropped to --box and enlarged: a region seen before the object
passed, and the same region once it is revealed again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from make_gallery import hstack, labelled

from nst_video.media import open_source, read_image, write_image


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input",
        required=True,
        help="video file or image sequence (with --compare: the folder of the clip's frames)",
    )
    parser.add_argument("--background", type=int, default=300, help="frame used as background")
    parser.add_argument(
        "--object-frame", type=int, default=400, help="frame the object is cut from"
    )
    parser.add_argument(
        "--object-box",
        default="130,30,64,100",
        help="x,y,width,height of the object in its frame, in input pixels (default "
        "130,30,64,100: part of the hand that enters tree.avi)",
    )
    parser.add_argument("--y", type=int, default=60, help="top of the object in the clip")
    parser.add_argument(
        "--step",
        type=int,
        default=20,
        help="pixels the object moves per frame (default 20: a 64 px object hides each pixel "
        "it passes for 3 frames, so offset 4 still sees it before it was hidden)",
    )
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument(
        "--out", type=Path, required=True, help="directory for frame_%%05d.png (or the picture)"
    )
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument(
        "--labels",
        default="offset 1,offsets 1,2,4",
        help="names of A and B, comma-separated (the first comma splits)",
    )
    parser.add_argument("--at", type=int, default=12, help="frame in which the region is revealed")
    parser.add_argument("--back", type=int, default=4, help="how many frames earlier to compare")
    parser.add_argument("--box", default="40,16,72,56", help="x,y,width,height of the crop")
    parser.add_argument("--scale", type=int, default=3, help="enlargement of the crop")
    return parser.parse_args(argv)


def read_frame(path: str, index: int) -> np.ndarray:
    frames = open_source(path).frames(index, 1)
    try:
        return next(iter(frames))
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def make_clip(
    background: np.ndarray, obj: np.ndarray, y: int, step: int, count: int
) -> list[np.ndarray]:
    """Frame i: `obj` pasted at x = i * step - obj's width (it enters from the left)."""
    height, width = background.shape[:2]
    oh, ow = obj.shape[:2]
    frames = []
    for i in range(count):
        frame = background.copy()
        x = i * step - ow
        left, right = max(x, 0), min(x + ow, width)
        if left < right:
            frame[y : y + oh, left:right] = obj[: height - y, left - x : right - x]
        frames.append(frame)
    return frames


def compare(args: argparse.Namespace) -> None:
    """Rows: input, A, B; columns: frame at-back (before), frame at (revealed), and the
    difference between the two."""
    x, y, w, h = (int(v) for v in args.box.split(","))
    before, after = args.at - args.back, args.at
    rows = []
    names = ["input", *args.labels.split(",", 1)]
    folders = [args.input, *args.compare]
    size = (w * args.scale, h * args.scale)
    for name, folder in zip(names, folders, strict=True):
        files = sorted(Path(folder).glob("*.png"))
        crops = [read_image(files[i])[y : y + h, x : x + w] for i in (before, after)]
        # The background is still: the plain difference shows what was painted anew.
        change = np.abs(crops[1].astype(np.int16) - crops[0].astype(np.int16)).mean(axis=2)
        gray = np.clip(change * 3, 0, 255).astype(np.uint8)
        crops.append(np.repeat(gray[..., None], 3, axis=2))
        texts = [f"{name}, frame {before}", f"{name}, frame {after}", "change (x3)"]
        cells = []
        for crop, text in zip(crops, texts, strict=True):
            big = cv2.resize(crop, size, interpolation=cv2.INTER_NEAREST)
            cells.append(labelled(np.ascontiguousarray(big), text))
        rows.append(hstack(cells))
    gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    picture = np.vstack([part for row in rows for part in (row, gap)][:-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_image(args.out, picture)
    print(f"wrote {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        compare(args)
        return 0
    background = read_frame(args.input, args.background)
    x, y, w, h = (int(v) for v in args.object_box.split(","))
    obj = read_frame(args.input, args.object_frame)[y : y + h, x : x + w]
    args.out.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(make_clip(background, obj, args.y, args.step, args.frames)):
        write_image(args.out / f"frame_{index:05d}.png", frame)
    print(f"wrote {args.frames} frames to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
