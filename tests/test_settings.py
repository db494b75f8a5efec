"""Settings from one source: flat keywords (settings_from_flat), per-command defaults, and the
option metadata every command's flags are built from."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from nst_video.config import (
    COMMANDS,
    IMAGE,
    PANELS,
    PREVIEW,
    VIDEO,
    Settings,
    cli_text,
    command_settings,
    defaults_for,
    flat_settings,
    settings_from_cli,
    settings_from_flat,
)
from nst_video.errors import OptionError


def test_flat_keywords_set_the_named_fields() -> None:
    settings = settings_from_flat(style_weight=5, iterations=200, pooling="avg")
    assert settings.loss.style_weight == 5.0 and isinstance(settings.loss.style_weight, float)
    assert settings.optim.iterations == 200
    assert settings.image.pooling == "avg"
    assert (
        replace(
            settings,
            loss=replace(settings.loss, style_weight=2.0),
            optim=replace(settings.optim, iterations=300),
            image=replace(settings.image, pooling="max"),
        )
        == Settings()
    )  # nothing else moved


def test_a_base_keeps_what_the_keywords_do_not_name() -> None:
    base = settings_from_flat(tv_weight=1)
    assert settings_from_flat(base, seed=7).loss.tv_weight == 1.0


def test_iterations_is_each_commands_own_budget() -> None:
    """image: the image's evaluations (optim.iterations); video: each warm-started frame's
    (video.iterations), while the first frame's is first_iterations."""
    video = settings_from_flat(command=VIDEO, iterations=40, first_iterations=90)
    assert (video.video.iterations, video.video.first_iterations) == (40, 90)
    assert video.optim.iterations == Settings().optim.iterations
    assert settings_from_flat(command=IMAGE, iterations=40).video == Settings().video


def test_an_unknown_keyword_is_named_with_the_valid_ones() -> None:
    with pytest.raises(OptionError) as caught:
        settings_from_flat(style_wieght=5)
    message = str(caught.value)
    assert message.startswith("unknown image setting 'style_wieght'; valid: model, ")
    assert "style_weight" in message and "first_iterations" not in message


def test_a_video_setting_is_unknown_to_image() -> None:
    with pytest.raises(OptionError, match="unknown image setting 'passes'"):
        settings_from_flat(passes=2)


@pytest.mark.parametrize(
    ("flat", "message"),
    [
        ({"style_weight": "x"}, "style_weight must be a number, got 'x'"),
        ({"seed": 1.5}, "seed must be a whole number, got 1.5"),
        ({"seed": True}, "seed must be a whole number, got True"),
        ({"preserve_colors": 1}, "preserve_colors must be true or false, got 1"),
        ({"style_blend": "1,x"}, "style_blend must be comma-separated numbers, got '1,x'"),
        ({"style_layers": [1, 2]}, "style_layers must be a list of texts, got [1, 2]"),
        ({"size": None}, None),  # None: allowed (the video's default)
        ({"style_weight": -1}, "style weight must be >= 0, got -1.0"),  # validated as usual
    ],
)
def test_wrong_values_name_the_keyword(flat: dict, message: str | None) -> None:
    if message is None:
        assert settings_from_flat(**flat).image.size is None
        return
    with pytest.raises(OptionError) as caught:
        settings_from_flat(**flat)
    assert str(caught.value) == message


def test_lists_and_rates_as_text_or_values() -> None:
    settings = settings_from_flat(
        command=VIDEO, style_layers="relu1_1, relu2_1", temporal_offsets=[1, 2], fps="29.97"
    )
    assert settings.loss.style_layers == ("relu1_1", "relu2_1")
    assert settings.video.temporal_offsets == (1, 2)
    assert settings.video.fps == Fraction(30000, 1001)
    assert settings_from_flat(command=VIDEO, fps=25).video.fps == Fraction(25)


def test_command_defaults() -> None:
    assert defaults_for(IMAGE) == Settings()
    assert defaults_for(VIDEO).image.size is None  # the input's, capped
    preview = defaults_for(PREVIEW)
    assert (preview.image.size, preview.optim.iterations) == (256, 100)


@pytest.mark.parametrize("command", COMMANDS)
def test_flat_settings_round_trip(command: str) -> None:
    changed = {"style_weight": 7.0, "style_blend": (0.25, 0.75), "seed": 3}
    if command == VIDEO:
        changed |= {"temporal_offsets": (1, 3), "fps": Fraction(24000, 1001), "audio": False}
    settings = settings_from_flat(command=command, **changed)
    assert settings_from_flat(command=command, **flat_settings(settings, command)) == settings
    as_text = {
        name: cli_text(setting, getattr(getattr(settings, setting.group), name))
        for name, setting in command_settings(command).items()
        if setting.cli
    }
    assert settings_from_cli(command, as_text) == settings


def test_no_audio_is_the_audio_setting_inverted() -> None:
    audio = command_settings(VIDEO)["audio"]
    assert audio.flag == "--no-audio"
    assert settings_from_cli(VIDEO, {"audio": True}).video.audio is False
    assert cli_text(audio, True) is False


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_a_known_box_and_valid_words(command: str) -> None:
    """Each setting's option metadata is complete, and its words are what validation takes:
    each one accepted, anything else refused."""
    for name, setting in command_settings(command).items():
        if setting.cli is None:
            continue
        assert setting.cli.panel in PANELS, name
        assert setting.help(command).endswith((".", ")")), name
        for word in setting.cli.choices or ():
            settings_from_flat(command=command, **{name: word})
        if setting.cli.choices:
            with pytest.raises(OptionError):
                settings_from_flat(command=command, **{name: "no-such-word"})


def test_flags_are_unique_per_command() -> None:
    for command in COMMANDS:
        flags = [s.flag for s in command_settings(command).values()]
        assert len(flags) == len(set(flags)), command


def test_style_loss_is_one_setting_from_every_source(capsys: pytest.CaptureFixture[str]) -> None:
    """--style-loss: the flag, the flat keyword and an old work directory's missing value."""
    from dataclasses import fields

    from cli_helpers import run_capturing

    from nst_video.config import LossConfig, absent_value

    for command in (IMAGE, VIDEO, PREVIEW):
        assert settings_from_cli(command, {"style_loss": "w2"}).loss.style_loss == "w2"
        assert defaults_for(command).loss.style_loss == "gram"
    assert settings_from_flat(style_loss="w2").loss.style_loss == "w2"
    with pytest.raises(OptionError) as caught:
        settings_from_flat(style_loss="w3")
    assert str(caught.value) == "unknown style loss 'w3'; valid: gram, w2"
    (field,) = (f for f in fields(LossConfig) if f.name == "style_loss")
    assert absent_value(field) == "gram"  # directories from before it rendered with Gram
    code, out, err = run_capturing(
        capsys, "image", "a.png", "-s", "b.png", "-o", "c.png", "--style-loss", "w3"
    )
    # As --pooling mux: a settings error (exit 1) before any file is read.
    assert (code, err) == (1, "nst-video: error: unknown style loss 'w3'; valid: gram, w2\n")


def test_temporal_precondition_is_a_video_option_older_work_directories_read_as_off() -> None:
    from dataclasses import fields

    from nst_video.config import OptimConfig, absent_value

    assert settings_from_cli(VIDEO, {"temporal_precondition": 3.0}).optim.temporal_precondition == 3
    assert defaults_for(VIDEO).optim.temporal_precondition == 10.0
    (field,) = (f for f in fields(OptimConfig) if f.name == "temporal_precondition")
    assert absent_value(field) == 0.0  # directories from before it rendered with plain L-BFGS
    with pytest.raises(OptionError) as caught:
        settings_from_flat(command=VIDEO, temporal_precondition=-1.0)
    assert str(caught.value) == "temporal precondition must be >= 0, got -1.0"
