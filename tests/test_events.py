"""Richer progress events: loss terms on Iteration and the image on FrameDone, filled only for a
callback that asks (no device-to-host copy otherwise); WORKDIR/latest.png after each frame."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_in_process
from torch import Tensor

from nst_video.config import OptimConfig
from nst_video.core import device
from nst_video.core.optimize import optimize
from nst_video.media import read_image, write_image
from nst_video.progress import IMAGE, TERMS, Event, FrameDone, Iteration, asking, wants


def quadratic(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """A loss with two named terms, neither 0 at the optimum (x = 0.25)."""
    a = ((x - 0.25) ** 2).mean() + 0.1
    b = 0.5 * a
    return a + b, {"content": a, "style": b}


REAL_TO_HOST = device.to_host


def run(callback: Callable[[Event], None], calls: list[int], monkeypatch: pytest.MonkeyPatch):
    real = REAL_TO_HOST

    def counted(*values: Tensor) -> list[float]:
        calls.append(len(values))
        return real(*values)

    monkeypatch.setattr(device, "to_host", counted)
    x = torch.full((1, 3, 8, 8), 0.75)
    return optimize(quadratic, x, 20, OptimConfig(log_every=5, tolerance=0.0), callback)


def test_iteration_terms_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    plain: list[Event] = []
    plain_calls: list[int] = []
    run(plain.append, plain_calls, monkeypatch)
    iterations = [e for e in plain if isinstance(e, Iteration)]
    assert iterations and all(e.terms is None for e in iterations)

    asked: list[Event] = []
    asked_calls: list[int] = []

    def record(event: Event) -> None:
        asked.append(event)

    run(asking(record, TERMS), asked_calls, monkeypatch)
    iterations = [e for e in asked if isinstance(e, Iteration)]
    # One copy of the two terms per event, and nothing else differs: unasked, none is made.
    assert len(asked_calls) == len(plain_calls) + len(iterations)
    assert sorted(asked_calls) == sorted(plain_calls + [2] * len(iterations))
    for event in iterations:
        assert event.terms is not None and set(event.terms) == {"content", "style"}
        # The best iterate's terms add up to the loss reported with them.
        assert event.terms["content"] + event.terms["style"] == pytest.approx(event.loss)


def test_asking_merges_what_the_wrapped_callback_wants() -> None:
    def inner(_: Event) -> None: ...

    def outer(_: Event) -> None: ...

    asking(inner, TERMS)
    asking(outer, IMAGE, like=inner)
    assert wants(outer, IMAGE) and wants(outer, TERMS)
    assert not wants(inner, IMAGE)
    assert not wants(print, TERMS)


def test_latest_png_is_input_beside_the_last_frame(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    make_moving_frames: Callable[..., list],
    make_image: Callable[..., np.ndarray],
    weights_file: Path,
) -> None:
    seq = tmp_path / "seq"
    seq.mkdir()
    frames = make_moving_frames(3, 48, 32)
    for index, frame in enumerate(frames):
        write_image(seq / f"img_{index:03d}.png", frame)
    style = tmp_path / "style.png"
    write_image(style, make_image(40, 40, 3))
    code, err = run_in_process(
        capsys, "video", str(seq), "--style", str(style), "-o", str(tmp_path / "out.mp4"),
        "--weights", str(weights_file), "--first-iterations", "2", "--iterations", "1",
        "--quiet", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    work = tmp_path / "out.mp4.nst-work"
    latest = read_image(work / "latest.png")
    assert latest.shape == (32, 96, 3)
    np.testing.assert_array_equal(latest[:, :48], frames[2])
    np.testing.assert_array_equal(latest[:, 48:], read_image(work / "frames" / "000002.png"))


def test_frame_done_carries_no_image_unless_asked() -> None:
    assert FrameDone(0, 1, 1, "content", 1, 0.1).image is None
