"""Checks on output paths made before any work starts, so mistakes cost seconds, not hours."""

from __future__ import annotations

import os
from pathlib import Path

from nst_video.errors import OutputError, unknown_choice
from nst_video.frames.images import WRITE_EXTENSIONS


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
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists; pass --overwrite to replace it")
