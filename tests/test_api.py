"""The Python API: stylize_image, make_engine and stylize_batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst_video.api import BatchItem, initial_image, make_engine, stylize_batch
from nst_video.config import ComputeConfig, LossConfig, OptimConfig, Settings
from nst_video.errors import OptionError, WeightsError
from nst_video.progress import Event, ImageDone, ImageFailed

FAST = Settings(
    loss=LossConfig(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1")),
    optim=OptimConfig(iterations=3),
)
FAST_32 = replace(FAST, image=replace(FAST.image, size=32))


def test_top_level_import(
    weights_file: Path, make_image: Callable[..., np.ndarray], style_rgb: np.ndarray
) -> None:
    from nst_video import Settings as TopSettings
    from nst_video import stylize_image

    assert TopSettings is Settings
    content = make_image(48, 64, 1)
    settings = Settings(optim=OptimConfig(iterations=3))
    out = stylize_image(content, style_rgb, size=32, settings=settings, weights=weights_file)
    assert out.dtype == np.uint8
    assert out.shape == (24, 32, 3)


def test_paths_and_env_weights(weights_env: Path, image_file: Callable[..., Path]) -> None:
    from nst_video import stylize_image

    content = image_file("c.png", seed=1, size=(30, 20))  # portrait: height is the long side
    style = image_file("s.jpg", seed=2, size=(32, 32))
    out = stylize_image(content, style, size=16, settings=FAST)
    assert out.shape == (16, 11, 3)


def test_several_styles_with_blend(
    weights_file: Path, content_rgb: np.ndarray, style_rgb: np.ndarray,
    make_image: Callable[..., np.ndarray],
) -> None:  # fmt: skip
    from nst_video import stylize_image

    styles = [style_rgb, make_image(20, 20, 9)]
    out = stylize_image(
        content_rgb, styles, settings=FAST, weights=weights_file, size=None, style_blend=(1.0, 2.0)
    )
    assert out.shape == content_rgb.shape  # size=None keeps the content's size


def test_invalid_options_raise_before_work(
    weights_file: Path, content_rgb: np.ndarray, style_rgb: np.ndarray
) -> None:
    from nst_video import stylize_image

    with pytest.raises(OptionError, match=r"^size must be >= 1, got 0$"):
        stylize_image(content_rgb, style_rgb, size=0, weights=weights_file)
    with pytest.raises(OptionError, match=r"^--style-blend has 1 weight for 2 styles; "):
        stylize_image(content_rgb, [style_rgb, style_rgb], style_blend=(1.0,), weights=weights_file)
    with pytest.raises(TypeError):
        stylize_image(content_rgb, style_rgb, no_such_option=1, weights=weights_file)


def test_missing_weights_never_fall_back_to_random(
    content_rgb: np.ndarray, style_rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nst_video import stylize_image

    monkeypatch.delenv("NST_VIDEO_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match="--weights FILE or set NST_VIDEO_WEIGHTS=FILE"):
        stylize_image(content_rgb, style_rgb, size=32, settings=FAST)


def test_batch_shares_style_targets_and_skips_bad_files(
    weights_file: Path, image_file: Callable[..., Path], style_rgb: np.ndarray, tmp_path: Path
) -> None:
    engine = make_engine([style_rgb], FAST_32, weights_file)
    good = [image_file(f"in/{n}.png", seed=i, size=(48, 64)) for i, n in enumerate("ace")]
    bad = tmp_path / "in" / "b.png"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    inputs = [good[0], bad, good[1], good[2]]
    items = [BatchItem(p, out / p.name) for p in inputs]
    events: list[Event] = []
    failures = stylize_batch(engine, items, callback=events.append)
    assert [f.path for f in failures] == [str(bad)]
    assert engine.style_passes == 1  # every output has the same long side
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png", "e.png"]
    done = [e for e in events if isinstance(e, ImageDone)]
    assert [Path(e.path).name for e in done] == ["a.png", "c.png", "e.png"]
    assert all(e.evaluations == 3 for e in done)
    assert [type(e) for e in events if isinstance(e, ImageDone | ImageFailed)] == [
        ImageDone, ImageFailed, ImageDone, ImageDone,
    ]  # fmt: skip
    with Image.open(out / "a.png") as written:
        assert written.size == (32, 24)


def test_batch_does_not_overwrite_unless_asked(
    weights_file: Path, image_file: Callable[..., Path], style_rgb: np.ndarray, tmp_path: Path
) -> None:
    engine = make_engine(
        [style_rgb], replace(FAST, image=replace(FAST.image, size=16)), weights_file
    )
    source = image_file("a.png", seed=1)
    target = tmp_path / "a-out.png"
    target.write_bytes(b"old")
    failures = stylize_batch(engine, [BatchItem(source, target)])
    assert [f.reason for f in failures] == [f"{target} exists; pass --overwrite to replace it"]
    assert target.read_bytes() == b"old"
    assert stylize_batch(engine, [BatchItem(source, target)], overwrite=True) == []
    with Image.open(target) as written:
        assert written.size == (16, 12)


def test_initial_image(content_rgb: np.ndarray, image_file: Callable[..., Path]) -> None:
    assert initial_image(content_rgb, "content", 0) is content_rgb
    noise = initial_image(content_rgb, "noise", 3)
    assert noise.shape == content_rgb.shape and noise.dtype == np.float32
    start = initial_image(content_rgb, str(image_file("start.png", seed=4, size=(12, 16))), 0)
    assert start.shape == content_rgb.shape and start.dtype == np.uint8


def test_model_argument_picks_the_network(
    weights_file: Path, vgg16_weights_file: Path, content_rgb: np.ndarray, style_rgb: np.ndarray
) -> None:
    from nst_video import stylize_image

    out = stylize_image(
        content_rgb, style_rgb, settings=FAST_32, weights=vgg16_weights_file, model="vgg16-caffe"
    )
    assert out.shape == (24, 32, 3)
    with pytest.raises(WeightsError) as info:  # model= wins over settings.loss.model
        stylize_image(content_rgb, style_rgb, settings=FAST_32, weights=weights_file, model="vgg16")
    assert str(info.value) == (
        "weights do not fit --model vgg16: this file holds a VGG19; pass --model vgg19 or "
        "--model vgg19-caffe"
    )


def test_the_app_sets_the_backend_not_the_engine(
    weights_file: Path, make_image: Callable[..., np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process-wide torch settings are the caller's choice: make_engine applies them once,
    building an Engine touches none."""
    import torch

    from nst_video import api
    from nst_video.core.device import pick_device
    from nst_video.core.engine import Engine
    from nst_video.core.weights import load_state_dict

    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(api, "configure_backend", lambda d, p: calls.append((d.type, p)))
    settings = Settings(compute=ComputeConfig(device="cpu", precision="fp32"))
    make_engine([make_image(32, 32, 1)], settings, weights_file)
    assert calls == [("cpu", "fp32")]

    def refuse(*_: object) -> None:
        raise AssertionError("the engine changed process-wide torch state")

    monkeypatch.setattr(torch, "set_num_threads", refuse)
    monkeypatch.setattr(torch, "set_flush_denormal", refuse)
    Engine(load_state_dict(weights_file), [make_image(32, 32, 1)], settings, pick_device("cpu"))
