"""VideoWriter / ImageDirWriter: round trips, atomic output, refusals and ffmpeg failures."""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nst_video.errors import FFmpegError, OptionError, OutputError
from nst_video.media.images import read_image
from nst_video.media.sources import open_source
from nst_video.media.writers import ImageDirWriter, VideoWriter, open_writer

NTSC_FILM = Fraction(24000, 1001)


def _write(path: Path | str, frames: list, fps: Fraction = NTSC_FILM, **kwargs: object) -> None:
    height, width = frames[0].shape[:2]
    with VideoWriter(path, (width, height), fps, **kwargs) as writer:  # type: ignore[arg-type]
        for frame in frames:
            writer.write(frame)


def test_round_trip_count_size_and_exact_fps(
    tmp_path: Path, make_frames: Callable[..., list]
) -> None:
    out = tmp_path / "out.mp4"
    _write(out, make_frames(6, 32, 24), crf=0)
    source = open_source(out)
    assert (source.frame_count, source.size, source.fps) == (6, (32, 24), NTSC_FILM)
    assert source.has_audio is False
    reds = [frame[:, :, 0].mean() for frame in source]
    assert np.allclose(reds, [10 + 20 * i for i in range(6)], atol=2.5)
    assert os.listdir(tmp_path) == ["out.mp4"]


@pytest.mark.parametrize("suffix", [".mov", ".mkv", ".webm"])
def test_other_containers(tmp_path: Path, make_frames: Callable[..., list], suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    _write(out, make_frames(3, 32, 32), Fraction(25))
    source = open_source(out)
    assert (source.frame_count, source.size, source.fps) == (3, (32, 32), 25)


def test_audio_copied_from_source(
    tmp_path: Path, make_frames: Callable[..., list], clip_with_audio: Path
) -> None:
    out = tmp_path / "with sound.mkv"
    _write(out, make_frames(12, 32, 32), audio_from=clip_with_audio, audio_duration=12 / 24)
    source = open_source(out)
    assert source.has_audio is True and source.frame_count == 12


def test_audio_from_silent_file_gives_video_only(
    tmp_path: Path, make_frames: Callable[..., list], lossless_video: Path
) -> None:
    out = tmp_path / "silent.mp4"
    _write(out, make_frames(3, 32, 32), audio_from=lossless_video)
    assert open_source(out).has_audio is False


def test_odd_size_is_padded_not_rescaled(tmp_path: Path, make_frames: Callable[..., list]) -> None:
    frames = make_frames(2, 33, 21)
    out = tmp_path / "odd.mp4"
    _write(out, frames, crf=0)
    source = open_source(out)
    assert source.size == (34, 22)
    (decoded,) = source.frames(1, 1)
    diff = np.abs(decoded[:21, :33].astype(int) - frames[1].astype(int))
    assert diff.mean() < 5  # yuv420p chroma subsampling of the ramps
    replicated = np.abs(decoded[:21, 33].astype(int) - frames[1][:, 32].astype(int))
    assert replicated.mean() < 8


def test_odd_size_kept_without_chroma_subsampling(
    tmp_path: Path, make_frames: Callable[..., list]
) -> None:
    out = tmp_path / "odd444.mp4"
    _write(out, make_frames(2, 33, 21), pix_fmt="yuv444p")
    assert open_source(out).size == (33, 21)


def test_existing_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError) as info:
        VideoWriter(out, (32, 32), NTSC_FILM)
    assert str(info.value) == f"{out} exists; pass --overwrite to replace it"
    assert out.read_bytes() == b"precious"


def test_overwrite_replaces(tmp_path: Path, make_frames: Callable[..., list]) -> None:
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"old")
    _write(out, make_frames(2, 32, 32), overwrite=True)
    assert open_source(out).frame_count == 2


def test_awkward_file_name(
    tmp_path: Path, make_frames: Callable[..., list], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write("-ünï code.mp4", make_frames(2, 32, 32))
    assert os.listdir(".") == ["-ünï code.mp4"]
    assert open_source("-ünï code.mp4").frame_count == 2


def test_abort_leaves_nothing_and_keeps_existing(
    tmp_path: Path, make_frames: Callable[..., list]
) -> None:
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"previous")
    writer = VideoWriter(out, (32, 32), NTSC_FILM, overwrite=True)
    writer.write(make_frames(1, 32, 32)[0])
    writer.abort()
    assert os.listdir(tmp_path) == ["keep.mp4"] and out.read_bytes() == b"previous"


def test_dropped_writer_cleans_up(tmp_path: Path, make_frames: Callable[..., list]) -> None:
    writer = VideoWriter(tmp_path / "x.mp4", (32, 32), NTSC_FILM)
    writer.write(make_frames(1, 32, 32)[0])
    proc = writer._proc
    del writer
    assert proc is not None and proc.returncode is not None
    assert os.listdir(tmp_path) == []


def test_exception_in_block_aborts(tmp_path: Path, make_frames: Callable[..., list]) -> None:
    with pytest.raises(KeyError), VideoWriter(tmp_path / "x.mp4", (32, 32), NTSC_FILM) as writer:
        writer.write(make_frames(1, 32, 32)[0])
        raise KeyError("boom")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("frames", [1, 200])
def test_unknown_codec_is_one_line_ffmpeg_error(
    tmp_path: Path, make_frames: Callable[..., list], frames: int
) -> None:
    # 1 frame fits in the pipe (error at close); 200 frames hit the broken pipe in write().
    frame = make_frames(1, 32, 32)[0]
    writer = VideoWriter(tmp_path / "x.mkv", (32, 32), NTSC_FILM, codec="no-such-codec")
    with pytest.raises(FFmpegError) as info, writer:
        for _ in range(frames):
            writer.write(frame)
    assert "Unknown encoder 'no-such-codec'" in str(info.value)
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_bad_extension_and_directory(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match=r"x\.avi.; use one of \.mp4, \.mov, \.mkv, \.webm, or"):
        VideoWriter(tmp_path / "x.avi", (32, 32), NTSC_FILM)
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "missing" / "x.mp4", (32, 32), NTSC_FILM)


def test_wrong_frame_shape_is_rejected(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "x.mp4", (32, 32), NTSC_FILM) as writer, pytest.raises(ValueError):
        writer.write(np.zeros((32, 31, 3), np.uint8))


def test_image_dir_writer(tmp_path: Path, make_frames: Callable[..., list]) -> None:
    frames = make_frames(3, 16, 8)
    target = tmp_path / "out" / "frames"
    with ImageDirWriter(target, start_index=5) as writer:
        for frame in frames:
            writer.write(frame)
    assert sorted(os.listdir(target)) == [f"frame_{i:06d}.png" for i in (5, 6, 7)]
    np.testing.assert_array_equal(read_image(target / "frame_000006.png"), frames[1])
    with pytest.raises(OutputError) as info:
        ImageDirWriter(target, start_index=7).write(frames[0])
    assert (
        str(info.value) == f"{target / 'frame_000007.png'} exists; pass --overwrite to replace it"
    )
    ImageDirWriter(target, start_index=7, overwrite=True).write(frames[0])


def test_open_writer_dispatch(tmp_path: Path) -> None:
    directory_writer = open_writer(str(tmp_path / "pngs") + "/", (8, 8), NTSC_FILM, crf=3)
    assert isinstance(directory_writer, ImageDirWriter)
    assert isinstance(open_writer(tmp_path, (8, 8), NTSC_FILM), ImageDirWriter)
    video = open_writer(tmp_path / "v.mkv", (8, 8), NTSC_FILM)
    assert isinstance(video, VideoWriter)
    video.abort()
    with pytest.raises(OptionError) as info:
        open_writer(tmp_path / "v.gif", (8, 8), NTSC_FILM)
    assert "end it with '/' for numbered PNG frames" in str(info.value)


def test_each_encode_has_its_own_temporary_file(
    tmp_path: Path, make_frames: Callable[..., list]
) -> None:
    frame = make_frames(1, 32, 32)[0]
    out = tmp_path / "out.mp4"
    first = VideoWriter(out, (32, 32), NTSC_FILM)
    second = VideoWriter(out, (32, 32), NTSC_FILM)
    try:
        assert first.tmp != second.tmp
        for writer in (first, second):
            assert writer.tmp.parent == tmp_path
            assert writer.tmp.name.startswith(f".out.mp4.nst-{os.getpid()}-")
            assert writer.tmp.name.endswith(".partial.mp4")
            writer.write(frame)
    finally:
        first.abort()
        second.abort()
    assert os.listdir(tmp_path) == []


def test_finished_file_is_shown_before_it_replaces_the_output(
    tmp_path: Path, make_frames: Callable[..., list]
) -> None:
    out, chosen = tmp_path / "out.mkv", tmp_path / ".chosen.partial.mkv"
    seen: list[tuple[Path, bool, int]] = []

    def before_commit(finished: Path) -> None:
        seen.append((finished, out.exists(), finished.stat().st_size))

    _write(out, make_frames(2, 32, 32), partial=chosen, before_commit=before_commit)
    assert seen == [(chosen, False, out.stat().st_size)]
    assert os.listdir(tmp_path) == ["out.mkv"]
