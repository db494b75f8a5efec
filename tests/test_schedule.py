"""Style schedules (--style-at): keyframe syntax, timestamps at exact rates, blend weights by
frame index computed by hand."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from nst_video.cli.presets import preset_text, read_preset
from nst_video.config import VIDEO, settings_from_flat
from nst_video.errors import OptionError
from nst_video.pipeline.styling import schedule_frames
from nst_video.video.schedule import (
    Keyframe,
    Schedule,
    frame_of,
    parse_keyframe,
    resolve,
    style_images,
)


def test_parse_frame_and_timestamp_forms() -> None:
    assert parse_keyframe("120:starry.jpg") == Keyframe("120", "starry.jpg")
    assert parse_keyframe("0:05.0:a b.jpg") == Keyframe("0:05.0", "a b.jpg")
    assert parse_keyframe("1:30:dir/x.png") == Keyframe("1:30", "dir/x.png")
    # No digits after the dot: not a timestamp, so frame 0 of a file named 05.jpg.
    assert parse_keyframe("0:05.jpg") == Keyframe("0", "05.jpg")


@pytest.mark.parametrize("text", ["starry.jpg", ":a.jpg", "12:", "-1:a.jpg", "1.5:a.jpg"])
def test_bad_keyframe_names_itself_and_the_valid_forms(text: str) -> None:
    with pytest.raises(OptionError) as err:
        parse_keyframe(text)
    assert str(err.value) == (
        f"--style-at {text!r} is not valid; give FRAME:STYLE (120:starry.jpg) or "
        "MM:SS.S:STYLE (0:05.0:starry.jpg)"
    )


def test_seconds_above_59_are_refused() -> None:
    with pytest.raises(OptionError, match=r"seconds must be below 60"):
        parse_keyframe("0:75:a.jpg")


def test_timestamps_use_the_exact_rate() -> None:
    ntsc = Fraction(30000, 1001)
    assert frame_of("0:05.0", ntsc) == 150  # 149.85 rounds to 150
    assert frame_of("1:00", ntsc) == 1798  # 1798.2
    assert frame_of("0:00.5", Fraction(15)) == 8  # 7.5: halves round up
    assert frame_of("0:02", Fraction(15)) == 30
    assert frame_of("42", ntsc) == 42


def test_weights_interpolate_linearly_over_the_whole_gap() -> None:
    schedule = resolve(
        [Keyframe("0", "a.jpg"), Keyframe("4", "b.jpg"), Keyframe("8", "a.jpg")], Fraction(24)
    )
    assert schedule == Schedule((0, 4, 8), (0, 1, 0), 2, None)
    by_hand = {
        0: (1.0, 0.0),
        1: (0.75, 0.25),
        2: (0.5, 0.5),
        3: (0.25, 0.75),
        4: (0.0, 1.0),
        6: (0.5, 0.5),
        8: (1.0, 0.0),
        100: (1.0, 0.0),
    }
    for index, weights in by_hand.items():
        assert schedule.weights(index) == weights, index


def test_transition_crossfades_in_the_last_frames_before_a_keyframe() -> None:
    schedule = Schedule((2, 10), (0, 1), 2, transition=4)
    assert schedule.weights(0) == (1.0, 0.0)  # before the first keyframe: its style
    assert schedule.weights(6) == (1.0, 0.0)
    assert schedule.weights(7) == (0.75, 0.25)
    assert schedule.weights(9) == (0.25, 0.75)
    assert schedule.weights(10) == (0.0, 1.0)
    cut = Schedule((0, 5), (0, 1), 2, transition=0)
    assert [cut.weights(i) for i in (4, 5)] == [(1.0, 0.0), (0.0, 1.0)]
    # Longer than the gap: the whole gap.
    assert Schedule((0, 2), (0, 1), 2, transition=9).weights(1) == (0.5, 0.5)


def test_three_styles_only_two_at_a_time() -> None:
    schedule = Schedule((0, 2, 4), (0, 1, 2), 3)
    assert schedule.weights(3) == (0.0, 0.5, 0.5)


def test_weights_depend_on_the_index_alone() -> None:
    schedule = Schedule((0, 30), (0, 1), 2, transition=10)
    forward = [schedule.weights(i) for i in range(40)]
    assert [schedule.weights(i) for i in reversed(range(40))] == forward[::-1]


def test_style_images_are_distinct_in_first_appearance_order() -> None:
    keys = [Keyframe("0", "m.jpg"), Keyframe("9", "s.jpg"), Keyframe("20", "m.jpg")]
    assert style_images(keys) == ["m.jpg", "s.jpg"]


def test_keyframes_out_of_order_or_at_one_frame_are_refused() -> None:
    keys = [Keyframe("0:01", "a.jpg"), Keyframe("15", "b.jpg")]
    with pytest.raises(OptionError) as err:
        resolve(keys, Fraction(15))
    assert str(err.value) == (
        "--style-at 15:b.jpg (frame 15) is not after --style-at 0:01:a.jpg (frame 15) at "
        "15 fps; give keyframes in increasing time, one per frame"
    )


def test_preview_frames_spread_from_the_first_keyframe_to_the_last() -> None:

    schedule = Schedule((10, 40, 100), (0, 1, 0), 2)
    assert schedule_frames(schedule, 449, 4) == [10, 40, 70, 100]
    assert schedule_frames(schedule, 449, 1) == [10]
    assert schedule_frames(schedule, 60, 3) == [10, 34, 59]  # the last keyframe is past the clip


def test_schedule_and_masks_round_trip_through_a_settings_file(tmp_path: Path) -> None:
    """--save-config writes them as TOML lists, --config reads them back as repeated flags
    (a comma inside a path stays in it)."""
    settings = settings_from_flat(
        command=VIDEO,
        style_at=("0:/a,b.jpg", "0:05.0:/c.jpg"),
        style_transition=3,
        style_masks=("/m/%03d.png",),
        keep_mask="/k.png",
    )
    path = tmp_path / "p.toml"
    path.write_text(preset_text(settings, VIDEO))
    values = read_preset(path, VIDEO)
    assert values["style_at"] == ["0:/a,b.jpg", "0:05.0:/c.jpg"]
    assert values["style_masks"] == ["/m/%03d.png"]
    assert (values["style_transition"], values["keep_mask"]) == (3, "/k.png")
