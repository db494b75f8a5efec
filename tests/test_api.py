"""The Python API: stylize_image, stylize_video, make_engine and stylize_batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from clip_inputs import Inputs, make_inputs
from PIL import Image

from nst_video.api import (
    BatchItem,
    VideoResult,
    api_terms,
    initial_image,
    make_engine,
    stylize_batch,
    sweep_items,
)
from nst_video.config import ComputeConfig, LossConfig, OptimConfig, Settings
from nst_video.errors import InputError, NstError, OptionError, OutputError, WeightsError
from nst_video.progress import Event, FrameDone, ImageDone, ImageFailed

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
    with pytest.raises(OptionError, match=r"^style_blend= has 1 weight for 2 styles; "):
        stylize_image(content_rgb, [style_rgb, style_rgb], style_blend=(1.0,), weights=weights_file)


def test_missing_weights_never_fall_back_to_random(
    content_rgb: np.ndarray, style_rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nst_video import stylize_image

    monkeypatch.delenv("NST_VIDEO_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match="weights=FILE or set NST_VIDEO_WEIGHTS=FILE"):
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


def test_sweep_items_render_each_style_weight(
    weights_file: Path, image_file: Callable[..., Path], style_rgb: np.ndarray, tmp_path: Path
) -> None:
    """A sweep is a batch whose items carry a style weight: out.swW.EXT each, equal to a render
    by an engine made with that weight (the style targets are shared, not changed)."""
    content = image_file("c.png", seed=1)
    items = sweep_items(content, tmp_path / "out.jpg", [0.5, 10.0])
    assert [i.output.name for i in items] == ["out.sw0.5.jpg", "out.sw10.jpg"]
    engine = make_engine([style_rgb], FAST_32, weights_file)
    assert stylize_batch(engine, items) == []
    for item in items:
        alone = replace(FAST_32, loss=replace(FAST_32.loss, style_weight=item.style_weight))
        expected = tmp_path / f"alone{item.style_weight:g}.jpg"
        stylize_batch(make_engine([style_rgb], alone, weights_file), [BatchItem(content, expected)])
        assert item.output.read_bytes() == expected.read_bytes()
    assert engine.loss.style_weight == FAST_32.loss.style_weight


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
    assert str(info.value) == (  # in the API's terms: keywords, not flags
        "weights do not fit model=vgg16: this file holds a VGG19; pass model=vgg19 or "
        "model=vgg19-caffe"
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


def test_unknown_keyword_lists_the_valid_ones(content_rgb: np.ndarray) -> None:
    from nst_video import stylize_image, stylize_video

    with pytest.raises(OptionError) as info:
        stylize_image(content_rgb, content_rgb, styel_weight=5)
    message = str(info.value)
    head = "unknown stylize_image keyword 'styel_weight'; valid: settings, weights, progress, "
    assert message.startswith(head)
    # Then the image settings, in their declaration order (config.py may reorder them).
    assert set(message[len(head) :].split(", ")) == {
        "model", "content_layers", "style_layers", "style_layer_weights", "style_loss",
        "content_weight",
        "style_weight", "tv_weight", "range_weight", "optimizer", "iterations", "history_size",
        "tolerance", "window", "adam_lr", "log_every", "size", "style_scale", "style_blend",
        "pooling", "padding", "margin", "preserve_colors", "init", "seed", "coarse_start",
        "coarse_step", "fine_share", "device", "precision",
    }  # fmt: skip
    with pytest.raises(OptionError) as info:  # a video setting is not an image's
        stylize_image(content_rgb, content_rgb, first_iterations=5)
    assert str(info.value).startswith("unknown stylize_image keyword 'first_iterations'; ")
    with pytest.raises(OptionError) as info:
        stylize_video("in.mp4", "s.png", "out.mp4", command="image")
    assert str(info.value).startswith(
        "unknown stylize_video keyword 'command'; valid: work_dir, progress, settings, weights, "
        "report, overwrite, restart, workers, ray_address, model, "
    )


def test_flat_keywords_are_the_nested_settings(
    weights_file: Path, content_rgb: np.ndarray, style_rgb: np.ndarray
) -> None:
    """Keywords by flat name, as values or as the CLI's text, give what nested settings give;
    they win over settings=."""
    from nst_video import stylize_image

    nested = replace(
        FAST_32,
        loss=replace(FAST.loss, style_weight=10.0, content_layers=("relu1_1",)),
        optim=replace(FAST.optim, iterations=4),
        image=replace(FAST_32.image, init="noise", seed=3),
    )
    by_settings = stylize_image(content_rgb, style_rgb, settings=nested, weights=weights_file)
    flat = stylize_image(
        content_rgb, style_rgb, weights=weights_file, size=32, style_weight=10,
        content_layers="relu1_1", style_layers=["relu1_1", "relu2_1"], iterations=4,
        init="noise", seed=3,
    )  # fmt: skip
    over = stylize_image(
        content_rgb, style_rgb, settings=FAST_32, weights=weights_file, style_weight=10,
        content_layers=("relu1_1",), iterations=4, init="noise", seed=3,
    )  # fmt: skip
    assert flat.tobytes() == by_settings.tobytes() == over.tobytes()
    other = stylize_image(content_rgb, style_rgb, settings=FAST_32, weights=weights_file)
    assert other.tobytes() != flat.tobytes()  # the keywords did change something
    with pytest.raises(OptionError) as info:
        stylize_image(content_rgb, style_rgb, weights=weights_file, style_weight="lots")
    assert str(info.value) == "style_weight must be a number, got 'lots'"


# --- what an image may be ------------------------------------------------------------------------


def test_path_array_float_and_pil_inputs_give_identical_results(
    weights_file: Path, image_file: Callable[..., Path]
) -> None:
    """A picture given as a file, its uint8 array, the array as floats in [0, 1], or a PIL
    image is the same picture: the results are byte for byte equal at a fixed seed."""
    from nst_video import stylize_image

    content_path = image_file("c.png", seed=1, size=(24, 32))
    style_path = image_file("s.png", seed=2, size=(40, 40))
    content, style = np.asarray(Image.open(content_path)), np.asarray(Image.open(style_path))
    forms = {
        "path": (content_path, style_path),
        "str": (str(content_path), str(style_path)),
        "uint8": (content, style),
        "float": (content / 255.0, style.astype(np.float32) / 255),
        "pil": (Image.fromarray(content), Image.open(style_path)),
    }
    noise = replace(FAST_32, image=replace(FAST_32.image, init="noise", seed=5))
    results = {
        name: stylize_image(c, s, settings=noise, weights=weights_file)
        for name, (c, s) in forms.items()
    }
    first = results["path"]
    assert first.shape == (24, 32, 3) and first.dtype == np.uint8
    assert {
        name: out.tobytes() == first.tobytes() for name, out in results.items()
    } == dict.fromkeys(forms, True)


def test_pil_image_with_alpha_reads_as_its_file(
    weights_file: Path, make_image: Callable[..., np.ndarray], tmp_path: Path
) -> None:
    """RGBA and grey PIL images convert as read_image converts their files (over white)."""
    from nst_video import stylize_image

    rgba = Image.fromarray(make_image(24, 32, 3)).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.arange(32, dtype=np.uint8) * 8, (24, 1))))
    rgba.save(tmp_path / "a.png")
    style = make_image(40, 40, 2)
    from_file = stylize_image(tmp_path / "a.png", style, settings=FAST_32, weights=weights_file)
    from_pil = stylize_image(rgba, style, settings=FAST_32, weights=weights_file)
    assert from_pil.tobytes() == from_file.tobytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (42, "content= takes a file path, an HxWx3 numpy array or a PIL image, got int"),
        (np.zeros((24, 32), np.uint8), "content= array must be HxWx3 (RGB), got shape (24, 32)"),
        (
            np.zeros((24, 32, 4), np.uint8),
            "content= array must be HxWx3 (RGB), got shape (24, 32, 4)",
        ),
        (
            np.zeros((24, 32, 3), np.int64),
            "content= array must be uint8 (0-255) or float (0-1), got int64",
        ),
        (
            np.full((24, 32, 3), 255.0),
            "content= float array must hold values in [0, 1], got 255..255; divide 0-255 values "
            "by 255",
        ),
        (
            np.full((24, 32, 3), np.nan),
            "content= float array must hold values in [0, 1], got nan..nan; divide 0-255 "
            "values by 255",
        ),
        ("missing.png", "image not found: missing.png"),
    ],
)
def test_bad_content_is_one_input_error(
    weights_file: Path, style_rgb: np.ndarray, content: object, message: str
) -> None:
    from nst_video import stylize_image

    with pytest.raises(InputError) as info:
        stylize_image(content, style_rgb, settings=FAST_32, weights=weights_file)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("style", "message"),
    [
        ([], "style= is empty; give an image or a list of images"),
        (
            None,
            "style= takes an image (path, HxWx3 numpy array, PIL image) or a list of them, got "
            "NoneType",
        ),
        ([np.zeros((4, 4), np.uint8)], "style= array must be HxWx3 (RGB), got shape (4, 4)"),
    ],
)
def test_bad_style_is_one_input_error(
    weights_file: Path, content_rgb: np.ndarray, style: object, message: str
) -> None:
    from nst_video import stylize_image

    with pytest.raises(InputError) as info:
        stylize_image(content_rgb, style, settings=FAST_32, weights=weights_file)  # type: ignore[arg-type]
    assert str(info.value) == message


# --- messages in the API's terms ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cli", "api"),
    [
        (
            "out.png exists; pass --overwrite to replace it",
            "out.png exists; pass overwrite=True to replace it",
        ),
        (
            "pass --weights FILE or set NST_VIDEO_WEIGHTS=FILE",
            "pass weights=FILE or set NST_VIDEO_WEIGHTS=FILE",
        ),
        (
            "out of memory at --size 64 (x); try --size 32",
            "out of memory at size=64 (x); try size=32",
        ),
        (
            "--passes 3 needs --init flow: with --init content",
            "passes=3 needs init=flow: with init=content",
        ),
        ("--style-scale must be > 0", "style_scale= must be > 0"),
        ("set --size or --coarse-start", "set size= or coarse_start="),
        ("with --no-audio and --preserve-colors", "with audio=False and preserve_colors=True"),
        ("pass --restart to discard them", "pass restart=True to discard them"),
        ("file NST_VIDEO_WEIGHTS=a--b stays", "file NST_VIDEO_WEIGHTS=a--b stays"),
    ],
)
def test_messages_name_keywords_not_flags(cli: str, api: str) -> None:
    assert api_terms(cli) == api


# --- videos --------------------------------------------------------------------------------------

VIDEO_FAST = replace(
    FAST,
    image=replace(FAST.image, size=None),
    video=replace(FAST.video, first_iterations=3, iterations=2),
)


@pytest.fixture
def clip(tmp_path: Path, weights_file: Path, write_sequence: Callable[..., Path]) -> Inputs:
    (tmp_path / "in").mkdir()
    return make_inputs(tmp_path / "in", 4, (32, 24), weights_file, write_sequence)


def test_stylize_video_then_again_reuses_every_frame(
    clip: Inputs,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from nst_video import stylize_video

    output, report = tmp_path / "out.mp4", tmp_path / "stats.jsonl"
    events: list[Event] = []
    first = stylize_video(
        clip.clip, clip.style, output, settings=VIDEO_FAST, weights=clip.weights,
        report=report, progress=events.append,
    )  # fmt: skip
    assert isinstance(first, VideoResult)
    assert (first.total, first.rendered, first.reused) == (4, 4, 0)
    assert first.output == str(output) and first.work_dir == tmp_path / "out.mp4.nst-work"
    assert first.report == report and len(report.read_text().splitlines()) == 4
    assert first.seconds > 0
    assert [e.index for e in events if isinstance(e, FrameDone)] == [0, 1, 2, 3]
    frames = {p.name: p.read_bytes() for p in (first.work_dir / "frames").glob("*.png")}
    encoded = output.read_bytes()

    again = stylize_video(
        clip.clip, clip.style, output, settings=VIDEO_FAST, weights=clip.weights, report=report
    )
    assert (again.total, again.rendered, again.reused) == (4, 0, 4)
    assert {p.name: p.read_bytes() for p in (again.work_dir / "frames").glob("*.png")} == frames
    assert output.read_bytes() == encoded
    assert capfd.readouterr() == ("", "")  # the API prints nothing, nor does ffmpeg


def test_stylize_video_and_the_cli_share_a_work_directory(
    clip: Inputs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same keywords and flags are the same render: the command continues what the API
    began (and the other way round) without rendering a frame again."""
    from cli_helpers import run_capturing

    from nst_video import stylize_video

    output = tmp_path / "both.mp4"
    keywords = dict(
        size=32, first_iterations=3, iterations=2, content_layers="relu2_1",
        style_layers="relu1_1,relu2_1", style_weight=5, temporal_offsets=(1, 2), frames=3,
    )  # fmt: skip
    began = stylize_video(clip.clip, clip.style, output, weights=clip.weights, **keywords)
    assert (began.rendered, began.reused) == (3, 0)
    flags = [
        "--size", "32", "--first-iterations", "3", "--iterations", "2",
        "--content-layers", "relu2_1", "--style-layers", "relu1_1,relu2_1",
        "--style-weight", "5", "--temporal-offsets", "1,2",
    ]  # fmt: skip
    args = ["video", str(clip.clip), "-s", str(clip.style), "-o", str(output)]
    code, _, err = run_capturing(capsys, *args, *flags, "--weights", str(clip.weights))
    assert (code, err.splitlines()[-1:]) == (0, [f"wrote {output} (4 frames, 1 rendered now)"]), err
    again = stylize_video(clip.clip, clip.style, output, weights=clip.weights, **keywords)
    assert (again.total, again.rendered, again.reused) == (3, 0, 3)  # frames=3: the first 3


def test_stylize_video_keeps_what_it_did_not_write(clip: Inputs, tmp_path: Path) -> None:
    """The CLI's checks, before any work, with the keyword to pass named."""
    from nst_video import stylize_video

    output = tmp_path / "mine.mp4"
    output.write_bytes(b"not ours")
    with pytest.raises(OutputError) as info:
        stylize_video(clip.clip, clip.style, output, settings=VIDEO_FAST, weights=clip.weights)
    assert str(info.value) == f"{output} exists; pass overwrite=True to replace it"
    assert output.read_bytes() == b"not ours"
    assert not (tmp_path / "mine.mp4.nst-work").exists()
    with pytest.raises(OutputError) as info:  # never an input, even so
        stylize_video(
            clip.clip, clip.style, clip.clip, settings=VIDEO_FAST, weights=clip.weights,
            overwrite=True,
        )  # fmt: skip
    assert str(info.value) == (
        f"output {clip.clip} is also an input ({clip.clip}); nst-video never writes over an "
        "input, not even with overwrite=True: choose another path"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"progress": True}, "progress= takes a function called with each event, got bool"),
        ({"settings": {"size": 32}}, "settings= takes a nst_video.Settings, got dict"),
        ({"overwrite": "yes"}, "overwrite= takes True or False, got 'yes'"),
        ({"workers": True}, "workers= takes a whole number, got True"),
        ({"weights": 3}, "weights= takes a path (str or pathlib.Path), got int"),
        ({"work_dir": ""}, "work_dir= takes a path (str or pathlib.Path), got ''"),
        ({"output": None}, "output= takes a path (str or pathlib.Path), got NoneType"),
        ({"workers": 0}, "workers= must be >= 1, got 0"),
        ({"size": "big"}, "size must be a whole number, got 'big'"),
    ],
)
def test_stylize_video_wrong_arguments_are_option_errors(
    clip: Inputs, tmp_path: Path, arguments: dict[str, object], message: str
) -> None:
    from nst_video import stylize_video

    given = {"output": tmp_path / "o.mp4", **arguments}
    with pytest.raises(OptionError) as info:
        stylize_video(clip.clip, clip.style, **given)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert list(tmp_path.iterdir()) == [clip.root]  # refused before anything was written


def test_stylize_video_styles_are_files(
    clip: Inputs, tmp_path: Path, style_rgb: np.ndarray
) -> None:
    from nst_video import stylize_video

    with pytest.raises(InputError) as info:
        stylize_video(clip.clip, style_rgb, tmp_path / "o.mp4", settings=VIDEO_FAST)  # type: ignore[arg-type]
    assert str(info.value) == (
        "style= of a video must be image files, got ndarray: the work directory records them "
        "to resume; save the image first"
    )
    assert isinstance(info.value, NstError)


# --- docs/api.md -------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.slow
def test_docs_api_examples_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    weights_env: Path,
    write_sequence: Callable[..., Path],
    make_image: Callable[..., np.ndarray],
) -> None:
    """Every example of docs/api.md, with the files it names made here, tiny, and the random
    weights in NST_VIDEO_WEIGHTS."""
    import doctest

    monkeypatch.chdir(tmp_path)
    make_inputs(tmp_path, 4, (32, 24), weights_env, write_sequence)  # clip.mkv, style.png
    Image.fromarray(make_image(24, 32, 1)).save(tmp_path / "photo.png")
    flags = doctest.ELLIPSIS
    result = doctest.testfile(
        str(DOCS / "api.md"), module_relative=False, optionflags=flags, raise_on_error=False
    )
    assert result.failed == 0, "docs/api.md: see the doctest report above"
    assert result.attempted >= 30  # the examples ran: a file doctest reads no code from passes
