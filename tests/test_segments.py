"""Segment planning and seam blending (video/segments.py, pipeline/encode.py); no Ray needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from nst_video.config import VideoConfig
from nst_video.pipeline.encode import final_frames
from nst_video.video.segments import Segment, blend_weight
from nst_video.video.segments import plan_segments as _plan_segments
from nst_video.workdir.store import WorkDir

# --- plan_segments -------------------------------------------------------------------------------


def plan_segments(indices: range, parts: int, cuts: Sequence[int] = (), warmup: int = 4):
    """The planner with a 4-frame warm-up, which the hand-computed plans below assume."""
    return _plan_segments(indices, parts, cuts, warmup)


def test_even_split_two_parts() -> None:
    assert plan_segments(range(0, 20), 2) == [Segment(0, 0, 10, 0), Segment(1, 10, 20, 4)]


def test_even_split_three_parts_with_offset_start() -> None:
    # A render from --start 5: boundaries are relative to the range, not to frame 0.
    assert plan_segments(range(5, 35), 3) == [
        Segment(0, 5, 15, 0),
        Segment(1, 15, 25, 4),
        Segment(2, 25, 35, 4),
    ]


def test_uneven_length_rounds_boundaries() -> None:
    segments = plan_segments(range(0, 25), 2)
    assert [(s.start, s.stop) for s in segments] == [(0, 12), (12, 25)]


def test_one_part_is_the_whole_range() -> None:
    assert plan_segments(range(3, 9), 1) == [Segment(0, 3, 9, 0)]


def test_first_segment_never_warms_up() -> None:
    for parts in (1, 2, 4):
        assert plan_segments(range(0, 40), parts)[0].warmup == 0


def test_segments_tile_the_range_without_gaps() -> None:
    segments = plan_segments(range(7, 50), 4, cuts=[19, 33])
    assert segments[0].start == 7 and segments[-1].stop == 50
    assert all(a.stop == b.start for a, b in zip(segments, segments[1:], strict=False))
    assert [s.index for s in segments] == [0, 1, 2, 3]


def test_boundary_snaps_to_nearby_cut_which_needs_no_warmup() -> None:
    # Even boundary 20; a cut 2 frames away is within a quarter segment (5 frames).
    assert plan_segments(range(0, 40), 2, cuts=[18]) == [
        Segment(0, 0, 18, 0),
        Segment(1, 18, 40, 0),
    ]


def test_boundary_picks_the_closest_of_several_cuts() -> None:
    segments = plan_segments(range(0, 40), 2, cuts=[16, 21, 24])
    assert [(s.start, s.stop, s.warmup) for s in segments] == [(0, 21, 0), (21, 40, 0)]


def test_far_cut_leaves_boundary_even_with_warmup() -> None:
    # |12 - 20| = 8 > 40 / 2 / 4: too far, the boundary stays at 20 and warms up.
    assert plan_segments(range(0, 40), 2, cuts=[12]) == [
        Segment(0, 0, 20, 0),
        Segment(1, 20, 40, 4),
    ]


def test_only_boundaries_at_cuts_skip_warmup() -> None:
    # 3 x 20 frames: boundary 20 snaps to the cut at 22; boundary 40 has no cut near it.
    segments = plan_segments(range(0, 60), 3, cuts=[22])
    assert [(s.start, s.warmup) for s in segments] == [(0, 0), (22, 0), (40, 4)]


def test_custom_warmup() -> None:
    assert plan_segments(range(0, 20), 2, warmup=2) == [
        Segment(0, 0, 10, 0),
        Segment(1, 10, 20, 2),
    ]


@pytest.mark.parametrize(
    ("frames", "parts", "expected"),
    [
        (9, 2, 1),  # a segment must own more frames (5) than its warm-up (4)
        (10, 2, 2),
        (14, 3, 2),
        (15, 3, 3),
        (3, 4, 1),
        (1, 2, 1),
    ],
)
def test_too_short_clip_gives_fewer_parts(frames: int, parts: int, expected: int) -> None:
    segments = plan_segments(range(0, frames), parts)
    assert len(segments) == expected
    assert segments[-1].stop == frames
    assert all(s.stop - s.start > 4 for s in segments[1:])


# --- Segment ---------------------------------------------------------------------------------


def test_segment_frames_and_overlap() -> None:
    segment = Segment(1, 10, 20, 4)
    assert segment.frames == range(6, 20)
    assert segment.overlap == range(6, 10)


def test_segment_without_warmup_has_empty_overlap() -> None:
    segment = Segment(0, 0, 10, 0)
    assert segment.frames == range(0, 10)
    assert list(segment.overlap) == []


def test_segment_dict_round_trip() -> None:
    segment = Segment(2, 30, 45, 3)
    assert segment.as_dict() == {"index": 2, "start": 30, "stop": 45, "warmup": 3}
    assert Segment(**segment.as_dict()) == segment


# --- blend_weight ------------------------------------------------------------------------------


def test_blend_weight_rises_linearly_over_overlap() -> None:
    segment = Segment(1, 10, 20, 4)
    weights = [blend_weight(segment, i) for i in segment.overlap]
    assert weights == pytest.approx([0.2, 0.4, 0.6, 0.8])


def test_blend_weight_reaches_one_at_segment_start() -> None:
    # The first owned frame is the new segment's own: the crossfade has ended.
    assert blend_weight(Segment(1, 10, 20, 4), 10) == pytest.approx(1.0)
    assert blend_weight(Segment(1, 10, 20, 2), 8) == pytest.approx(1 / 3)


# --- a segment's frame store, and final_frames -------------------------------------------------


def solid(value: int, shape: tuple[int, int] = (6, 8)) -> np.ndarray:
    return np.full((*shape, 3), value, np.uint8)


def test_segment_work_keeps_warmup_frames_apart(tmp_path: Path) -> None:
    segment = Segment(1, 4, 8, 2)
    view = WorkDir(tmp_path).segment_frames(segment)
    assert view.frame_path(2) == tmp_path / "segments" / "001" / "000002.png"
    assert view.stats_path(3) == tmp_path / "segments" / "001" / "000003.json"
    assert view.frame_path(4) == tmp_path / "frames" / "000004.png"
    view.save_frame(3, solid(9), {"frame": 3})
    assert view.has_frame(3)
    assert not WorkDir(tmp_path).frames.has_frame(3)  # the previous segment's frame 3 is not done


def test_a_segment_store_removes_only_its_own_temporaries(tmp_path: Path) -> None:
    # A killed attempt leaves half-written warm-up frames; another segment may be writing into
    # frames/ at this very moment, so its temporaries must survive.
    view = WorkDir(tmp_path).segment_frames(Segment(1, 4, 8, 2))
    own = view.warmup / ".000002.png.nst-12-00001a2b.tmp.png"
    other = view.main / ".000005.png.nst-34-00003c4d.tmp.png"
    kept = view.warmup / "000003.png"
    for folder in (view.warmup, view.main):  # segment_frames creates nothing (status reads it)
        folder.mkdir(parents=True)
    for path in (own, other, kept):
        path.write_bytes(b"x")
    view.remove_temporaries()
    assert not own.exists()
    assert other.exists() and kept.exists()


@pytest.fixture
def blended_work(tmp_path: Path) -> WorkDir:
    """Frames 0-5 rendered by segment 0 (value 10*i+30) and warm-up frames 2-3 of segment 1
    (value 200, and 100 for frame 3's red channel)."""
    work = WorkDir(tmp_path)
    work.frames_dir.mkdir(parents=True)
    for index in range(6):
        work.frames.save_frame(index, solid(10 * index + 30), {"frame": index})
    warm = WorkDir(tmp_path).segment_frames(Segment(1, 4, 6, 2))
    warm.save_frame(2, solid(200), {"frame": 2})
    third = solid(200)
    third[..., 0] = 100
    warm.save_frame(3, third, {"frame": 3})
    return work


SEGMENTS = [Segment(0, 0, 4, 0), Segment(1, 4, 6, 2)]


def test_final_frames_crossfade_over_overlap(blended_work: WorkDir) -> None:
    frames = list(final_frames(blended_work, range(0, 6), SEGMENTS))
    assert len(frames) == 6
    # Outside the overlap: the stored frames unchanged.
    for index in (0, 1, 4, 5):
        np.testing.assert_array_equal(frames[index], solid(10 * index + 30))
    # Frame 2 (weight 1/3): 2/3 * 50 + 1/3 * 200 = 100.
    np.testing.assert_array_equal(frames[2], solid(100))
    # Frame 3 (weight 2/3): 1/3 * 60 + 2/3 * 200 = 153.33 -> 153; red: 20 + 66.67 -> 87.
    expected = solid(153)
    expected[..., 0] = 87
    np.testing.assert_array_equal(frames[3], expected)
    assert frames[3].dtype == np.uint8


def test_final_frames_without_segments_are_the_stored_frames(blended_work: WorkDir) -> None:
    for segments in (None, []):
        frames = list(final_frames(blended_work, range(1, 5), segments))
        assert [int(f[0, 0, 0]) for f in frames] == [40, 50, 60, 70]


def test_final_frames_of_a_subrange(blended_work: WorkDir) -> None:
    # --start past the overlap's first frame: only frame 3 is blended.
    frames = list(final_frames(blended_work, range(3, 5), SEGMENTS))
    assert [int(f[0, 0, 1]) for f in frames] == [153, 70]


def test_final_frames_missing_warmup_frame_is_an_error(blended_work: WorkDir) -> None:
    from nst_video.errors import ResumeError

    WorkDir(blended_work.path).segment_frames(Segment(1, 4, 6, 2)).frame_path(3).unlink()
    with pytest.raises(ResumeError, match="frame 3 in .*segments/001 is missing or corrupt"):
        list(final_frames(blended_work, range(0, 6), SEGMENTS))


def test_stored_segments_follow_a_longer_or_shorter_range() -> None:
    from nst_video.video.segments import fit_segments

    stored = [Segment(0, 0, 10, 0), Segment(1, 10, 20, 4)]
    assert fit_segments(stored, range(0, 26)) == [Segment(0, 0, 10, 0), Segment(1, 10, 26, 4)]
    assert fit_segments(stored, range(0, 14)) == [Segment(0, 0, 10, 0), Segment(1, 10, 14, 4)]
    assert fit_segments(stored, range(0, 7)) == [Segment(0, 0, 7, 0)]


# --- long-term offsets in a segment ------------------------------------------------------------


@pytest.mark.slow
def test_a_segment_warmed_up_as_far_as_the_largest_offset_gives_its_start_every_offset(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    weights_file: Path,
    make_image: Callable[..., np.ndarray],
    make_moving_frames: Callable[..., list],
) -> None:
    from nst_video.api import make_engine
    from nst_video.config import ComputeConfig, ImageConfig, Settings
    from nst_video.media import open_source, write_image
    from nst_video.pipeline import sweep

    frames = make_moving_frames(10, 48, 32)
    (tmp_path / "in").mkdir()
    for index, frame in enumerate(frames):
        write_image(tmp_path / "in" / f"f_{index:03d}.png", frame)
    video = VideoConfig(first_iterations=2, iterations=1, temporal_offsets=(1, 2, 4))
    settings = Settings(image=ImageConfig(size=32), compute=ComputeConfig("cpu"), video=video)
    engine = make_engine([make_image(40, 40, 3)], settings, weights_file)
    seen: dict[int, list[int]] = {}
    real = sweep.temporal_start

    def record(content: np.ndarray, earlier: list, *args: object) -> sweep.FrameStart:
        seen[len(seen)] = sorted(e.offset for e in earlier)
        return real(content, earlier, *args)

    monkeypatch.setattr(sweep, "temporal_start", record)
    segment = Segment(1, 6, 10, 4)  # frames 2-5 warm up, 6-9 are its own
    store = WorkDir(tmp_path / "work").segment_frames(segment)
    source = open_source(str(tmp_path / "in"))
    assert sweep.FirstPass(engine, video, source, store, segment.frames, 32).run() == 8
    by_frame = dict(zip(segment.frames, seen.values(), strict=True))
    # The segment starts afresh at frame 2 (nothing before its first frame), and by its first
    # own frame every offset reaches a frame it rendered itself.
    assert by_frame[2] == [] and by_frame[3] == [1] and by_frame[4] == [1, 2]
    assert all(by_frame[i] == [1, 2, 4] for i in range(segment.start, segment.stop))
