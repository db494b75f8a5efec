"""What an unset --size (ImageConfig.size None) means, for each kind of job."""

from __future__ import annotations

from nst_video.config import IMAGE_SIZE, ImageConfig, image_long_side, video_long_side


def test_an_image_without_size_keeps_the_contents_long_side() -> None:
    assert image_long_side(None, 1000) == 1000
    assert image_long_side(None, 40) == 40
    assert image_long_side(64, 1000) == 64


def test_a_video_without_size_takes_its_inputs_long_side_at_most_512() -> None:
    assert video_long_side(None, 1920) == 512
    assert video_long_side(None, 320) == 320
    assert video_long_side(720, 1920) == 720  # a given --size is never capped


def test_the_image_default_is_the_named_constant() -> None:
    assert ImageConfig().size == IMAGE_SIZE == 512
