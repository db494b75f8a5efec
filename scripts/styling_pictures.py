"""The README's pictures of a style schedule and of a masked render (docs/styling.md).

Renders tree.avi twice with the CLI (default network) into WORK, then writes
docs/schedule-strip.jpg (every STEP-th frame of the schedule, labelled with its blend) and
docs/mask.jpg (input | left/right mask | output of the first frame). The second style is the Hubble
eXtreme Deep Field from scikit-image's data (NASA, public domain): pass its path.

    python scripts/styling_pictures.py --hubble hubble_deep_field.jpg --work /tmp/pics
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nst_video.media import open_source

DATA = Path("/work/shared/data")
# make demo's first-frame budget (80) and 30 per later frame: enough for the crossfade to show.
COMMON = ["--size", "192", "--first-iterations", "80", "--iterations", "30", "--overwrite"]
GAP = 4


def render(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "nst_video", "video", *args, *COMMON], check=True)


def soft_halves(size: tuple[int, int], edge: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Left and right masks (uint8) meeting in a soft vertical edge `edge` px wide."""
    w, h = size
    x = np.arange(w, dtype=np.float32)[None, :].repeat(h, 0)
    left = np.clip((w / 2 + edge / 2 - x) / edge, 0, 1)
    return np.rint(left * 255).astype(np.uint8), np.rint((1 - left) * 255).astype(np.uint8)


def labelled_row(images: list[np.ndarray], labels: list[str]) -> Image.Image:
    """Images side by side on white, each with its label below."""
    font = ImageFont.load_default()
    h, w = images[0].shape[:2]
    canvas = Image.new("RGB", (len(images) * (w + GAP) + GAP, h + 2 * GAP + 14), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (image, text) in enumerate(zip(images, labels, strict=True)):
        x = GAP + k * (w + GAP)
        canvas.paste(Image.fromarray(image), (x, GAP))
        draw.text((x, h + GAP + 2), text, fill="black", font=font)
    return canvas


def frame(folder: Path, index: int) -> np.ndarray:
    return np.asarray(Image.open(folder / f"frame_{index:06d}.png").convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hubble", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    opts = parser.parse_args()
    work, starry = opts.work, DATA / "starry_night_cropped.jpg"
    work.mkdir(parents=True, exist_ok=True)
    first, last, step = 4, 16, 4
    sched = work / "sched"
    schedule = ["--style-at", f"{first}:{starry}", "--style-at", f"{last}:{opts.hubble}"]
    render([str(DATA / "tree.avi"), *schedule, "--frames", str(last + 1), "-o", f"{sched}/"])
    indices = list(range(0, last + 1, step))
    labels = [
        f"frame {i}: {min(max((i - first) / (last - first), 0), 1):.0%} Hubble" for i in indices
    ]
    labelled_row([frame(sched, i) for i in indices], labels).save(
        opts.docs / "schedule-strip.jpg", quality=85
    )
    left, right = soft_halves((320, 240))
    Image.fromarray(left).save(work / "left.png")
    Image.fromarray(right).save(work / "right.png")
    masked, count = work / "masked", 1
    render([str(DATA / "tree.avi"), "-s", str(starry), "-s", str(opts.hubble),
            "--style-mask", str(work / "left.png"), "--style-mask", str(work / "right.png"),
            "--frames", str(count), "-o", f"{masked}/"])  # fmt: skip
    out = frame(masked, count - 1)
    h, w = out.shape[:2]
    (raw,) = open_source(str(DATA / "tree.avi")).frames(count - 1, 1)
    small = np.asarray(Image.fromarray(raw).resize((w, h), Image.LANCZOS))
    mask = np.asarray(Image.fromarray(left).resize((w, h), Image.LANCZOS).convert("RGB"))
    labels = ["input", "--style-mask (white: Starry Night)", "output"]
    labelled_row([small, mask, out], labels).save(opts.docs / "mask.jpg", quality=85)


if __name__ == "__main__":
    main()
