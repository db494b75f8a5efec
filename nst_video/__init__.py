"""nst-video: optimization-based neural style transfer for video clips and image sequences."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nst_video.errors import NstError  # tiny: the exception every refusal is

__version__ = "0.1.0"
__all__ = [
    "NstError",
    "Settings",
    "VideoResult",
    "__version__",
    "stylize_image",
    "stylize_video",
]

if TYPE_CHECKING:
    from nst_video.api import VideoResult, stylize_image, stylize_video
    from nst_video.config import Settings

# Lazy: `import nst_video` must stay cheap (no torch import) for `--version` and `--help`.
_API = ("stylize_image", "stylize_video", "VideoResult")


def __getattr__(name: str) -> Any:
    if name in _API:
        from nst_video import api

        return getattr(api, name)
    if name == "Settings":
        from nst_video.config import Settings

        return Settings
    raise AttributeError(name)
