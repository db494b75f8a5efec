"""What an unset --size (ImageConfig.size None) means, for each kind of job."""

from __future__ import annotations

import pytest

from nst_video.config import (
    ComputeConfig,
    ImageConfig,
    OptimConfig,
    VideoConfig,
    check_segment_warmup,
    image_long_side,
    video_long_side,
)
from nst_video.errors import OptionError


def test_an_image_without_size_keeps_the_contents_long_side() -> None:
    assert image_long_side(None, 1000) == 1000
    assert image_long_side(None, 40) == 40
    assert image_long_side(64, 1000) == 64


def test_a_video_without_size_takes_its_inputs_long_side_at_most_512() -> None:
    assert video_long_side(None, 1920) == 512
    assert video_long_side(None, 320) == 320
    assert video_long_side(720, 1920) == 720  # a given --size is never capped


def test_settings_are_validated_on_construction_except_the_style_count() -> None:
    with pytest.raises(OptionError, match=r"^--crf must be in 0..63, got 99$"):
        VideoConfig(crf=99)
    with pytest.raises(OptionError, match=r"^unknown precision 'fp8'; valid: auto, fp32, tf32"):
        ComputeConfig(precision="fp8")
    with pytest.raises(OptionError, match=r"^history size must be >= 1, got 0$"):
        OptimConfig(history_size=0)
    # The number of styles is not known yet: the blend is checked with it.
    blend = ImageConfig(style_blend=(1.0,))
    with pytest.raises(OptionError, match=r"^--style-blend has 1 weight for 2 styles"):
        blend.validate(2)


@pytest.mark.parametrize(
    "offsets", [(), (2,), (0, 1), (1, 1), (1, 4, 2), (1, -2), (1, 65)], ids=str
)
def test_temporal_offsets_start_at_1_and_increase_up_to_64(offsets: tuple[int, ...]) -> None:
    text = ",".join(map(str, offsets)) or "(empty)"
    with pytest.raises(OptionError) as info:
        VideoConfig(temporal_offsets=offsets)
    assert str(info.value) == (
        f"--temporal-offsets {text} is not valid; give frame offsets that start at 1 and "
        "increase, up to 64, such as 1,2,4"
    )
    assert VideoConfig(temporal_offsets=(1, 2, 4, 64)).temporal_offsets == (1, 2, 4, 64)


def test_segment_warmup_must_cover_the_largest_offset() -> None:
    check_segment_warmup(VideoConfig(temporal_offsets=(1, 2, 8), segment_warmup=8))
    with pytest.raises(OptionError) as info:
        check_segment_warmup(VideoConfig(temporal_offsets=(1, 2, 8), segment_warmup=7))
    assert str(info.value) == (
        "--segment-warmup 7 is shorter than the largest --temporal-offsets 8: with --workers "
        "it must be at least 8"
    )
