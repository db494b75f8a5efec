"""Settings files (--config, --save-config) and the one-line settings summary a command prints.

A settings file is TOML with flat keys: each key is a setting's option without its dashes, `_`
for `-` (style_weight = 5.0, temporal_offsets = [1, 2, 4]), as `COMMAND --help` lists them and
--save-config writes them. Torch-free and cv2-free: --config is read while options are parsed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import tomllib
import typer

from nst_video import __version__
from nst_video.config import (
    PANELS,
    VIDEO,
    VIDEO_SIZE_CAP,
    ImageConfig,
    Settings,
    cli_text,
    coerce,
    command_settings,
)
from nst_video.errors import OptionError
from nst_video.video.levels import first_coarse_long_side

# The first line of every file --save-config writes: a file that starts otherwise is not ours,
# and is replaced only with --overwrite.
PRESET_MARK = "# nst-video settings"


def option_settings(command: str) -> dict[str, Any]:
    """The settings of `command` that are options: a settings file's keys."""
    return {name: s for name, s in command_settings(command).items() if s.cli is not None}


def read_preset(path: Path, command: str) -> dict[str, Any]:
    """The settings in TOML file `path`, as option values of `command` by setting name; a
    file that cannot be read, bad TOML, an unknown key or a wrong value is a usage error (one
    line naming the key, or the line of a syntax error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise typer.BadParameter(f"cannot read {path}: {reason}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise typer.BadParameter(f"{path} is not valid TOML: {exc}") from None
    known = option_settings(command)
    values = {}
    for key, value in data.items():
        setting = known.get(key)
        if setting is None:
            what = "a table" if isinstance(value, dict) else "not a setting of " + command
            raise typer.BadParameter(f"{path}: {key!r} is {what}; valid keys: {', '.join(known)}")
        try:
            values[key] = cli_text(setting, coerce(setting, value, f"{path}: {key}"))
        except OptionError as exc:
            raise typer.BadParameter(str(exc)) from None
    return values


def preset_text(settings: Settings, command: str) -> str:
    """`settings` as a settings file for `command`: every option, by --help box; a setting
    whose value is none (a video's size: its input's) is a comment, since TOML has no null."""
    lines = [
        f"{PRESET_MARK} for `nst-video {command}` (nst-video {__version__}); "
        "read with --config FILE, options given on the command line win"
    ]
    known = option_settings(command)
    for panel in PANELS:
        names = [name for name, s in known.items() if s.cli.panel == panel]
        if not names:
            continue
        lines.append(f"\n# {panel}")
        for name in names:
            value = getattr(getattr(settings, known[name].group), name)
            if value is None:
                lines.append(f"# {name}: not set (see --{name.replace('_', '-')} in --help)")
            else:
                lines.append(f"{name} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Fraction):
        return json.dumps(str(value))
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def _levels(image: ImageConfig) -> str:
    """Where coarse-to-fine starts, for the settings line ('' when it never does)."""
    side = first_coarse_long_side(image)
    return "" if side is None else f", coarse-to-fine from {side} px"


def summary(settings: Settings, command: str, sweep: Sequence[float] = ()) -> str:
    """The settings a command runs with, in one line (network, size, seed, weights, budgets);
    `sweep`: the style weights of a --style-weight sweep, shown in place of the one."""
    loss, image, optim, video = settings.loss, settings.image, settings.optim, settings.video
    if image.size is not None:
        size = f"size {image.size}"
    else:
        size = f"size: the input's (at most {VIDEO_SIZE_CAP})"
    style = ",".join(f"{w:g}" for w in sweep or [loss.style_weight])
    weights = f"style {style}, content {loss.content_weight:g}, tv {loss.tv_weight:g}"
    if command == VIDEO:
        weights += f", temporal {loss.temporal_weight:g}"
        budget = (
            f"evaluations {video.first_iterations} first / {video.iterations} later"
            + (f" / {video.pass_iterations} in passes 2-{video.passes}" if video.passes > 1 else "")
            + f"{_levels(image)}, flow {video.flow}, init {video.init}"
        )
    else:
        budget = f"evaluations {optim.iterations}{_levels(image)}, init {image.init}"
    parts = [
        f"{loss.model} ({image.pooling} pooling, {image.padding} padding, margin {image.margin})",
        size,
        f"seed {image.seed}",
        weights,
        f"{optim.optimizer} {budget}",
        f"device {settings.compute.device}, precision {settings.compute.precision}",
    ]
    return "settings: " + "; ".join(parts)
