"""Unit tests of the work directory: atomic writes, frame validity, fingerprints, job round trip."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nst_video.config import (
    ComputeConfig,
    ImageConfig,
    LossConfig,
    OptimConfig,
    Settings,
    VideoConfig,
)
from nst_video.errors import OutputError, ResumeError
from nst_video.media.files import atomic_write_bytes, is_temporary, temporary_name
from nst_video.workdir.manifest import (
    FORMAT_VERSION,
    Job,
    Manifest,
    differing,
    fingerprint,
    result_hash,
    result_settings,
)
from nst_video.workdir.store import WorkDir


def test_atomic_write_leaves_only_the_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.bin"]


def test_atomic_write_fsyncs_the_file_then_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    atomic_write_bytes(tmp_path / "data.bin", b"x")
    assert synced == ["file", "dir"]


@pytest.mark.parametrize("write", ["bytes", "manifest", "stats", "image"])
def test_written_files_get_the_umask_mode_like_any_file(tmp_path: Path, write: str) -> None:
    old = os.umask(0o022)
    try:
        work = WorkDir(tmp_path / "work")
        if write == "bytes":
            atomic_write_bytes(tmp_path / "data.bin", b"x")
            path = tmp_path / "data.bin"
        elif write == "manifest":
            work.write_manifest(
                Manifest(Job("in.mp4", (), "out.mp4", None, None, Settings()), {}, "")
            )
            path = work.manifest_path
        else:
            work.write_manifest(
                Manifest(Job("in.mp4", (), "out.mp4", None, None, Settings()), {}, "")
            )
            work.frames.save_frame(0, np.zeros((4, 4, 3), np.uint8), {"frame": 0})
            path = work.frames.stats_path(0) if write == "stats" else work.frames.frame_path(0)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_atomic_write_failure_keeps_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"old")

    def no_space(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OutputError) as info:
        atomic_write_bytes(target, b"new")
    assert str(info.value) == (
        f"disk full while writing {target}; free space and run the command again"
    )
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_atomic_write_interrupted_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "data.bin", b"x")
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_name_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=r"^cannot write .*/file/x\.bin: Not a directory$"):
        atomic_write_bytes(blocker / "x.bin", b"")


@pytest.fixture
def work(tmp_path: Path) -> WorkDir:
    work = WorkDir(tmp_path / "work")
    work.frames_dir.mkdir(parents=True)
    image = np.arange(12 * 16 * 3, dtype=np.uint8).reshape(12, 16, 3)
    for index in range(3):
        work.frames.save_frame(index, image + index, {"frame": index, "seconds": 0.5})
    return work


def test_saved_frames_are_finished_and_load_back(work: WorkDir) -> None:
    assert work.frames.done_frames(range(5)) == [0, 1, 2]
    frame = work.frames.load_frame(1)
    assert frame is not None
    assert np.array_equal(frame, np.arange(12 * 16 * 3, dtype=np.uint8).reshape(12, 16, 3) + 1)
    png = work.frames.frame_path(2).read_bytes()
    digest = hashlib.blake2b(png, digest_size=16).hexdigest()
    assert work.frames.read_stats(2) == {"frame": 2, "seconds": 0.5, "png": f"{len(png)}:{digest}"}


def test_truncated_png_is_not_a_frame(work: WorkDir) -> None:
    path = work.frames.frame_path(1)
    path.write_bytes(path.read_bytes()[:-1])
    assert not work.frames.has_frame(1)
    assert work.frames.load_frame(1) is None
    assert work.frames.done_frames(range(3)) == [0, 2]
    path.write_bytes(b"")
    assert not work.frames.has_frame(1)


def test_damaged_png_with_intact_end_is_dropped(work: WorkDir) -> None:
    path = work.frames.frame_path(2)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert work.frames.has_frame(2)  # looks complete...
    assert not work.frames.frame_intact(2)  # ...but its CRC says otherwise
    assert work.frames.load_frame(2) is None
    assert work.frames.drop_damaged(range(3)) == [2]
    assert work.frames.done_frames(range(3)) == [0, 1]


def test_remove_temporaries_and_discard(work: WorkDir) -> None:
    (work.frames_dir / ".000003.png.nst-412-ab12cd34.tmp.png").write_bytes(b"partial")
    (work.path / ".manifest.json.nst-7-0123abcd.tmp.json").write_bytes(b"partial")
    # Not ours, whatever they contain: only temporary_name's exact shape is.
    users = [".backup.tmp", ".download.partial", ".manifest.json.nst-7-0123abcd.tmp.txt",
             ".manifest.json.nst-7-0123ABCD.tmp.json", ".000003.png.ab12cd34.tmp.png"]  # fmt: skip
    for name in users:
        (work.frames_dir / name).write_bytes(b"mine")
    work.remove_temporaries()
    assert sorted(p.name for p in work.frames_dir.iterdir() if p.name.startswith(".")) == sorted(
        users
    )
    assert not list(work.path.glob(".*"))
    assert work.discard_frames() == 3
    assert sorted(p.name for p in work.frames_dir.iterdir()) == sorted(users)


def test_temporary_names_match_their_exact_pattern_only(tmp_path: Path) -> None:
    made = temporary_name(tmp_path / "out.mp4", "partial")
    assert re.fullmatch(r"\.out\.mp4\.nst-\d+-[0-9a-f]{8}\.partial\.mp4", made.name)
    assert is_temporary(made.name) and is_temporary(made.name, of="out.mp4")
    assert not is_temporary(made.name, of="other.mp4")
    assert is_temporary(temporary_name(tmp_path / "lock").name, of="lock")
    others = [".backup.tmp", ".download.partial", ".a.tmp.png", ".x.nst-1-abcdefgh.tmp",
              ".out.mp4.nst-1-0123abcd.partial.mkv", "out.mp4.nst-1-0123abcd.partial.mp4",
              ".out.mp4.nst-1-0123abc.partial.mp4", ".out.mp4.nst--0123abcd.tmp.mp4"]  # fmt: skip
    for name in others:
        assert not is_temporary(name), name


def test_differing_names_each_change() -> None:
    stored = {"settings": {"style_weight": 30.0, "size": 32, "layers": ["a"]}, "weights": "x"}
    new = {"settings": {"style_weight": 5.0, "size": 32, "layers": ["a", "b"]}, "weights": "x"}
    assert differing(stored, new) == [
        'settings.layers (["a"] -> ["a", "b"])',
        "settings.style_weight (30.0 -> 5.0)",
    ]
    assert differing(stored, stored) == []
    assert differing({"a": 1}, {"b": 2}) == ["a (1 -> null)", "b (null -> 2)"]
    long_old = {"input": "/very/long/path/that/goes/on/and/on/to/clip.mp4"}
    assert differing(long_old, {"input": "b.mp4"}) == [
        'input ("/very/long/path...lip.mp4" -> "b.mp4")'
    ]


def test_result_settings_leave_out_encoding_and_runtime_options() -> None:
    base = result_settings(Settings())
    encoding_only = Settings(video=replace(VideoConfig(), crf=30, codec="libx265", audio=False))
    assert result_settings(encoding_only) == base
    runtime_only = Settings(
        compute=ComputeConfig(device="cpu"),
        optim=OptimConfig(log_every=3),
        video=VideoConfig(frames=5),
    )
    assert result_settings(runtime_only) == base
    assert "crf" not in base["video"] and "device" not in base["compute"]
    assert "frames" not in base["video"] and "log_every" not in base["optim"]
    assert (
        result_settings(Settings(loss=LossConfig(style_weight=5.0)))["loss"]["style_weight"] == 5.0
    )
    # The network changes every frame, so it is part of the fingerprint.
    assert base["loss"]["model"] == "vgg19-caffe-q8"
    assert result_settings(Settings(loss=LossConfig(model="vgg16")))["loss"]["model"] == "vgg16"
    # bf16 and the L-BFGS history change the pixels.
    assert base["compute"]["precision"] == "auto" and base["optim"]["history_size"] == 50


def test_a_video_fingerprint_holds_the_settings_a_video_reads() -> None:
    """video.iterations and video.init are a video's budget and start; optim.iterations and
    image.init (an image's) are never read by a video render, so they are not in its
    fingerprint (a video job used to store a copy of first_iterations there)."""
    base = Settings()
    unread = Settings(optim=OptimConfig(iterations=999), image=ImageConfig(init="noise"))
    assert result_settings(unread) == result_settings(base)
    assert "iterations" not in result_settings(base)["optim"]
    assert "init" not in result_settings(base)["image"]
    changed = Settings(video=VideoConfig(iterations=7, init="content"))
    assert result_settings(changed)["video"]["iterations"] == 7
    assert differing(
        {"settings": result_settings(base)}, {"settings": result_settings(changed)}
    ) == ["--init flow -> content", "--iterations 30 -> 7"]


@pytest.mark.parametrize(
    ("size", "input_size", "stored"),
    [
        (None, [1920, 1080], 0),  # no --size: the input's long side capped at 512, one level
        (1023, [1920, 1080], 0),  # half of 1023 px is under 512: one level
        (1024, [1920, 1080], 512),  # levels 512, 1024
        (2000, [640, 480], 512),  # --size, not the input, decides
    ],
)
def test_the_fingerprint_keeps_coarse_start_only_where_a_frame_has_a_coarse_level(
    size: int | None, input_size: list[int], stored: int
) -> None:
    """Frames too small for a coarse level render the same under any --coarse-start, so its
    value (or a change of its default) must not refuse their work directory."""
    settings = Settings(image=ImageConfig(size=size, coarse_start=512))
    job = Job("in.mp4", (), "out.mp4", None, None, settings)
    info = {"path": "in.mp4", "size": input_size, "fps": "25"}
    assert fingerprint(job, info, "w")["settings"]["image"]["coarse_start"] == stored
    off_settings = Settings(image=ImageConfig(size=size, coarse_start=0))
    off = Job("in.mp4", (), "out.mp4", None, None, off_settings)
    changes = differing(fingerprint(off, info, "w"), fingerprint(job, info, "w"))
    assert changes == ([] if stored == 0 else ["--coarse-start 0 -> 512"])


def test_a_refused_setting_is_named_by_its_option() -> None:
    base = {"settings": result_settings(Settings()), "weights": "a"}
    changed = Settings(
        loss=LossConfig(style_weight=5.0, style_layers=("relu1_1",), range_weight=10.0),
        image=ImageConfig(preserve_colors=True),
        video=VideoConfig(temporal_offsets=(1,), scene_cut_threshold=0.25),
    )
    assert differing(base, {"settings": result_settings(changed), "weights": "b"}) == [
        "--preserve-colors false -> true",
        "--range-weight 1000 -> 10",  # no option of its own: named as one would be
        "--style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 -> relu1_1",
        "--style-weight 2 -> 5",
        "--scene-cut-threshold 0.2 -> 0.25",
        "--temporal-offsets 1,2,4 -> 1",
        'weights ("a" -> "b")',
    ]


def test_every_setting_has_a_known_role() -> None:
    from nst_video.config import ROLES, setting_fields

    roles = {f"{group}.{name}": role for group, name, _, role in setting_fields(Settings())}
    assert set(roles.values()) <= set(ROLES)
    assert {path for path, role in roles.items() if role != "result"} == {
        "optim.log_every", "compute.device", "video.frames", "video.crf", "video.codec",
        "video.audio",
    }  # fmt: skip


def test_job_round_trips_through_the_manifest() -> None:
    settings = Settings(
        loss=LossConfig(
            model="vgg16-caffe",
            content_layers=("relu3_2",),
            style_layers=("relu1_1", "relu2_1"),
            style_layer_weights=(0.25, 0.75),
            style_weight=12.5,
        ),
        optim=OptimConfig(optimizer="adam", iterations=7, history_size=5),
        image=ImageConfig(size=48, style_blend=(0.7, 0.3), pooling="max", preserve_colors=True),
        video=VideoConfig(
            first_iterations=9,
            iterations=4,
            flow="farneback",
            fps=Fraction(24000, 1001),
            start=2,
            frames=5,
            codec="libx265",
            audio=False,
        ),
    )
    job = Job("in put.mkv", ("a.png", "b.jpg"), "out/", "w.pth", "r.jsonl", settings)
    stored = json.loads(json.dumps(job.to_dict()))  # exactly what the manifest holds
    assert stored["settings"]["video"]["fps"] == "24000/1001"
    again = Job.from_dict(stored)
    assert again == job
    assert isinstance(again.settings.video.fps, Fraction)
    assert isinstance(again.settings.loss.style_layers, tuple)


def test_default_job_round_trips() -> None:
    job = Job("i.mp4", ("s.png",), "o.mp4", None, None, Settings())
    assert Job.from_dict(json.loads(json.dumps(job.to_dict()))) == job


def test_manifest_keeps_the_resolved_precision_and_refuses_a_bad_one() -> None:
    job = Job("i.mp4", ("s.png",), "o.mp4", None, None, Settings())
    manifest = Manifest(job, {"settings": {}}, "h", precision="bf16")
    stored = json.loads(json.dumps(manifest.to_dict()))
    assert stored["precision"] == "bf16" and stored["format"] == FORMAT_VERSION == 5
    again = Manifest.from_dict(stored)
    assert again.precision == "bf16" and again.job.settings.compute.precision == "auto"
    assert Manifest.from_dict({**stored, "precision": None}).precision is None
    with pytest.raises(
        ResumeError, match=r"the manifest is damaged \(ValueError: precision 'fp8'\)"
    ):
        Manifest.from_dict({**stored, "precision": "fp8"})


def test_result_hash_changes_with_any_result_setting_and_only_then() -> None:

    base = {"settings": {"style_weight": 30.0, "iterations": 100}, "weights": "sha256:ab"}
    same = {"weights": "sha256:ab", "settings": {"iterations": 100, "style_weight": 30.0}}
    changed = {"settings": {"style_weight": 5.0, "iterations": 100}, "weights": "sha256:ab"}
    assert result_hash(base) == result_hash(same)
    assert result_hash(base) != result_hash(changed)
    assert len(result_hash(base)) == 16
