"""The command line: `nst-video` (entry point nst_video.cli:main)."""

from nst_video.cli.app import DEBUG_ENV, app, main

__all__ = ["DEBUG_ENV", "app", "main"]
