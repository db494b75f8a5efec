"""Schedules and masks in renders: masks read in lockstep and checked at planning time, a
changed mask frame re-rendering its chain, per-frame targets by absolute index (segments), a
schedule's first frame equal to its first style's render, and the CLI's refusals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clip_inputs import moving_pattern

from nst_video.api import make_engine
from nst_video.config import ComputeConfig, ImageConfig, Settings, VideoConfig
from nst_video.core.engine import Engine
from nst_video.errors import InputError, ResumeError
from nst_video.media import VideoWriter, open_source, read_image, write_image
from nst_video.pipeline.distributed import render_segment_task
from nst_video.pipeline.job import render_video
from nst_video.pipeline.styling import GuidedSource, guided_source
from nst_video.pipeline.sweep import FirstPass
from nst_video.progress import Event, Message
from nst_video.video.schedule import Keyframe, resolve
from nst_video.video.segments import Segment
from nst_video.workdir.manifest import Job
from nst_video.workdir.store import FrameStore

COUNT, WIDTH, HEIGHT = 6, 48, 32
CPU = ComputeConfig(device="cpu")
QUICK = dict(first_iterations=4, iterations=2)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("styling")
    (root / "seq").mkdir()
    for index in range(COUNT):
        write_image(root / "seq" / f"f_{index:03d}.png", moving_pattern(index, WIDTH, HEIGHT))
    rng = np.random.default_rng(5)
    write_image(root / "a.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    write_image(root / "b.png", np.full((40, 40, 3), (200, 30, 30), np.uint8))
    return root


def write_masks(folder: Path, count: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    """`count` masks, the left part white, growing 2 px per frame."""
    folder.mkdir(parents=True)
    for index in range(count):
        mask = np.zeros((size[1], size[0], 3), np.uint8)
        mask[:, : size[0] // 2 + 2 * index] = 255
        write_image(folder / f"m_{index:03d}.png", mask)
    return folder


# --- masks as a second frame source -------------------------------------------------------------


def test_masks_are_read_in_lockstep_and_a_still_stands_for_every_frame(
    clip: Path, tmp_path: Path
) -> None:
    masks = write_masks(tmp_path / "masks", COUNT)
    still = write_masks(tmp_path / "still", 1) / "m_000.png"
    video = VideoConfig(style_masks=(str(masks), str(still)))
    source = guided_source(open_source(str(clip / "seq")), video, range(COUNT))
    assert isinstance(source, GuidedSource)
    frames = list(source.frames(3, 2))
    assert [f.shape for f in frames] == [(HEIGHT, WIDTH, 5)] * 2
    for index, frame in zip((3, 4), frames, strict=True):
        rgb, guide = source.split(index, frame)
        assert np.array_equal(rgb, moving_pattern(index, WIDTH, HEIGHT))
        assert guide is not None and guide.masks is not None and guide.weights is None
        moving, fixed = guide.masks
        assert moving[:, : 24 + 2 * index].min() == 1.0 and moving[:, 24 + 2 * index :].max() == 0
        assert fixed[:, :24].min() == 1.0 and fixed[:, 24:].max() == 0.0


def test_a_mask_of_the_same_aspect_is_resized_to_the_input(clip: Path, tmp_path: Path) -> None:
    masks = write_masks(tmp_path / "big", COUNT, (96, 64))
    source = guided_source(
        open_source(str(clip / "seq")), VideoConfig(keep_mask=str(masks)), range(COUNT)
    )
    (frame,) = source.frames(1, 1)
    assert frame.shape == (HEIGHT, WIDTH, 4)
    _, guide = source.split(1, frame)
    assert guide is not None and guide.keep is not None
    assert guide.keep[:, :25].min() == 1.0 and guide.keep[:, 27:].max() == 0.0


def test_a_mask_of_another_aspect_or_frame_count_is_refused_when_planning(
    clip: Path, tmp_path: Path
) -> None:
    source = open_source(str(clip / "seq"))
    square = write_masks(tmp_path / "square", COUNT, (32, 32))
    with pytest.raises(InputError) as err:
        guided_source(source, VideoConfig(keep_mask=str(square)), range(COUNT))
    assert str(err.value) == (
        f"--keep-mask {square} is 32x32 px, the input 48x32: a mask must have the input's "
        "aspect ratio (it is resized to the input's size)"
    )
    short = write_masks(tmp_path / "short", COUNT - 2)
    with pytest.raises(InputError) as err:
        guided_source(source, VideoConfig(style_masks=(str(short),)), range(COUNT))
    assert str(err.value) == (
        f"--style-mask {short} has 4 frames, the input 6: give one mask frame per input "
        "frame, or a single image for every frame"
    )


# --- renders ------------------------------------------------------------------------------------


def _factory(weights: Path) -> Callable[[Job], Engine]:
    return lambda job: make_engine(list(job.styles), job.settings, weights)


def _render(
    clip: Path, out: Path, weights: Path, styles: tuple[Path, ...], **video: object
) -> tuple[list[str], list[np.ndarray]]:
    settings = Settings(
        image=ImageConfig(size=32), compute=CPU, video=VideoConfig(**{**QUICK, **video})
    )
    job = Job(str(clip / "seq"), tuple(map(str, styles)), f"{out}/", str(weights), None, settings)
    messages: list[str] = []

    def callback(event: Event) -> None:
        if isinstance(event, Message):
            messages.append(event.text)

    render_video(job, out.with_name(out.name + ".work"), _factory(weights), callback=callback)
    return messages, [read_image(p) for p in sorted(out.glob("*.png"))]


def test_a_changed_mask_frame_renders_its_chain_again(
    clip: Path, tmp_path: Path, weights_file: Path
) -> None:
    masks = write_masks(tmp_path / "masks", COUNT)
    out = tmp_path / "out"
    _, before = _render(clip, out, weights_file, (clip / "a.png",), keep_mask=str(masks))
    work = FrameStore(out.with_name("out.work") / "frames")
    kept = {i: work.read_stats(i) for i in range(COUNT)}
    mask = read_image(masks / "m_003.png").copy()
    mask[:, :4] = 0
    write_image(masks / "m_003.png", mask)
    messages, after = _render(clip, out, weights_file, (clip / "a.png",), keep_mask=str(masks))
    assert "input changed since frames were rendered: rendering frames 3-5 again" in messages
    assert [work.read_stats(i) == kept[i] for i in range(COUNT)] == [True] * 3 + [False] * 3
    assert all(np.array_equal(before[i], after[i]) for i in range(3))


def test_a_keep_mask_changes_the_render(clip: Path, tmp_path: Path, weights_file: Path) -> None:
    styles = (clip / "a.png",)
    masks = write_masks(tmp_path / "masks", COUNT)
    _, plain = _render(clip, tmp_path / "plain", weights_file, styles)
    _, kept = _render(clip, tmp_path / "kept", weights_file, styles, keep_mask=str(masks))
    assert not np.array_equal(plain[0], kept[0])


def test_a_schedule_starts_as_its_first_style_alone(
    clip: Path, tmp_path: Path, weights_file: Path
) -> None:
    a, b = clip / "a.png", clip / "b.png"
    # Enough evaluations for the targets to move warm-started pixels.
    _, alone = _render(clip, tmp_path / "a", weights_file, (a,), iterations=6)
    schedule = (f"0:{a}", f"4:{b}")
    _, scheduled = _render(
        clip, tmp_path / "s", weights_file, (a, b), style_at=schedule, iterations=6
    )
    assert np.array_equal(alone[0], scheduled[0])  # weights (1, 0): style a's targets exactly
    assert not np.array_equal(alone[5], scheduled[5])


def _recording(
    engine: Engine, record: dict[int, tuple[object, np.ndarray]], keep: bool = False
) -> Callable:
    """engine.stylize with 1 evaluation, recording each call's weights and first mask (or
    with `keep`, its keep mask)."""

    def stylize(content, init, budget, temporal=None, callback=None, **kw):  # type: ignore[no-untyped-def]
        guide = kw["guide"]
        mask = guide.keep if keep else guide.masks[0]
        record[len(record)] = (guide.weights, mask.copy())
        return Engine.stylize(engine, content, init, 1, temporal, guide=guide)

    return stylize


def test_a_segment_gets_the_targets_of_its_absolute_frames(
    clip: Path, tmp_path: Path, weights_file: Path
) -> None:
    """What a Ray segment (or a resume) starting mid-clip renders frame i with is what a
    render from the first frame gives frame i: weights by index, the mask frame at i."""
    masks = open_source(str(write_masks(tmp_path / "masks", COUNT)))
    keys = [Keyframe("0", "a"), Keyframe("1", "b"), Keyframe("5", "a")]
    schedule = resolve(keys, Fraction(24), transition=2)
    settings = Settings(image=ImageConfig(size=32), compute=CPU, video=VideoConfig(**QUICK))
    seen: dict[str, dict[int, tuple[object, np.ndarray]]] = {}
    for name, frames in (("all", range(COUNT)), ("segment", range(3, COUNT))):
        engine = make_engine([read_image(clip / "a.png")] * 2, settings, weights_file)
        engine.stylize = _recording(engine, record := {})  # type: ignore[method-assign]
        source = GuidedSource(open_source(str(clip / "seq")), [masks, masks], None, schedule)
        store = FrameStore(tmp_path / name / "frames")
        FirstPass(engine, settings.video, source, store, frames, 32).run()
        seen[name] = {frames[k]: v for k, v in record.items()}
    assert [seen["all"][i][0] for i in range(COUNT)] == [
        (1.0, 0.0),
        (0.0, 1.0),
        (0.0, 1.0),
        (0.0, 1.0),
        (0.5, 0.5),
        (1.0, 0.0),
    ]
    for index in range(3, COUNT):
        (w_all, m_all), (w_seg, m_seg) = seen["all"][index], seen["segment"][index]
        assert w_all == w_seg
        assert np.array_equal(m_all, m_seg)
    assert not np.array_equal(seen["all"][3][1], seen["all"][4][1])


def test_a_ray_segment_task_renders_with_the_schedule_and_masks_of_its_frames(
    clip: Path, tmp_path: Path, weights_file: Path
) -> None:
    """render_segment_task (what each Ray worker runs, here called in-process) reads the masks
    and the schedule at its frames' absolute indices, as a render from frame 0 does."""
    masks = write_masks(tmp_path / "masks", COUNT)
    a, b = clip / "a.png", clip / "b.png"
    video = VideoConfig(**QUICK, style_at=(f"0:{a}", f"4:{b}"), keep_mask=str(masks))
    settings = Settings(image=ImageConfig(size=32), compute=CPU, video=video)
    job = Job(str(clip / "seq"), (str(a), str(b)), f"{tmp_path / 'out'}/", str(weights_file),
              None, settings)  # fmt: skip
    seen: dict[str, dict[int, tuple[object, np.ndarray]]] = {}

    def factory(record: dict[int, tuple[object, np.ndarray]]) -> Callable[[Job], Engine]:
        def make(job: Job) -> Engine:
            engine = make_engine(list(job.styles), job.settings, weights_file)
            engine.stylize = _recording(engine, record, keep=True)  # type: ignore[method-assign]
            return engine

        return make

    render_video(job, tmp_path / "one", factory(seen.setdefault("one", {})))
    segment = Segment(1, 3, COUNT, 1)  # frames 2-5, frame 2 its warm-up
    work = tmp_path / "segment"
    work.mkdir()
    render_segment_task(job.to_dict(), str(work), segment.as_dict(), 32,
                        factory(seen.setdefault("segment", {})))  # fmt: skip
    one = list(seen["one"].values())
    for position, index in enumerate(segment.frames):
        weights, mask = seen["segment"][position]
        t = min(index, 4) / 4  # 0:a to 4:b over the whole gap, then b
        assert weights == one[index][0] == (1 - t, t)
        assert np.array_equal(mask, one[index][1])


def test_the_schedule_and_masks_are_in_the_fingerprint(
    clip: Path, tmp_path: Path, weights_file: Path
) -> None:
    a, b = clip / "a.png", clip / "b.png"
    masks = write_masks(tmp_path / "masks", COUNT)
    video = VideoConfig(**QUICK, frames=2, style_at=(f"0:{a}", f"4:{b}"), keep_mask=str(masks))
    settings = Settings(image=ImageConfig(size=32), compute=CPU, video=video)
    job = Job(str(clip / "seq"), (str(a), str(b)), f"{tmp_path / 'out'}/", str(weights_file),
              None, settings)  # fmt: skip
    work = tmp_path / "work"
    render_video(job, work, _factory(weights_file))
    changes = {
        r"--style-transition \(none\) -> 2;": {"style_transition": 2},
        r"--style-at 0:/\S+ -> 0:/\S+;": {"style_at": (f"0:{a}", f"5:{b}")},
        r"--keep-mask /\S+ -> \(none\);": {"keep_mask": None},
    }
    for named, change in changes.items():
        other = replace(job, settings=replace(settings, video=replace(video, **change)))
        with pytest.raises(ResumeError, match=named):
            render_video(other, work, _factory(weights_file))


def test_a_video_mask_is_read_in_lockstep(clip: Path, tmp_path: Path) -> None:
    masks = write_masks(tmp_path / "masks", COUNT)
    video_mask = tmp_path / "mask.mkv"
    with VideoWriter(video_mask, (WIDTH, HEIGHT), Fraction(24), codec="ffv1", pix_fmt="gbrp") as w:
        for path in sorted(masks.iterdir()):
            w.write(read_image(path))
    source = guided_source(
        open_source(str(clip / "seq")), VideoConfig(keep_mask=str(video_mask)), range(COUNT)
    )
    for index, frame in zip((2, 3, 4), source.frames(2, 3), strict=True):
        _, guide = source.split(index, frame)  # type: ignore[attr-defined]
        edge = WIDTH // 2 + 2 * index
        assert guide.keep[:, :edge].min() == 1.0 and guide.keep[:, edge:].max() == 0.0
