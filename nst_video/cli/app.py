"""The typer app: commands, their options, and the error boundary (one line, exit 1 or 2).

Torch-free and cv2-free at import, so `nst-video --help` and `--version` stay fast: a command's
work lives in commands.py, loaded only when the command runs.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from nst_video import __version__
from nst_video.cli.options import (
    ConfigFile,
    Like,
    Overwrite,
    Quiet,
    RayAddress,
    SaveConfig,
    ScheduledStyles,
    Styles,
    StyleWeightSweep,
    Weights,
    Workers,
    help_choices,
    help_panel,
    panel_rank,
    path_value,
    setting_options,
    text_path,
)
from nst_video.cli.report import report
from nst_video.cli.weights import weights_app
from nst_video.config import IMAGE, PREVIEW, VIDEO, LossConfig, Settings
from nst_video.errors import NstError

try:  # typer >= 0.2x ships its own copy of click; earlier versions use click itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError

DEBUG_ENV = "NST_VIDEO_DEBUG"


class _TidyHelp:
    """typer's help shows `<bool>` beside every flag and `<list[Path]>` beside repeatable paths:
    flags show nothing, lists show their element type (`<path>`), options with a few allowed
    words show them (`[lbfgs|adam]`). Options are grouped into boxes (options.help_panel)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        command = getattr(self, "name", None)
        for param in self.params:  # type: ignore[attr-defined]
            _tidy_metavar(param, help_choices(command, param.name))
            if param.param_type_name == "option" and not getattr(param, "rich_help_panel", None):
                param.rich_help_panel = help_panel(command, param.name)
        # typer draws the boxes in the order their first option comes: sort by box (stable).
        self.params.sort(key=lambda p: panel_rank(getattr(p, "rich_help_panel", None)))  # type: ignore[attr-defined]

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            _tidy_metavar(option, None)
        return option


class _Command(_TidyHelp, TyperCommand):
    pass


class _Group(_TidyHelp, TyperGroup):
    pass


def _tidy_metavar(param: Any, choices: tuple[str, ...] | None) -> None:
    if getattr(param, "is_flag", False):
        param.metavar = ""
        return
    shown = getattr(param, "display_type_rich", None)  # typer's rich help (0.2x) only
    if shown is None or getattr(param, "_tidy", False):
        return

    def display(ctx: Any) -> str | None:
        if choices:
            return f"[{'|'.join(choices)}]"
        text = shown(ctx=ctx)
        # <list[Path]>, and <Path> where a parser (path_value) replaced typer's path type.
        match = re.fullmatch(r"<(?:list\[(\w+)\]|(Path))>(\.\.\.)?", text or "")
        if match is None:
            return text
        return f"<{(match.group(1) or match.group(2)).lower()}>"  # an argument's name ends in '...'

    param.display_type_rich = display
    param._tidy = True


app = typer.Typer(
    name="nst-video",
    cls=_Group,
    help="Paint video clips and images with optimization-based neural style transfer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # commands inherit it
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nst-video {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Paint video clips and images with optimization-based neural style transfer."""


def _commands() -> ModuleType:
    # The one deferred import: the commands' work needs torch and cv2, which --help and
    # --version must not load.
    from nst_video.cli import commands

    return commands


# The stylizing commands' settings (--style-weight, --size, ...) are options built from the
# settings' field metadata (config.py) by @setting_options; only the other options are here.


@app.command(cls=_Command)
@setting_options(IMAGE)
def image(
    content: Annotated[
        list[Path],
        typer.Argument(
            parser=path_value,
            help="Content image(s), or a directory of images.",
            show_default=False,
        ),
    ],
    style: Styles,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            parser=path_value,
            help=(
                "Output image (format from its extension: png, jpg, webp, tif); a directory when "
                "several inputs or a directory are given."
            ),
        ),
    ],
    output_ext: Annotated[str, typer.Option(help="Extension of batch outputs.")] = "png",
    style_weight: StyleWeightSweep = f"{LossConfig().style_weight:g}",
    save_every: Annotated[
        int, typer.Option(help="Also save OUTPUT.iterNNNN.png every N evaluations (0: never).")
    ] = 0,
    config: ConfigFile = None,
    save_config: SaveConfig = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    weights: Weights = None,
    *,
    settings: Settings,  # built from the settings options (setting_options)
) -> None:
    """Stylize one image, several images, or a directory of images."""
    if _commands().image(**locals()):
        raise typer.Exit(1)


@app.command(cls=_Command)
@setting_options(VIDEO)
def video(
    input: Annotated[
        str,
        typer.Argument(
            parser=text_path,
            help=(
                "Video file, directory of images, glob ('frames/*.png') or printf pattern "
                "(frame_%05d.png)."
            ),
            show_default=False,
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            parser=text_path,
            help=(
                "Output video (.mp4 .mov .mkv .webm), or a directory of PNG frames (trailing '/')."
            ),
        ),
    ],
    style: ScheduledStyles = None,
    report: Annotated[
        Path | None,
        typer.Option(parser=path_value, help="Write per-frame statistics (JSONL)."),
    ] = None,
    report_html: Annotated[
        Path | None,
        typer.Option(parser=path_value, help="HTML report kept up to date after each frame."),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            parser=path_value,
            help="Work directory for frames and resume state; default OUTPUT.nst-work.",
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Discard frames rendered with other settings.")
    ] = False,
    config: ConfigFile = None,
    like: Like = None,
    save_config: SaveConfig = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    weights: Weights = None,
    workers: Workers = 1,
    ray_address: RayAddress = None,
    *,
    settings: Settings,  # built from the settings options (setting_options)
) -> None:
    """Stylize a video clip or image sequence, frame by frame, without flicker. Resumable."""
    _commands().video(**locals())


@app.command(cls=_Command)
def resume(
    work_dir: Annotated[
        Path, typer.Argument(parser=path_value, help="Work directory of an earlier render.")
    ],
    workers: Workers = 1,
    ray_address: RayAddress = None,
    report_html: Annotated[
        Path | None,
        typer.Option(parser=path_value, help="HTML report kept up to date after each frame."),
    ] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Continue a render with the settings stored in its work directory."""
    _commands().resume(**locals())


@app.command(cls=_Command)
def status(
    work_dir: Annotated[
        Path, typer.Argument(parser=path_value, help="Work directory of a render.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Frames done / total, average seconds per frame and ETA of a render."""
    _commands().status(**locals())


app.command(cls=_Command)(report)


@app.command(cls=_Command)
@setting_options(PREVIEW)
def preview(
    input: Annotated[str, typer.Argument(parser=text_path, help="Video file or image sequence.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", parser=path_value, help="Contact sheet image (PNG)."),
    ],
    style: ScheduledStyles = None,
    count: Annotated[
        int, typer.Option(help="Frames spread over the clip (with --style-at: over the schedule).")
    ] = 4,
    style_weight: StyleWeightSweep = f"{LossConfig().style_weight:g}",
    config: ConfigFile = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    weights: Weights = None,
    *,
    settings: Settings,  # built from the settings options (setting_options)
) -> None:
    """A contact sheet of a few stylized frames (inputs above, results below) to pick weights.

    Several --style-weight values give one labelled row of results per value.
    """
    _commands().preview(**locals())


app.add_typer(weights_app, cls=_Group)


def main() -> None:
    """Console entry point: NstError becomes one line on stderr and exit code 1, a usage error
    (click's) one line and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # `nst-video` alone: the help, as click does
        else:
            print(f"nst-video: error: {_usage_line(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except ClickException as exc:
        print(f"nst-video: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:  # EOF on a prompt
        sys.exit(1)
    except NstError as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"nst-video: error: {message}", file=sys.stderr)
        sys.exit(1)
    # Outside standalone mode click returns typer.Exit's code (130 after a stray Ctrl-C).
    sys.exit(code if isinstance(code, int) else 0)


def _usage_line(exc: UsageError) -> str:
    """Click's message on one line, with the command whose --help explains it."""
    message = " ".join(exc.format_message().split())
    command = "nst-video"  # also under `python -m nst_video`, whose program name is that
    if exc.ctx is not None:
        command += exc.ctx.command_path[len(exc.ctx.find_root().command_path) :]
    return f"{message.rstrip('.')}; see {command} --help"
