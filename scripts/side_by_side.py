"""Put a clip and its stylized version side by side in a looping GIF (input | output).

    python scripts/side_by_side.py samples/tree.mp4 out/demo.mp4 -o out/demo-side-by-side.gif

Both are scaled to the output's height; the GIF stops with the shorter clip. Uses the ffmpeg
that imageio-ffmpeg ships, so it needs nothing beyond nst-video's own dependencies.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import cv2
import imageio_ffmpeg

MAX_COLORS = 128  # one palette for the whole GIF; 128 keeps brush strokes without banding
GAP = 4  # white pixels between the two halves


def video_height(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    if height <= 0:
        raise ValueError(f"{path}: cannot read its frame size")
    return height


def gif_filter(height: int) -> str:
    """Scale both to one height, stack them with a gap, then build and apply one palette."""
    return (
        f"[0:v]scale=-2:{height},pad=iw+{GAP}:ih:0:0:white[a];"
        f"[1:v]scale=-2:{height}[b];"
        "[a][b]hstack=shortest=1,split[s0][s1];"
        f"[s0]palettegen=max_colors={MAX_COLORS}:stats_mode=diff[p];"
        "[s1][p]paletteuse=dither=bayer:bayer_scale=3"
    )


def build_command(source: Path, styled: Path, out: Path, height: int) -> list[str]:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-nostdin", "-y"]
    cmd += ["-i", str(source), "-i", str(styled)]
    cmd += ["-filter_complex", gif_filter(height), "-loop", "0", str(out)]
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="The input clip")
    parser.add_argument("styled", type=Path, help="Its stylized version")
    parser.add_argument("-o", "--output", type=Path, required=True, help="The GIF to write")
    parser.add_argument("--height", type=int, help="Height of both halves (default: styled's)")
    args = parser.parse_args(argv)
    for path in (args.source, args.styled):
        if not path.is_file():
            print(f"side_by_side: {path} is not a file", file=sys.stderr)
            return 1
    try:
        height = args.height or video_height(args.styled)
    except ValueError as error:
        print(f"side_by_side: {error}", file=sys.stderr)
        return 1
    # Written beside the output, then renamed: a failed run never leaves half a GIF.
    partial = args.output.with_name(f".{args.output.name}.{os.getpid()}.partial.gif")
    result = subprocess.run(build_command(args.source, args.styled, partial, height))
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        print(f"side_by_side: ffmpeg failed ({result.returncode})", file=sys.stderr)
        return 1
    os.replace(partial, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
