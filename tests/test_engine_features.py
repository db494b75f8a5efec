"""Multi-scale, precision and backend settings of the engine; the frame prefetcher."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace

import numpy as np
import pytest
import torch

from nst_video.config import ComputeConfig, Settings
from nst_video.core import device as core_device
from nst_video.core.device import native_bf16, resolve_precision, usable_cpus
from nst_video.core.engine import Engine
from nst_video.errors import OptionError
from nst_video.pipeline.background import prefetch


def _engine(
    state_dict: Mapping[str, torch.Tensor], precision: str = "auto", **image: object
) -> Engine:
    base = Settings()
    optim = replace(base.optim, tolerance=0.0)
    compute = ComputeConfig(device="cpu", precision=precision)
    settings = replace(base, optim=optim, image=replace(base.image, **image), compute=compute)
    style = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return Engine(state_dict, [style], settings, torch.device("cpu"))


@pytest.fixture
def content() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, (32, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("long_side", "start", "step", "sides"),
    [
        (512, 256, 2.0, [256, 512]),
        (511, 256, 2.0, [511]),  # 255.5 < 256: one level
        (600, 256, 2.0, [300, 600]),
        (1024, 256, 2.0, [256, 512, 1024]),
        (512, 256, 2**0.5, [256, 362, 512]),  # 512 / 1.4142 = 362.04
        (400, 256, 2**0.5, [283, 400]),  # 282.8
        (512, 0, 2.0, [512]),  # 0: single scale
        (200, 256, 2.0, [200]),
    ],
)
def test_coarse_to_fine_levels_by_hand(long_side, start, step, sides):
    from nst_video.config import ImageConfig
    from nst_video.video.levels import level_long_sides

    image = ImageConfig(coarse_start=start, coarse_step=step)
    assert level_long_sides(long_side, image) == sides


@pytest.mark.parametrize(
    ("long_side", "sides"),
    [
        (512, [512]),  # the default --size: single scale
        (1023, [1023]),
        (1024, [512, 1024]),
        (1920, [960, 1920]),
        (4096, [512, 1024, 2048, 4096]),
    ],
)
def test_the_default_levels_start_at_half_size_from_1024_px(long_side, sides):
    from nst_video.config import ImageConfig
    from nst_video.video.levels import level_long_sides

    assert level_long_sides(long_side, ImageConfig()) == sides


@pytest.mark.parametrize(
    ("budget", "levels", "share", "split"),
    [
        (300, 2, 1 / 3, [200, 100]),
        (300, 3, 0.3, [105, 105, 90]),
        (10, 3, 0.3, [4, 3, 3]),  # 7 left for 2 levels: 4 + 3
        (1, 3, 0.3, [0, 0, 1]),  # the full size always gets an evaluation
        (7, 1, 0.3, [7]),
    ],
)
def test_budget_split_sums_to_the_total(budget, levels, share, split):
    from nst_video.core.engine import split_budget

    assert split_budget(budget, levels, share) == split
    assert sum(split) == budget


def test_coarse_to_fine_runs_each_level_with_its_share(state_dict, content):
    engine = _engine(state_dict, coarse_start=24, fine_share=0.5)
    sizes: list[tuple[int, ...]] = []
    once = engine._stylize_once

    def spy(small, start, budget, *rest, **kw):
        sizes.append((small.shape[:2], start.shape[:2], budget))
        return once(small, start, budget, *rest, **kw)

    engine._stylize_once = spy  # type: ignore[method-assign]
    done = engine.stylize(content, content, budget=6)
    # Half size (24x16 from 32x48... long side 24) gets 3, the full size the other 3.
    assert sizes == [((16, 24), (16, 24), 3), ((32, 48), (32, 48), 3)]
    assert done.optimization.evaluations == 6
    assert done.image.shape == content.shape
    assert set(engine._targets) == {24, 48}  # style targets for each level's size


def test_progress_counts_over_the_coarse_to_fine_levels(state_dict, content):
    from nst_video.progress import Iteration

    engine = _engine(state_dict, coarse_start=24, fine_share=0.5)
    engine.optim = replace(engine.optim, log_every=1)
    events: list[Iteration] = []
    engine.stylize(content, content, budget=6, callback=events.append)
    # 3 evaluations at 24 px, then 3 at 48 px: one count of 6, not 1-3 twice.
    seen = [(e.evaluation, e.budget, e.level, e.levels, e.side) for e in events]
    assert seen == [(n, 6, 0, 2, 24) for n in (1, 2, 3)] + [(n, 6, 1, 2, 48) for n in (4, 5, 6)]


@pytest.mark.slow
def test_coarse_to_fine_is_skipped_for_frames_with_a_temporal_target(state_dict, content):
    from nst_video.core.engine import Temporal

    engine = _engine(state_dict, coarse_start=24)
    temporal = Temporal(content, np.ones(content.shape[:2], np.float32))
    done = engine.stylize(content, content, budget=4, temporal=temporal)
    assert done.optimization.evaluations == 4
    assert set(engine._targets) == {48}
    engine.stylize(content, content, budget=4, refine=True)
    assert set(engine._targets) == {48}


def test_bf16_autocast_stays_close_to_fp32(state_dict, content):
    fp32 = _engine(state_dict, precision="fp32")
    bf16 = _engine(state_dict, precision="bf16")
    a = fp32.measure(content, content[::-1].copy())
    b = bf16.measure(content, content[::-1].copy())
    assert bf16.bf16 and not fp32.bf16
    for term in ("content", "style"):
        assert b[term] == pytest.approx(a[term], rel=0.1)
    assert b["content"] != a["content"]  # the bf16 path really ran


def test_bad_precision_and_coarse_start_are_refused():
    from nst_video.config import ComputeConfig, ImageConfig

    with pytest.raises(OptionError, match="unknown precision 'fp8'; valid: auto, fp32, tf32, bf16"):
        ComputeConfig(precision="fp8").validate()
    with pytest.raises(
        OptionError, match=r"--coarse-start must be >= 0 \(0: single scale\), got -1"
    ):
        ImageConfig(coarse_start=-1).validate(1)


def test_usable_cpus_is_positive_and_at_most_the_affinity():
    import os

    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))


def test_prefetch_yields_everything_in_order():
    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))


def test_prefetch_reraises_the_producer_error_in_the_consumer():
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("decoder broke")

    out = []
    with pytest.raises(ValueError, match="decoder broke"):
        for item in prefetch(items()):
            out.append(item)
    assert out == [1]


def test_prefetch_stops_its_thread_and_closes_the_source_when_abandoned():
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            yield from range(10_000)
        finally:
            closed.set()

    stream = prefetch(items(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert closed.wait(5)
    assert not any(t.name == "nst-prefetch" and t.is_alive() for t in threading.enumerate())


def test_prefetch_closes_the_source_even_after_giving_up_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The producer is busy on a slow item (a long optical flow) when the consumer stops and
    stops waiting: the source is still closed, by the producer, once that item is done."""
    from nst_video.pipeline import background

    monkeypatch.setattr(background, "JOIN_TIMEOUT", 0.01)
    closed = threading.Event()
    busy = threading.Event()

    def items() -> Iterator[int]:
        try:
            yield 0
            busy.set()
            time.sleep(0.3)  # the consumer gives up waiting during this
            yield 1
        finally:
            closed.set()

    source = items()  # still referenced, as a sweep holds its source: no GC closes it
    stream = prefetch(source, depth=1)
    assert next(stream) == 0
    assert busy.wait(5)
    stream.close()
    assert not closed.is_set()  # still busy: the wait ended first
    assert closed.wait(5)


@pytest.mark.parametrize(
    ("capabilities", "native"),
    [
        ({"avx512_f": True, "avx512_bw": True, "avx512_bf16": False, "amx_bf16": False}, False),
        ({"avx512_f": True, "avx512_bf16": True}, True),  # Cooper Lake, Zen 4
        ({"amx_tile": True, "amx_bf16": True, "avx512_bf16": False}, True),  # AMX alone
        ({"amx_tile": True, "amx_int8": True}, False),  # AMX without its bf16 unit
        ({"architecture": "arm64", "bf16": True}, False),  # another ISA's flag is not these
        ({}, False),
    ],
)
def test_native_bf16_reads_the_cpu_flags(capabilities: dict, native: bool) -> None:
    assert native_bf16(capabilities) is native


@pytest.mark.parametrize(
    ("device", "native", "resolved"),
    [
        ("cpu", True, "bf16"),  # bf16 units: within fp32's drift at half the time (speed.md)
        ("cpu", False, "fp32"),
        ("cuda", True, "tf32"),
        ("mps", True, "fp32"),
    ],
)
def test_auto_precision_per_device_and_cpu(
    monkeypatch: pytest.MonkeyPatch, device: str, native: bool, resolved: str
) -> None:
    monkeypatch.setattr(core_device, "native_bf16", lambda: native)
    assert resolve_precision("auto", torch.device(device)) == resolved
    for explicit in ("fp32", "tf32", "bf16"):  # an explicit choice is never rewritten
        assert resolve_precision(explicit, torch.device(device)) == explicit


def test_engine_runs_in_the_resolved_precision(monkeypatch: pytest.MonkeyPatch, state_dict) -> None:
    monkeypatch.setattr(core_device, "native_bf16", lambda: True)
    assert _engine(state_dict).precision == "bf16" and _engine(state_dict).bf16
    monkeypatch.setattr(core_device, "native_bf16", lambda: False)
    assert _engine(state_dict).precision == "fp32" and not _engine(state_dict).bf16
    engine = _engine(state_dict, precision="bf16")
    assert engine.precision == "bf16" and engine.bf16


def test_margin_optimizes_a_mirrored_canvas_and_crops_it(state_dict, content):
    from nst_video.core.engine import Temporal

    engine = _engine(state_dict, margin=4)
    seen = []
    loss_for = engine.loss_for

    def spy(canvas, temporal=None, long_side=None, guide=None):
        seen.append((canvas, temporal, long_side))
        return loss_for(canvas, temporal, long_side, guide)

    engine.loss_for = spy  # type: ignore[method-assign]
    mask = np.ones(content.shape[:2], np.float32)
    done = engine.stylize(content, content, 2, temporal=Temporal(content, mask))
    canvas, temporal, long_side = seen[0]
    assert done.image.shape == content.shape  # the margin is cropped away
    assert canvas.shape == (40, 56, 3) and long_side == 48  # style scale: the frame's
    np.testing.assert_array_equal(canvas[4:-4, 4:-4], content)
    # Mirrored without repeating the edge: canvas column 3 is content column 1 (= canvas 5).
    np.testing.assert_array_equal(canvas[4:-4, 3], content[:, 1])
    np.testing.assert_array_equal(canvas[0, 4:-4], content[4])
    assert temporal.mask.shape == (40, 56) and temporal.mask[4:-4, 4:-4].min() == 1
    assert temporal.mask.sum() == mask.sum()  # no temporal term in the margin
    assert set(engine._targets) == {48}


def test_margin_is_at_most_the_short_side_less_one(state_dict):
    engine = _engine(state_dict, margin=16)
    small = np.random.default_rng(3).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    assert engine.stylize(small, small, 1).image.shape == small.shape


@pytest.mark.parametrize(
    ("strength", "temporal_weight", "expected"), [(10.0, 300.0, True), (0.0, 300.0, False),
                                                  (10.0, 0.0, False)],
)  # fmt: skip
def test_warm_started_frames_precondition_by_the_temporal_mask(
    monkeypatch: pytest.MonkeyPatch, state_dict, content, strength, temporal_weight, expected
) -> None:
    from nst_video.core import engine as engine_module
    from nst_video.core.engine import Temporal

    engine = _engine(state_dict, margin=4)
    engine.optim = replace(engine.optim, temporal_precondition=strength)
    engine.loss = replace(engine.loss, temporal_weight=temporal_weight)
    scales = []
    real = engine_module.optimize

    def spy(loss_fn, x, budget, config, callback, scale=None):
        scales.append(scale)
        return real(loss_fn, x, budget, config, callback, scale)

    monkeypatch.setattr(engine_module, "optimize", spy)
    mask = np.zeros(content.shape[:2], np.float32)
    mask[:, :20] = 1.0
    engine.stylize(content, content, 2, temporal=Temporal(content, mask))
    engine.stylize(content, content, 2)  # a first frame: never preconditioned
    assert scales[1] is None
    if not expected:
        assert scales[0] is None
        return
    scale = scales[0]
    assert scale.shape == (1, 3, 40, 56)  # the canvas, margin included
    held = 1.0 / np.sqrt(1.0 + strength)
    np.testing.assert_allclose(scale[0, :, 4:-4, 4:24].numpy(), held, rtol=1e-6)
    np.testing.assert_allclose(scale[0, :, 4:-4, 24:-4].numpy(), 1.0)  # new pixels
    np.testing.assert_allclose(scale[0, :, :4].numpy(), 1.0)  # the margin has no temporal term


@pytest.mark.parametrize(
    ("start", "step", "first"),
    [(512, 2.0, 1024), (256, 2**0.5, 363), (24, 2.0, 48), (100, 3.0, 300), (0, 2.0, None)],
)
def test_the_first_long_side_with_a_coarse_level(start, step, first):
    """The settings line's 'coarse-to-fine from N px': N has two levels, N - 1 one."""
    from nst_video.config import ImageConfig
    from nst_video.video.levels import first_coarse_long_side, level_long_sides

    image = ImageConfig(coarse_start=start, coarse_step=step)
    assert first_coarse_long_side(image) == first
    if first is not None:
        assert len(level_long_sides(first, image)) == 2
        assert len(level_long_sides(first - 1, image)) == 1
