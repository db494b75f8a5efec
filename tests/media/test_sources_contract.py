"""One contract for every FrameSource kind, plus the parts specific to each kind."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media_helpers import write_frames

from nst_video.errors import FFmpegError, InputError, OptionError
from nst_video.media import sources
from nst_video.media.ffmpeg import exact_rate, probe, relevant_error_line
from nst_video.media.images import write_image
from nst_video.media.sources import (
    FrameSource,
    ImageSequenceSource,
    VideoSource,
    open_source,
    parse_fps,
)

NTSC_FILM = Fraction(24000, 1001)
WIDTH, HEIGHT, COUNT = 48, 32, 8  # the session clip built in conftest.py


@pytest.fixture(scope="module", params=["video", "directory", "glob", "printf"])
def clip(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    lossless_video: Path,
    frames_data: list,
) -> tuple[FrameSource, list, Fraction]:
    """(source, the frames it must yield, the rate it must report)."""
    if request.param == "video":
        return open_source(lossless_video), frames_data, NTSC_FILM
    directory = tmp_path_factory.mktemp("seq") / "my frames"
    write_frames(directory, frames_data, "frame_{:03d}.png")
    spec = {
        "directory": str(directory),
        "glob": str(directory / "*.png"),
        "printf": str(directory / "frame_%03d.png"),
    }[request.param]
    return open_source(spec, fps=Fraction(30000, 1001)), frames_data, Fraction(30000, 1001)


def test_is_a_frame_source(clip: tuple) -> None:
    assert isinstance(clip[0], FrameSource)


def test_frame_count_size_and_audio(clip: tuple) -> None:
    source, _, _ = clip
    assert source.frame_count == COUNT
    assert source.size == (WIDTH, HEIGHT)
    assert source.has_audio is False


def test_fps_is_exact_fraction(clip: tuple) -> None:
    source, _, fps = clip
    assert isinstance(source.fps, Fraction)
    assert source.fps == fps


def test_frames_in_order_and_exact(clip: tuple) -> None:
    source, expected, _ = clip
    got = list(source)
    assert [int(frame[0, 0, 0]) for frame in got] == [10 + 20 * i for i in range(COUNT)]
    for frame, want in zip(got, expected, strict=True):
        assert frame.dtype == np.uint8 and frame.shape == (HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(frame, want)


@pytest.mark.parametrize(
    ("start", "count"), [(0, None), (3, None), (3, 2), (0, 1), (6, 10), (7, 1), (8, None), (20, 3)]
)
def test_frames_slice_matches_full_iteration(clip: tuple, start: int, count: int | None) -> None:
    source, _, _ = clip
    full = list(source.frames())
    stop = len(full) if count is None else start + count
    got = list(source.frames(start, count))
    assert len(got) == len(full[start:stop])
    for frame, want in zip(got, full[start:stop], strict=True):
        np.testing.assert_array_equal(frame, want)


def test_count_zero_is_empty(clip: tuple) -> None:
    assert list(clip[0].frames(2, 0)) == []


def test_single_frames(clip: tuple) -> None:
    source, expected, _ = clip
    for index in (0, 5, COUNT - 1):
        (frame,) = source.frames(index, 1)
        np.testing.assert_array_equal(frame, expected[index])


def test_negative_start_or_count_is_an_option_error(clip: tuple) -> None:
    with pytest.raises(OptionError, match="start frame must be 0 or more"):
        clip[0].frames(-1)
    with pytest.raises(OptionError, match="frame count must be 0 or more"):
        clip[0].frames(0, -2)


def test_files_name_what_is_read(clip: tuple) -> None:
    source, _, _ = clip
    assert all(isinstance(path, Path) and path.is_file() for path in source.files)
    if isinstance(source, VideoSource):
        assert source.files == [Path(source.path)]
    else:
        assert [path.name for path in source.files] == [f"frame_{i:03d}.png" for i in range(COUNT)]


def test_whole_clips_have_no_warning(clip: tuple) -> None:
    assert clip[0].warning is None


@pytest.mark.parametrize(("start", "count"), [(0, None), (3, 2), (COUNT, 1)])
def test_frames_is_a_generator_that_stops_when_closed(
    clip: tuple, start: int, count: int | None
) -> None:
    """The pipeline closes a stream it stops reading early (a decoder process ends then);
    even an empty range hands out something that closes."""
    frames = clip[0].frames(start, count)
    if start < COUNT:
        next(frames)
    frames.close()
    assert list(frames) == []


def test_missing_input_message(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(InputError) as info:
        open_source(missing)
    assert str(info.value) == f"input not found: {missing}"


# --- video specific ---------------------------------------------------------------------


def test_early_close_reaps_ffmpeg(lossless_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def spy(*args: object, **kwargs: object) -> subprocess.Popen:
        proc = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(proc)
        return proc

    source = VideoSource(lossless_video)
    monkeypatch.setattr(sources.subprocess, "Popen", spy)
    frames = source.frames()
    next(frames)
    frames.close()
    assert len(started) == 1 and started[0].returncode == -9


def test_fps_override_relabels_video(lossless_video: Path) -> None:
    source = open_source(lossless_video, fps=Fraction(12))
    assert source.fps == 12 and source.frame_count == COUNT


def test_rotation_metadata_gives_upright_frames(
    tmp_path: Path, lossless_video: Path, frames_data: list, ffmpeg: Callable[..., None]
) -> None:
    rotated = tmp_path / "rotated.mkv"
    ffmpeg("-display_rotation", "90", "-i", f"file:{lossless_video}", "-c", "copy",
               f"file:{rotated}")  # fmt: skip
    assert probe(rotated).rotation == 90
    source = open_source(rotated)
    assert source.size == (HEIGHT, WIDTH)
    (frame,) = source.frames(2, 1)
    assert frame.shape == (WIDTH, HEIGHT, 3)
    # 90 degrees counter-clockwise: the original top-right corner ends up top-left.
    np.testing.assert_array_equal(frame, np.rot90(frames_data[2]))


def test_undecodable_file_is_one_line_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video at all" * 10)
    with pytest.raises(InputError) as info:
        open_source(bad)
    message = str(info.value)
    assert message.startswith(f"cannot read {bad}: ") and "\n" not in message


def test_audio_stream_is_detected(clip_with_audio: Path) -> None:
    source = open_source(clip_with_audio)
    assert source.has_audio is True
    assert source.fps == NTSC_FILM and source.frame_count == 24


def test_ntsc_rates_survive_an_mp4_round_trip(
    tmp_path: Path, make_frames: Callable[..., list], encode_video: Callable[..., Path]
) -> None:
    for fps in (Fraction(30000, 1001), Fraction(60000, 1001), Fraction(25)):
        path = encode_video(tmp_path / f"{fps.numerator}.mp4", make_frames(3, 32, 32), fps)
        assert open_source(path).fps == fps


# --- image sequence specific ------------------------------------------------------------


def _numbered(directory: Path, names: list[str], size: tuple[int, int] = (8, 6)) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for value, name in enumerate(names):
        write_image(directory / name, np.full((size[1], size[0], 3), value * 10, np.uint8))


def test_natural_sort_case_insensitive(tmp_path: Path) -> None:
    names = ["10.png", "2.png", "1.PNG", "B3.jpg", "a20.tif", "notes.txt"]
    _numbered(tmp_path, [n for n in names if not n.endswith(".txt")])
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.tmp.png").write_bytes(b"")
    source = open_source(tmp_path)
    assert isinstance(source, ImageSequenceSource)
    assert [p.name for p in source.files] == ["1.PNG", "2.png", "10.png", "a20.tif", "B3.jpg"]


def test_printf_pattern_takes_every_match_in_numeric_order_and_names_the_gap(
    tmp_path: Path,
) -> None:
    _numbered(tmp_path, ["f_1.png", "f_2.png", "f_3.png", "f_6.png", "f_10.png"])
    _numbered(tmp_path, ["g_4.png", "f_x.png"])  # not the pattern's
    spec = str(tmp_path / "f_%d.png")
    source = open_source(spec)
    assert isinstance(source, ImageSequenceSource)
    assert [p.name for p in source.files] == [
        "f_1.png",
        "f_2.png",
        "f_3.png",
        "f_6.png",
        "f_10.png",
    ]
    assert source.warning == (
        f"{spec}: numbering skips 4-5, 7-9; rendering the 5 files found in numeric order"
    )


def test_printf_width_matches_only_what_printf_writes(tmp_path: Path) -> None:
    _numbered(tmp_path, ["img00007.png", "img00008.png", "img7.png", "img123456.png"])
    source = open_source(str(tmp_path / "img%05d.png"))
    assert [p.name for p in source.files] == ["img00007.png", "img00008.png", "img123456.png"]


@pytest.mark.parametrize("form", ["directory", "glob", "printf"])
def test_whole_numbering_has_no_warning_and_gaps_one_line(tmp_path: Path, form: str) -> None:
    _numbered(tmp_path, [f"f{i:03d}.png" for i in range(4)])
    spec = {"directory": str(tmp_path), "glob": str(tmp_path / "f*.png"),
            "printf": str(tmp_path / "f%03d.png")}[form]  # fmt: skip
    assert open_source(spec).warning is None
    (tmp_path / "f002.png").unlink()
    warning = open_source(spec).warning
    assert warning == f"{spec}: numbering skips 2; rendering the 3 files found in numeric order"


def test_printf_zero_padded_starts_at_zero(tmp_path: Path) -> None:
    _numbered(tmp_path, [f"img{i:05d}.png" for i in range(4)])
    assert open_source(str(tmp_path / "img%05d.png")).frame_count == 4


def test_glob_only_matching_files(tmp_path: Path) -> None:
    _numbered(tmp_path, ["a_1.png", "a_2.png", "b_1.png"])
    source = open_source(str(tmp_path / "a_*.png"))
    assert [p.name for p in source.files] == ["a_1.png", "a_2.png"]


def test_frame_of_another_size_names_file_and_sizes(tmp_path: Path) -> None:
    _numbered(tmp_path, ["1.png", "2.png"])
    _numbered(tmp_path, ["3.png"], size=(10, 6))
    with pytest.raises(InputError) as info:  # while planning, before any frame is decoded
        open_source(tmp_path)
    first, odd = tmp_path / "1.png", tmp_path / "3.png"
    assert str(info.value) == (
        f"{odd} is 10x6 but {first} is 8x6; all frames must have the same size"
    )


def test_empty_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no images found in"):
        open_source(tmp_path)
    with pytest.raises(InputError, match="no images found for"):
        open_source(str(tmp_path / "*.png"))
    with pytest.raises(InputError, match="no images found for"):
        open_source(str(tmp_path / "x%04d.png"))


def test_single_image_is_one_frame_sequence(tmp_path: Path) -> None:
    _numbered(tmp_path, ["still.jpg"])
    source = open_source(tmp_path / "still.jpg")
    assert source.frame_count == 1 and source.size == (8, 6)
    assert source.fps == 24 and source.has_audio is False


# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24", Fraction(24)),
        ("23.976", Fraction(24000, 1001)),
        ("23.98", Fraction(24000, 1001)),
        ("24000/1001", Fraction(24000, 1001)),
        ("29.97", Fraction(30000, 1001)),
        ("59.94", Fraction(60000, 1001)),
        ("12.5", Fraction(25, 2)),
        ("24.00", Fraction(24)),
    ],
)
def test_parse_fps(text: str, expected: Fraction) -> None:
    assert parse_fps(text) == expected


@pytest.mark.parametrize("text", ["0", "-24", "abc", "", "1/0", "nan", "inf"])
def test_parse_fps_rejects(text: str) -> None:
    with pytest.raises(OptionError, match="invalid frame rate"):
        parse_fps(text)


@pytest.mark.parametrize("text", ["1e9", "0.001", "1000.5", "1/11"])
def test_parse_fps_bounds(text: str) -> None:
    with pytest.raises(OptionError) as error:
        parse_fps(text)
    assert str(error.value) == (
        f"frame rate {text} is out of range; give 1/10 (a frame every 10 s) to 1000 frames "
        "per second"
    )
    assert parse_fps("0.1") == Fraction(1, 10) and parse_fps("1000") == 1000


def test_cover_art_is_not_a_video(tmp_path: Path, ffmpeg: Callable[..., None]) -> None:
    picture = tmp_path / "cover.png"
    write_image(picture, np.full((40, 40, 3), 200, np.uint8))
    song = tmp_path / "song.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-i", str(picture),
           "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame", "-c:v", "png",
           "-disposition:v", "attached_pic", f"file:{song}")  # fmt: skip
    with pytest.raises(InputError) as error:
        open_source(song)
    assert str(error.value) == (
        f"{song} has no video stream, only a still picture (cover art); give a video file or "
        "an image directory"
    )
    # A clip that also carries cover art is read as its real video stream.
    clip = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=48x32:rate=12:duration=0.5", "-i", str(picture),
           "-map", "1:v", "-map", "0:v", "-c:v:0", "png", "-disposition:v:0", "attached_pic",
           "-c:v:1", "libx264", "-pix_fmt:v:1", "yuv420p", f"file:{clip}")  # fmt: skip
    source = open_source(clip)
    assert (source.size, source.fps, source.frame_count) == ((48, 32), Fraction(12), 6)
    assert len(list(source)) == 6


def test_exact_rate_is_none_for_garbage() -> None:
    assert exact_rate("fast") is None


def test_relevant_error_line_skips_generic_lines() -> None:
    stderr = (
        "[vost#0:0 @ 0x5616] Unknown encoder 'nope'\n"
        "[vost#0:0 @ 0x5616] Error selecting an encoder\n"
        "Error opening output file /tmp/x.mp4.\n"
        "Error opening output files: Encoder not found\n"
    )
    assert relevant_error_line(stderr) == "Unknown encoder 'nope'"
    assert relevant_error_line("") == "ffmpeg failed without an error message"


def test_decoding_failure_is_ffmpeg_error(lossless_video: Path, tmp_path: Path) -> None:
    copy = tmp_path / "vanishing.mkv"
    shutil.copy(lossless_video, copy)
    source = VideoSource(copy)
    copy.write_bytes(b"garbage")
    with pytest.raises(FFmpegError, match="decoding"):
        list(source)
