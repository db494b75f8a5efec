"""nst-video: optimization-based neural style transfer for video clips and image sequences."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Settings", "stylize_image", "__version__"]

if TYPE_CHECKING:
    from nst_video.api import stylize_image
    from nst_video.config import Settings


def __getattr__(name: str) -> Any:
    # Lazy: `import nst_video` must stay cheap (no torch import) for `--version` and `--help`.
    if name == "stylize_image":
        from nst_video.api import stylize_image

        return stylize_image
    if name == "Settings":
        from nst_video.config import Settings

        return Settings
    raise AttributeError(name)
