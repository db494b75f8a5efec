"""Data safety of paths (issue 21): which files nst-video may replace or delete, and where.

A directory without our manifest is never ours, whatever its files are called; outputs are
regular files or nothing; a batch never overwrites its own results; --restart keeps delivered
frames it does not replace; nothing reaches outside the work directory through a link or a
tampered manifest; an empty path is a usage error, not the current directory.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_in_process

from nst_video.config import Settings
from nst_video.errors import OutputError
from nst_video.media import files, write_image
from nst_video.media.files import refuse_existing, temporary_name
from nst_video.workdir.manifest import Job, Manifest
from nst_video.workdir.store import WorkDir

FAST = ["--first-iterations", "2", "--iterations", "1", "--quiet", "--device", "cpu"]
FRAMES = 6


@pytest.fixture
def style(tmp_path: Path, make_image: Callable[..., np.ndarray]) -> Path:
    path = tmp_path / "style.png"
    write_image(path, make_image(40, 40, 3))
    return path


@pytest.fixture
def sequence(tmp_path: Path, make_moving_frames: Callable[..., list]) -> Path:
    directory = tmp_path / "seq"
    directory.mkdir()
    for index, frame in enumerate(make_moving_frames(FRAMES, 48, 32)):
        write_image(directory / f"img_{index:03d}.png", frame)
    return directory


@pytest.fixture
def video(
    capsys: pytest.CaptureFixture[str], sequence: Path, style: Path, weights_file: Path
) -> Callable[..., tuple[int, str]]:
    """Runs `nst-video video SEQUENCE -o OUTPUT EXTRA...` in-process: (exit code, stderr)."""

    def run(output: str | Path, *extra: str) -> tuple[int, str]:
        args = ["video", str(sequence), "--style", str(style), "-o", str(output),
                "--weights", str(weights_file), *FAST, *extra]  # fmt: skip
        return run_in_process(capsys, *args)

    return run


@pytest.fixture
def resume(capsys: pytest.CaptureFixture[str]) -> Callable[[Path], tuple[int, str]]:
    return lambda work: run_in_process(capsys, "resume", str(work))


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# --- 1. a directory without our manifest is not ours ----------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        (".backup.tmp", ".download.partial"),
        ("lock",),
        (".manifest.json.xyz.tmp",),
        (".000001.png.1a2b.tmp.png", "notes.txt"),
    ],
)
def test_a_directory_without_our_manifest_is_refused_whatever_its_files_are_called(
    video: Callable[..., tuple[int, str]], tmp_path: Path, names: tuple[str, ...]
) -> None:
    user = tmp_path / "u"
    user.mkdir()
    for name in names:
        (user / name).write_text(f"the user's {name}\n")
    before = listing(user)
    code, err = video(tmp_path / "x.mp4", "--work-dir", str(user), "--frames", "1")
    assert code == 1
    assert err == (
        f"nst-video: error: {user} is not empty and was not made by nst-video (no "
        "manifest.json); nothing in it was changed: choose another --work-dir\n"
    )
    assert listing(user) == before
    assert not (tmp_path / "x.mp4").exists()


def test_an_empty_directory_becomes_ours_by_its_manifest_before_the_lock(
    video: Callable[..., tuple[int, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "w"
    work.mkdir()
    seen: list[list[str]] = []
    real_lock = WorkDir.lock

    def lock(self: WorkDir) -> object:
        seen.append(sorted(p.name for p in self.path.iterdir()))
        return real_lock(self)

    monkeypatch.setattr(WorkDir, "lock", lock)
    code, err = video(tmp_path / "x.mp4", "--work-dir", str(work), "--frames", "1")
    assert code == 0, err
    # The manifest is the first file in the directory: a kill at any instant after the lock
    # file exists leaves a directory that is recognisably ours.
    assert seen == [["manifest.json"]]
    assert (tmp_path / "x.mp4").is_file()


def test_claim_writes_the_manifest_once_and_never_into_a_foreign_directory(
    tmp_path: Path,
) -> None:
    manifest = Manifest(Job("in.mp4", (), "out.mp4", None, None, Settings()), {"a": 1}, "h")
    fresh = WorkDir(tmp_path / "new")
    assert fresh.claim(manifest)
    assert sorted(p.name for p in fresh.path.iterdir()) == ["manifest.json"]
    assert json.loads(fresh.manifest_path.read_text())["fingerprint"] == {"a": 1}
    assert not fresh.claim(Manifest(manifest.job, {"b": 2}, "g"))  # already ours: unchanged
    assert json.loads(fresh.manifest_path.read_text())["fingerprint"] == {"a": 1}

    # A killed claim leaves only its temporary manifest, by its exact name: still claimable.
    killed = WorkDir(tmp_path / "killed")
    killed.path.mkdir()
    temporary_name(killed.manifest_path).write_text("{")
    assert killed.claim(manifest)
    assert sorted(p.name for p in killed.path.iterdir())[-1] == "manifest.json"

    foreign = WorkDir(tmp_path / "foreign")
    foreign.path.mkdir()
    (foreign.path / "lock").write_text("my notes\n")
    with pytest.raises(OutputError, match="is not empty and was not made by nst-video"):
        foreign.claim(manifest)
    assert sorted(p.name for p in foreign.path.iterdir()) == ["lock"]


# --- 2. outputs are regular files or nothing ------------------------------------------------


@pytest.fixture
def specials(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """A FIFO and a bound socket (and a character device like /dev/null where mknod is
    allowed), each in tmp_path."""
    folder = tmp_path / "special"
    folder.mkdir()
    fifo = folder / "fifo.jsonl"
    os.mkfifo(fifo)
    sock_path = folder / "sock.jsonl"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    made = {"fifo": fifo, "socket": sock_path}
    device = folder / "null.jsonl"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        made["device"] = device
    except OSError:
        pass  # not root: the FIFO and the socket stand for every non-regular file
    yield made
    server.close()


def _kinds(paths: dict[str, Path]) -> dict[str, int]:
    return {name: stat.S_IFMT(os.lstat(p).st_mode) for name, p in paths.items()}


def test_a_report_onto_a_fifo_socket_or_device_is_refused_even_with_overwrite(
    video: Callable[..., tuple[int, str]], tmp_path: Path, specials: dict[str, Path]
) -> None:
    kinds = _kinds(specials)
    words = {"fifo": "a named pipe (FIFO)", "socket": "a socket", "device": "a character device"}
    for name, path in specials.items():
        output = tmp_path / f"{name}.mp4"
        code, err = video(output, "--frames", "1", "--report", str(path), "--overwrite")
        assert code == 1
        assert err == (
            f"nst-video: error: {path} is {words[name]}; nst-video writes only regular files, "
            "and never replaces anything else, not even with --overwrite: choose another path\n"
        )
        assert not output.exists()
    assert _kinds(specials) == kinds


def test_every_output_path_refuses_a_non_regular_file(
    capsys: pytest.CaptureFixture[str],
    video: Callable[..., tuple[int, str]],
    tmp_path: Path,
    specials: dict[str, Path],
    sequence: Path,
    style: Path,
    weights_file: Path,
) -> None:
    fifo = specials["fifo"]
    video_fifo = tmp_path / "clip.mp4"
    os.mkfifo(video_fifo)
    assert video(video_fifo, "--frames", "1", "--overwrite")[0] == 1
    frames = tmp_path / "frames"
    frames.mkdir()
    os.mkfifo(frames / "frame_000000.png")
    code, err = video(f"{frames}/", "--frames", "1", "--overwrite")
    assert code == 1 and "frame_000000.png is a named pipe (FIFO)" in err
    assert sorted(p.name for p in frames.iterdir()) == ["frame_000000.png"]

    image_fifo = tmp_path / "picture.png"
    os.mkfifo(image_fifo)
    content = sequence / "img_000.png"
    common = ["-s", str(style), "--weights", str(weights_file), "--size", "32", "--iterations",
              "1", "--quiet", "--overwrite"]  # fmt: skip
    code, err = run_in_process(capsys, "image", str(content), "-o", str(image_fifo), *common)
    assert code == 1 and "picture.png is a named pipe (FIFO)" in err
    batch = tmp_path / "batch"
    batch.mkdir()
    os.mkfifo(batch / "img_000.png")
    code, err = run_in_process(
        capsys, "image", str(content), str(sequence / "img_001.png"), "-o", str(batch), *common
    )
    assert code == 1 and "img_000.png is a named pipe (FIFO)" in err
    assert not (batch / "img_001.png").exists()  # refused before any work
    preview_fifo = tmp_path / "sheet.png"
    os.mkfifo(preview_fifo)
    code, err = run_in_process(
        capsys, "preview", str(sequence), "-o", str(preview_fifo), "--count", "1", *common
    )
    assert code == 1 and "sheet.png is a named pipe (FIFO)" in err
    for path in (fifo, video_fifo, frames / "frame_000000.png", image_fifo, preview_fifo):
        assert stat.S_ISFIFO(os.lstat(path).st_mode)


def test_dev_null_is_refused_and_stays_a_device() -> None:
    with pytest.raises(OutputError, match=r"^/dev/null is a character device; "):
        refuse_existing("/dev/null", overwrite=True)
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_the_last_check_before_every_rename_refuses_a_non_regular_file(tmp_path: Path) -> None:
    link = tmp_path / "link.png"
    link.symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(OutputError, match="is a symbolic link"):
        write_image(link, np.zeros((4, 4, 3), np.uint8))
    assert link.is_symlink() and not (tmp_path / "elsewhere.png").exists()
    assert files.require_regular(tmp_path / "missing.png") is False
    (tmp_path / "file.png").write_bytes(b"x")
    assert files.require_regular(tmp_path / "file.png") is True


# --- 3. a batch never overwrites its own results --------------------------------------------


def test_two_inputs_for_one_output_name_are_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sequence: Path, style: Path,
    weights_file: Path,
) -> None:  # fmt: skip
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.png").write_bytes((sequence / "img_000.png").read_bytes())
    (tmp_path / "x" / "b.jpg").write_bytes((tmp_path / "x" / "a.png").read_bytes())
    out = tmp_path / "out"
    code, err = run_in_process(
        capsys, "image", str(tmp_path / "x" / "a.png"), str(tmp_path / "y" / "a.png"),
        str(tmp_path / "x" / "b.jpg"), "-s", str(style), "--weights", str(weights_file),
        "-o", f"{out}/", "--overwrite", "--size", "32", "--iterations", "1",
    )  # fmt: skip
    assert code == 1
    assert err == (
        f"nst-video: error: {tmp_path / 'x' / 'a.png'} and {tmp_path / 'y' / 'a.png'} would "
        f"both be written to {out / 'a.png'}; rename the inputs or stylize them in separate runs "
        "with different -o\n"
    )
    assert not out.exists()


# --- 4. --restart with a new --start keeps the delivered frames it does not replace ----------


@pytest.mark.slow
def test_a_new_start_keeps_earlier_delivered_frames_and_a_shorter_end_removes_later_ones(
    video: Callable[..., tuple[int, str]], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, err = video(f"{out}/", "--frames", "3")
    assert code == 0, err
    first = listing(out)
    assert sorted(first) == [f"frame_{i:06d}.png" for i in range(3)]
    code, err = video(f"{out}/", "--start", "3", "--frames", "3", "--restart")
    assert code == 0, err
    now = listing(out)
    assert sorted(now) == [f"frame_{i:06d}.png" for i in range(6)]
    assert {name: now[name] for name in first} == first  # not replaced, not deleted
    # A render ending earlier (frames 3-4) removes our frame 5 past its end, keeps 0-2.
    code, err = video(f"{out}/", "--start", "3", "--frames", "2")
    assert code == 0, err
    assert sorted(listing(out)) == [f"frame_{i:06d}.png" for i in range(5)]
    # A user's frame before the start is neither replaced nor in the way.
    (out / "frame_000000.png").write_bytes(b"retouched by hand")
    code, err = video(f"{out}/", "--start", "3", "--frames", "2")
    assert code == 0, err
    assert (out / "frame_000000.png").read_bytes() == b"retouched by hand"


# --- 5. nothing reaches outside the work directory ------------------------------------------


@pytest.fixture
def rendered(video: Callable[..., tuple[int, str]], tmp_path: Path) -> Path:
    """A finished 3-frame render to out.mp4; returns its work directory."""
    code, err = video(tmp_path / "out.mp4", "--frames", "3")
    assert code == 0, err
    return tmp_path / "out.mp4.nst-work"


@pytest.mark.parametrize("folder", ["frames", "segments", "passes"])
def test_a_linked_layout_folder_is_refused_and_its_target_untouched(
    video: Callable[..., tuple[int, str]],
    resume: Callable[[Path], tuple[int, str]],
    rendered: Path,
    tmp_path: Path,
    folder: str,
) -> None:
    user = tmp_path / "holiday"
    user.mkdir()
    for index in range(3):
        (user / f"{index:06d}.png").write_bytes(f"photo {index}".encode())
    before = listing(user)
    target = rendered / folder
    if target.exists():
        os.rename(target, tmp_path / f"{folder}.moved")
    target.symlink_to(user)
    for extra in ([], ["--restart"], ["--restart", "--style-weight", "5"]):
        code, err = video(tmp_path / "out.mp4", "--frames", "3", *extra)
        assert code == 1
        assert err == (
            f"nst-video: error: {target} is a symbolic link; nst-video writes and deletes its "
            "frames only in real folders of the work directory: remove it, or choose another "
            "--work-dir\n"
        )
    code, err = resume(rendered)
    assert code == 1 and "is a symbolic link" in err
    assert listing(user) == before


def test_a_linked_segment_folder_is_refused(
    video: Callable[..., tuple[int, str]], rendered: Path, tmp_path: Path
) -> None:
    user = tmp_path / "mine"
    user.mkdir()
    (user / "000001.png").write_bytes(b"mine")
    (rendered / "segments").mkdir()
    (rendered / "segments" / "001").symlink_to(user)
    code, err = video(tmp_path / "out.mp4", "--frames", "3", "--restart")
    assert code == 1 and f"{rendered / 'segments' / '001'} is a symbolic link" in err
    assert (user / "000001.png").read_bytes() == b"mine"


def test_a_manifest_partial_outside_ours_is_never_deleted(
    resume: Callable[[Path], tuple[int, str]], rendered: Path, tmp_path: Path
) -> None:
    manifest = json.loads((rendered / "manifest.json").read_text())
    output = Path(manifest["job"]["output"])
    ours = temporary_name(output, "partial")
    victims = [
        output.parent / ".notes.tmp",  # beside the output, '.tmp' in its name: the user's
        output.parent / ".out.mp4.backup.partial.mp4",
        tmp_path / "elsewhere" / ours.name,  # our shape, but not beside the output
        rendered / "frames" / "000000.png",
    ]
    (tmp_path / "elsewhere").mkdir()
    for victim in victims[:3]:
        victim.write_text("keep me\n")
    frame = victims[3].read_bytes()
    for victim in victims:
        manifest["partial"], manifest["encode"] = str(victim), "started"
        (rendered / "manifest.json").write_text(json.dumps(manifest))
        code, err = resume(rendered)
        assert code == 0, err
        assert victim.exists(), victim
    assert all(v.read_text() == "keep me\n" for v in victims[:3])
    assert victims[3].read_bytes() == frame
    # A killed encode's own partial file, by its exact name beside the output, does go.
    ours.write_bytes(b"half an mp4")
    manifest["partial"] = str(ours)
    (rendered / "manifest.json").write_text(json.dumps(manifest))
    code, err = resume(rendered)
    assert code == 0, err
    assert not ours.exists()


def test_a_frame_replaced_by_another_png_is_rendered_again_and_said_so(
    resume: Callable[[Path], tuple[int, str]],
    rendered: Path,
    make_image: Callable[..., np.ndarray],
) -> None:
    frames = rendered / "frames"
    pngs = lambda: {k: v for k, v in listing(frames).items() if k.endswith(".png")}  # noqa: E731
    original = pngs()
    write_image(frames / "000001.png", make_image(32, 48, 9))  # a valid PNG, someone else's
    code, err = resume(rendered)
    assert code == 0, err
    assert "frame 1 changed since it was rendered; rendering it again" in err
    assert pngs() == original  # rendered again, byte for byte


def test_the_lock_file_is_never_written_through_a_link(tmp_path: Path, rendered: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    lock = rendered / "lock"
    lock.unlink()
    lock.symlink_to(notes)
    work = WorkDir(rendered)
    with pytest.raises(OutputError, match="cannot create"), work.lock():
        pass
    lock.unlink()
    os.link(notes, lock)  # a hard link: the same file under our name
    with pytest.raises(OutputError, match="is not the lock file nst-video made"), work.lock():
        pass
    assert notes.read_text() == "my notes\n"


# --- 11. an empty path is a usage error -----------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["image", "", "-s", "s.png", "-o", "o.png"],
        ["image", "c.png", "-s", "s.png", "-o", ""],
        ["image", "c.png", "-s", "", "-o", "o.png"],
        ["image", "c.png", "-s", "s.png", "-o", "o.png", "--weights", ""],
        ["image", "c.png", "-s", "s.png", "-o", "o.png", "--init", ""],
        ["video", "", "-s", "s.png", "-o", "o.mp4"],
        ["video", "in.mp4", "-s", "s.png", "-o", ""],
        ["video", "in.mp4", "-s", "s.png", "-o", "o.mp4", "--work-dir", ""],
        ["video", "in.mp4", "-s", "s.png", "-o", "o.mp4", "--report", ""],
        ["preview", "in.mp4", "-s", "s.png", "-o", ""],
        ["resume", ""],
        ["status", ""],
    ],
)
def test_an_empty_path_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_in_process(capsys, *args)
    assert code == 2
    assert err.startswith("nst-video: error: Invalid value for ")
    assert "an empty path (an unset shell variable?); give a path" in err
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_drop_changed_compares_each_png_with_the_digest_saved_with_it(tmp_path: Path) -> None:
    store = WorkDir(tmp_path).frames
    for index in range(4):
        store.save_frame(index, np.full((4, 6, 3), 10 * index, np.uint8), {"frame": index})
    (tmp_path / "frames" / "000001.png").write_bytes(store.frame_path(3).read_bytes())
    old = store.read_stats(2) or {}
    del old["png"]  # a frame saved by an older version: no digest, kept as it is
    (tmp_path / "frames" / "000002.json").write_text(json.dumps(old))
    store.frame_path(2).write_bytes(store.frame_path(0).read_bytes())
    assert store.drop_changed(range(4)) == [1]
    assert store.done_frames(range(4)) == [0, 2, 3]
