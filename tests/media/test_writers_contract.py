"""One contract for every FrameWriter kind (a video file, a folder of numbered images), as the
pipeline uses them through open_writer; what is specific to each kind is in test_writers.py."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nst_video.errors import OutputError
from nst_video.media.sources import open_source
from nst_video.media.writers import FrameWriter, open_writer

WIDTH, HEIGHT, COUNT = 48, 32, 3
FPS = Fraction(12)


@pytest.fixture(params=["video", "directory"])
def output(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a writer of this kind writes: a lossless video file or a folder ('/' at the end)."""
    return str(tmp_path / "out.mkv") if request.param == "video" else f"{tmp_path / 'frames'}/"


def writer(output: str, **kwargs: object) -> FrameWriter:
    video = {"codec": "libx264rgb", "crf": 0, "pix_fmt": "rgb24"}  # lossless: exact frames back
    return open_writer(output, (WIDTH, HEIGHT), FPS, **video, **kwargs)


def test_is_a_frame_writer(output: str) -> None:
    with writer(output) as sink:
        assert isinstance(sink, FrameWriter)


def test_frames_written_read_back_exactly_in_order(
    output: str, make_frames: Callable[..., list]
) -> None:
    frames = make_frames(COUNT, WIDTH, HEIGHT)
    with writer(output) as sink:
        for frame in frames:
            sink.write(frame)
    source = open_source(output.rstrip("/"))
    assert (source.frame_count, source.size) == (COUNT, (WIDTH, HEIGHT))
    for got, want in zip(source.frames(), frames, strict=True):
        np.testing.assert_array_equal(got, want)


def test_close_twice_is_harmless(output: str, make_frames: Callable[..., list]) -> None:
    sink = writer(output)
    sink.write(make_frames(1, WIDTH, HEIGHT)[0])
    sink.close()
    sink.close()
    assert open_source(output.rstrip("/")).frame_count == 1


def test_an_error_in_the_block_aborts_leaving_no_partial_file(
    output: str, make_frames: Callable[..., list]
) -> None:
    """abort(): no partial (dot) file anywhere; what a kind keeps is only complete (a folder
    keeps the frames written, each whole; a video keeps nothing)."""
    parent = Path(output.rstrip("/")).parent
    with pytest.raises(RuntimeError), writer(output) as sink:
        sink.write(make_frames(1, WIDTH, HEIGHT)[0])
        raise RuntimeError("stop")
    assert not [path for path in parent.rglob(".*")]
    if output.endswith("/"):
        assert [path.name for path in Path(output).iterdir()] == ["frame_000000.png"]
    else:
        assert not Path(output).exists()


def test_an_existing_output_is_kept_without_overwrite(
    output: str, make_frames: Callable[..., list]
) -> None:
    frame = make_frames(1, WIDTH, HEIGHT)[0]
    with writer(output) as sink:
        sink.write(frame)
    first = Path(output.rstrip("/"))
    target = first / "frame_000000.png" if output.endswith("/") else first
    before = target.read_bytes()
    with pytest.raises(OutputError, match="exists; pass --overwrite"), writer(output) as sink:
        sink.write(255 - frame)
    assert target.read_bytes() == before
    with writer(output, overwrite=True) as sink:
        sink.write(255 - frame)
    assert target.read_bytes() != before
