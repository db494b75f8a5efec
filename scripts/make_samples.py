"""Generate the demo inputs in ``samples/``: a painterly style image and a short clip.

Everything is procedural and seeded, so re-running gives the same pictures:

    python scripts/make_samples.py [--out samples]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import wave
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

FloatImage = np.ndarray  # HxWx3 (or HxW) float32 in [0, 1]

STYLE_SIZE = 256
WIDTH, HEIGHT, FPS, FRAMES = 240, 160, 12, 36
WORLD_WIDTH = WIDTH + 100  # the camera pans across this much scenery
SAMPLE_RATE = 22050

# Deep night blues through teal to chrome yellow and orange: bold, Van Gogh-like.
STYLE_PALETTE = (
    np.array(
        [
            [12, 22, 70],
            [28, 60, 150],
            [45, 120, 190],
            [70, 170, 170],
            [235, 200, 60],
            [215, 110, 35],
        ],
        dtype=np.float32,
    )
    / 255.0
)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> FloatImage:
    """Band-limited noise in [0, 1]: a coarse random grid upsampled with cubic interpolation."""
    h, w = shape
    coarse = rng.random((max(2, h * cells // w), cells)).astype(np.float32)
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return (up - up.min()) / (up.max() - up.min())


def swirl_field(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors circling around random vortices (the curl of a blobby stream function)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    psi = 0.6 * smooth_noise(rng, (size, size), 4)
    centers = rng.random((7, 2)) * size
    radii = 12 + rng.random(7) * size * 0.25
    signs = rng.choice([-1.0, 1.0], 7)
    for (cx, cy), r, sign in zip(centers, radii, signs, strict=True):
        psi += sign * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))
    gy, gx = np.gradient(psi)
    vx, vy = gy, -gx
    norm = np.hypot(vx, vy) + 1e-8
    return vx / norm, vy / norm


def line_integral_convolution(
    noise: np.ndarray, vx: np.ndarray, vy: np.ndarray, steps: int = 14
) -> np.ndarray:
    """Average ``noise`` along the field lines through every pixel: streaky brush strokes."""
    h, w = noise.shape
    total = noise.copy()
    for direction in (1.0, -1.0):
        py, px = np.mgrid[0:h, 0:w].astype(np.float32)
        for _ in range(steps):
            iy, ix = np.clip(py, 0, h - 1).astype(int), np.clip(px, 0, w - 1).astype(int)
            px += direction * vx[iy, ix]
            py += direction * vy[iy, ix]
            total += noise[np.clip(py, 0, h - 1).astype(int), np.clip(px, 0, w - 1).astype(int)]
    return total / (2 * steps + 1)


def palette_lookup(t: np.ndarray, palette: np.ndarray) -> FloatImage:
    """Map values in [0, 1] to colours by linear interpolation along ``palette``."""
    stops = np.linspace(0.0, 1.0, len(palette))
    return np.stack([np.interp(t, stops, palette[:, c]) for c in range(3)], axis=-1)


def make_style(seed: int = 7) -> np.ndarray:
    """A swirling, thick-stroked painting in a bold palette, as uint8 RGB."""
    rng = np.random.default_rng(seed)
    n = STYLE_SIZE
    vx, vy = swirl_field(rng, n)
    dabs = cv2.resize(
        rng.random((n // 3, n // 3)).astype(np.float32), (n, n), interpolation=cv2.INTER_NEAREST
    )
    strokes = line_integral_convolution(dabs, vx, vy)
    strokes = np.clip((strokes - strokes.mean()) / (4 * strokes.std()) + 0.5, 0, 1)
    hue = 0.75 * smooth_noise(rng, (n, n), 3) + 0.35 * strokes - 0.05
    rgb = palette_lookup(np.clip(hue, 0, 1), STYLE_PALETTE)
    rgb *= (0.6 + 0.6 * strokes)[..., None]
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def sky_layer(rng: np.random.Generator) -> FloatImage:
    """Blue-to-peach gradient sky with soft clouds."""
    t = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
    top, horizon = np.array([0.25, 0.45, 0.85]), np.array([0.98, 0.8, 0.65])
    sky = np.broadcast_to(top + (horizon - top) * t**1.5, (HEIGHT, WORLD_WIDTH, 3))
    shape = (HEIGHT, WORLD_WIDTH)
    clouds = smooth_noise(rng, shape, 9) * smooth_noise(rng, shape, 4)
    cover = np.clip((clouds - 0.3) * 2.5, 0, 1)[..., None] * (1 - t)
    return (sky * (1 - cover) + 0.97 * cover).astype(np.float32)


def hill_mask(rng: np.random.Generator, base: float, amp: float) -> np.ndarray:
    """Soft 0..1 mask of the ground below a wavy ridge line (``base``/``amp`` in pixels)."""
    ridge = base - amp * smooth_noise(rng, (1, WORLD_WIDTH), 5)[0]
    yy = np.arange(HEIGHT, dtype=np.float32)[:, None]
    return np.clip(yy - ridge[None, :] + 0.5, 0, 1)


def textured(rng: np.random.Generator, color: tuple[float, ...], grain: float) -> FloatImage:
    """A flat colour broken up by fine and medium noise so optical flow has something to track."""
    fine = rng.random((HEIGHT, WORLD_WIDTH)).astype(np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), 0.8)
    medium = smooth_noise(rng, (HEIGHT, WORLD_WIDTH), 30)
    shade = 1 + grain * (fine - 0.5) * 2 + 0.25 * (medium - 0.5)
    return np.clip(np.array(color, np.float32) * shade[..., None], 0, 1)


def make_layers(seed: int = 3) -> list[tuple[FloatImage, np.ndarray, float]]:
    """Scenery layers (colour, mask, pan speed in px/frame), back to front, for parallax."""
    rng = np.random.default_rng(seed)
    sky = sky_layer(rng)
    far = textured(rng, (0.35, 0.45, 0.6), 0.15), hill_mask(rng, 95, 40)
    near = textured(rng, (0.3, 0.55, 0.2), 0.35), hill_mask(rng, 118, 25)
    water = textured(rng, (0.15, 0.35, 0.6), 0.1), np.zeros((HEIGHT, WORLD_WIDTH), np.float32)
    yy, xx = np.mgrid[128:HEIGHT, 0:WORLD_WIDTH]
    water[0][128:] *= 1 + 0.25 * np.sin(yy * 1.7 + 1.5 * np.sin(xx / 9.0))[..., None]
    water[1][128:] = 1.0
    return [(sky, np.ones_like(far[1]), 0.6), (*far, 1.2), (*near, 2.0), (*water, 2.5)]


def composite(frame: FloatImage, color: FloatImage, mask: np.ndarray) -> FloatImage:
    """Alpha-blend ``color`` over ``frame`` where ``mask`` (0..1) is set."""
    return frame * (1 - mask[..., None]) + color * mask[..., None]


def pan(image: np.ndarray, offset: float) -> np.ndarray:
    """The camera's view of a world-sized layer, shifted left by ``offset`` (sub-pixel)."""
    shift = np.float32([[1, 0, -offset], [0, 1, 0]])
    return cv2.warpAffine(
        image, shift, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def draw_ball(frame: FloatImage, cx: float, cy: float, spin: float) -> FloatImage:
    """A shaded, spinning beach ball with six coloured segments."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    dx, dy, radius = xx - cx, yy - cy, 13.0
    mask = np.clip(radius - np.hypot(dx, dy) + 0.5, 0, 1)
    colors = np.array(
        [[0.9, 0.15, 0.1], [1, 1, 1], [0.1, 0.4, 0.9], [1, 0.85, 0.1], [1, 1, 1], [0.1, 0.7, 0.3]],
        np.float32,
    )
    segment = (((np.arctan2(dy, dx) + spin) / (2 * np.pi)) * 6).astype(int) % 6
    light = np.clip(1.1 - np.hypot(dx + 5, dy + 5) / (2.2 * radius), 0.35, 1)
    return composite(frame, colors[segment] * light[..., None], mask)


def draw_boat(frame: FloatImage, x: float, y: float) -> FloatImage:
    """A wooden boat with a striped sail; (x, y) is the middle of the waterline."""
    hull = np.array([[-28, -8], [28, -8], [20, 3], [-20, 3]], np.float32) + [x, y]
    sail = np.array([[-2, -10], [-2, -46], [22, -12]], np.float32) + [x, y]
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    planks = np.where(((yy - y) // 3) % 2 == 0, 0.85, 1.0) * (0.95 + 0.05 * np.sin(xx - x))
    stripes = np.where(((xx - x) // 5) % 2 == 0, 1.0, 0.0)[..., None]
    sail_color = stripes * [0.95, 0.92, 0.85] + (1 - stripes) * [0.85, 0.2, 0.15]
    for poly, color in ((hull, np.array([0.5, 0.3, 0.15]) * planks[..., None]), (sail, sail_color)):
        canvas = np.zeros((HEIGHT, WIDTH), np.uint8)
        cv2.fillPoly(canvas, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        frame = composite(frame, color, canvas.astype(np.float32) / 255)
    return frame


def render_frame(layers: list[tuple[FloatImage, np.ndarray, float]], i: int) -> np.ndarray:
    """Frame ``i`` of the clip as uint8 RGB: panning scenery, a sailing boat, a bouncing ball."""
    frame = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    for color, mask, speed in layers:
        frame = composite(frame, pan(color, speed * i), pan(mask, speed * i))
    frame = draw_boat(frame, 30 + 3.0 * i, 136 + 1.5 * np.sin(i / 3))
    bounce = abs(np.sin(np.pi * i / 14))
    frame = draw_ball(frame, 225 - 5.0 * i, 132 - 55 * bounce, -0.25 * i)
    return (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_tone(path: Path, seconds: float) -> None:
    """A soft A-major chord with a slow swell, as 16-bit mono WAV."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) / 3
    envelope = np.minimum(1, t / 0.4) * np.minimum(1, (seconds - t) / 0.6) * 0.3
    samples = (chord * envelope * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.tobytes())


def ffmpeg_command(tone: Path, out: Path, seconds: float) -> list[str]:
    """ffmpeg arguments: raw RGB frames on stdin plus the WAV in, H.264 + AAC MP4 out."""
    frames_in = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS)]
    inputs = [*frames_in, "-i", "-", "-i", str(tone), "-map", "0:v", "-map", "1:a"]
    video = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "20", "-threads", "1"]
    audio = ["-c:a", "aac", "-b:a", "64k", "-ac", "1", "-t", f"{seconds:.3f}"]
    container = ["-map_metadata", "-1", "-movflags", "+faststart", str(out)]
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    return [exe, "-y", "-loglevel", "error", *inputs, *video, *audio, *container]


def write_clip(path: Path) -> None:
    """Render the clip and encode it (H.264 yuv420p + AAC mono) by piping frames to ffmpeg."""
    layers = make_layers()
    seconds = FRAMES / FPS
    frames = b"".join(render_frame(layers, i).tobytes() for i in range(FRAMES))
    with tempfile.TemporaryDirectory() as tmp:
        tone = Path(tmp) / "tone.wav"
        write_tone(tone, seconds)
        subprocess.run(ffmpeg_command(tone, path, seconds), input=frames, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("samples"), help="output folder")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(
        str(out / "style.png"),
        cv2.cvtColor(make_style(), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_PNG_COMPRESSION, 9],
    )
    write_clip(out / "clip.mp4")
    for name in ("style.png", "clip.mp4"):
        print(f"wrote {out / name} ({(out / name).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
