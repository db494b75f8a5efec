"""`nst-video report WORKDIR`: the render's HTML page (pipeline/report.py). Torch-free at
import, like app.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nst_video.cli.options import Overwrite, path_value


def report(
    work_dir: Annotated[
        Path, typer.Argument(parser=path_value, help="Work directory of a render.")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            parser=path_value,
            help="HTML file to write; default WORKDIR/report.html.",
        ),
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """A self-contained HTML page of a render: state, ETA, thumbnails, charts.

    Flags frames worth a look; refreshes itself while the render runs. Opens from file:// or a
    shared folder: nothing is fetched.
    """
    from nst_video.cli import commands  # torch and cv2: only when the command runs

    commands.report(work_dir, output, overwrite)
