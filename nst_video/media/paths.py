"""Checks on the paths a user names, made before any work starts, so mistakes cost seconds, not
hours: inputs (style images, weights) exist and are readable files; outputs can be written."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from nst_video.errors import InputError, OutputError, WeightsError, unknown_choice
from nst_video.media.files import refuse_existing
from nst_video.media.images import WRITE_EXTENSIONS
from nst_video.models import WEIGHTS_ENV, chosen_weights


def check_inputs(styles: Sequence[object], weights: str | Path | None) -> None:
    """Every input file the user named exists and is a readable file: one line if not.

    Used by every command (image, preview, video, resume) before any work, so no later hash or
    load meets a missing file. `styles` may hold arrays (the Python API): those are skipped.
    """
    for style in styles:
        if isinstance(style, str | Path):
            _check_file(Path(style), "style image", InputError)
    path = chosen_weights(weights)
    if path is not None:
        origin = "" if weights else f" (from {WEIGHTS_ENV})"
        _check_file(path, "weights file", WeightsError, origin)


def _check_file(path: Path, what: str, error: type[Exception], origin: str = "") -> None:
    if path.is_dir():
        raise error(f"{what} {path}{origin} is a directory; give the file itself")
    if not path.is_file():
        raise error(f"{what} not found: {path}{origin}")
    if not os.access(path, os.R_OK):
        raise error(f"{what} {path}{origin} is not readable; check its permissions")


def ensure_directory(path: Path) -> Path:
    """Create `path` (and parents) and check it is writable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {path}: {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK):
        raise OutputError(f"directory {path} is not writable; choose another output")
    return path


def check_writable_parent(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{parent} is a file, not a directory; choose another output path")
    if not parent.is_dir():
        raise OutputError(f"output directory {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory {parent} is not writable; choose another output")


def check_output_image(path: Path, overwrite: bool) -> None:
    """Extension supported, parent writable, and no existing file unless overwriting."""
    if path.suffix.lower() not in WRITE_EXTENSIONS:
        raise unknown_choice("output image extension", path.suffix or "(none)", WRITE_EXTENSIONS)
    check_writable_parent(path)
    refuse_existing(path, overwrite)


def check_not_inputs(
    outputs: Mapping[str, str | Path | None] | Iterable[tuple[str, str | Path | None]],
    inputs: Iterable[Path],
) -> None:
    """Refuse an output that is one of the inputs, whatever --overwrite says: same path after
    resolving symlinks, or the same file under another name (a hard link)."""
    known: dict[object, Path] = {}
    for path in inputs:
        for key in _identities(path):
            known.setdefault(key, path)
    pairs = outputs.items() if isinstance(outputs, Mapping) else outputs
    for what, output in pairs:
        if output is None:
            continue
        for key in _identities(Path(output)):
            if key in known:
                raise OutputError(
                    f"{what} {output} is also an input ({known[key]}); nst-video never writes "
                    "over an input, not even with --overwrite: choose another path"
                )


def _identities(path: Path) -> list[object]:
    keys: list[object] = [str(Path(os.path.abspath(path)).resolve())]
    try:
        info = path.stat()
    except OSError:
        return keys
    return [*keys, (info.st_dev, info.st_ino)]
