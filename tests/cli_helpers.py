"""Running the console entry point in-process, shared by the CLI tests."""

from __future__ import annotations

import sys

import pytest

from nst_video import cli


def run_capturing(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Runs `nst-video ARGS` through cli.main(); returns (exit code, stdout, stderr)."""
    argv = sys.argv
    sys.argv = ["nst-video", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Runs `nst-video ARGS` through cli.main(); returns (exit code, stderr)."""
    code, _out, err = run_capturing(capsys, *args)
    return code, err
