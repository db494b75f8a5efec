"""Frame input/output: video files and image sequences in, encoded video or images out."""

from nst_video.media.ffmpeg import ProbeInfo, ffmpeg_exe, probe
from nst_video.media.images import (
    IMAGE_EXTENSIONS,
    WRITE_EXTENSIONS,
    read_image,
    write_image,
)
from nst_video.media.sources import (
    FrameSource,
    ImageSequenceSource,
    VideoSource,
    open_source,
    parse_fps,
)
from nst_video.media.writers import (
    VIDEO_EXTENSIONS,
    FrameWriter,
    ImageDirWriter,
    VideoWriter,
    open_writer,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "WRITE_EXTENSIONS",
    "FrameSource",
    "FrameWriter",
    "ImageDirWriter",
    "ImageSequenceSource",
    "ProbeInfo",
    "VideoSource",
    "VideoWriter",
    "ffmpeg_exe",
    "open_source",
    "open_writer",
    "parse_fps",
    "probe",
    "read_image",
    "write_image",
]
