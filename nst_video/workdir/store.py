"""The work directory of a render: manifest, finished frames, and what resuming needs.

Layout (defined here only):
         WORKDIR/manifest.json        settings, fingerprints, the command to resume
         WORKDIR/lock                 flock()ed by the process rendering now (its pid and host)
         WORKDIR/latest.png           the latest finished frame, input | output side by side
                                      (replaced after each frame; only to look at)
         WORKDIR/report.html          `nst-video report`'s page when no -o names another
         WORKDIR/frames/000123.png    stylized frame 123 of the clip (lossless)
         WORKDIR/frames/000123.json   its statistics, the digest of its input frame and that of
                                      the PNG (written before the PNG, which commits it)
         WORKDIR/passes/02/000123.*   frame 123 after pass 2 of a multi-pass render (--passes
                                      N: passes 1..N-1 here, pass N in frames/); a pass's
                                      folder is deleted once the next pass is complete
         WORKDIR/segments/driver.json the Ray run whose segment tasks may write frames
         WORKDIR/segments/004/        segment 4's warm-up frames, and its worker.json
         WORKDIR/segments/004/passes/ its own earlier passes, warm-up frames included
Every file is written to a temporary name (media.files.temporary_name: '.NAME.nst-PID-TOKEN.tmp
.EXT'), fsynced and renamed, so a kill at any instant leaves either the old version or the new
one. Only these names are ever deleted. A directory is ours only once it holds manifest.json,
the first file written into a new or empty one (WorkDir.claim); any other non-empty directory
is refused, and so are frames/, segments/, passes/ and their numbered folders when they are not
real folders inside the work directory (a link would carry our writes and deletions elsewhere).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nst_video.errors import OutputError, ResumeError
from nst_video.media.files import (
    atomic_write_bytes,
    atomic_write_json,
    bytes_signature,
    file_signature,
    fsync_directory,
    is_temporary,
    temporary_name,
    write_error,
)
from nst_video.media.images import encode_image, read_image
from nst_video.video.segments import Segment
from nst_video.workdir.manifest import Manifest, parse_manifest

MANIFEST = "manifest.json"
LOCK = "lock"
SEGMENTS = "segments"
DRIVER_FILE = "driver.json"  # in segments/: the run whose tasks may write frames
WORKER_FILE = "worker.json"  # in segments/K/: the process rendering segment K
LATEST_FILE = "latest.png"  # in WORKDIR: the latest frame, input | output (replaced each frame)
REPORT_FILE = "report.html"  # in WORKDIR: `nst-video report`'s default page
PASSES = "passes"  # in WORKDIR and segments/K/: the earlier passes of a multi-pass render
_PNG_END = b"IEND\xaeB`\x82"
# The only names the work directory writes into frames/ and segments/K/ (besides temporaries).
_OUR_FRAME_FILE = re.compile(r"^\d{6}\.(png|json)$")
_OUR_SEGMENT_FILES = (WORKER_FILE,)
_OUR_PASS_DIR = re.compile(r"^\d{2}$")
_OUR_SEGMENT_DIR = re.compile(r"^\d{3}$")
PNG_DIGEST = "png"  # in a frame's statistics: bytes_signature of its PNG as written


def frame_digest(frame: np.ndarray) -> str:
    """Cheap digest of a decoded input frame (its pixels and shape): a finished frame whose
    input no longer has this digest was made from something else."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(frame.shape).encode())
    digest.update(np.ascontiguousarray(frame).data)
    return digest.hexdigest()


class WorkDir:
    def __init__(self, path: Path):
        self.path = path
        self.frames_dir = path / "frames"
        self.segments_dir = path / SEGMENTS
        self.passes_dir = path / PASSES
        self.frames = FrameStore(self.frames_dir)

    def pass_frames(self, number: int, passes: int) -> FrameStore:
        """The frames of pass `number` of `passes`: the last pass's are the render's frames
        (frames/, what the encoder and status read), earlier ones live in passes/NN."""
        if number == passes:
            return self.frames
        return FrameStore(_pass_folder(self.passes_dir, number))

    def segment_pass_frames(
        self,
        segment: Segment,
        number: int,
        passes: int,
        before_save: Callable[[], None] | None = None,
    ) -> FrameStore:
        """Pass `number` of `passes` as segment `segment` sees it: the last pass is the
        segment's frames (segment_frames), earlier ones live in segments/K/passes/NN."""
        if number == passes:
            return self.segment_frames(segment, before_save)
        folder = _pass_folder(self.segment_dir(segment.index) / PASSES, number)
        return FrameStore(folder, before_save=before_save)

    def has_pass_frames(self) -> bool:
        """Whether any earlier-pass frame exists, of the whole render or of a segment."""
        folders = [self.passes_dir, *self.segments_dir.glob(f"[0-9][0-9][0-9]/{PASSES}")]
        return any(
            _OUR_FRAME_FILE.match(p.name)
            for folder in folders
            for p in folder.glob("[0-9][0-9]/*.png")
        )

    def has_any_frames(self) -> bool:
        """Whether any frame was rendered here: final, earlier pass, or a segment's warm-up."""
        folders = [self.frames_dir, *self.segments_dir.glob("[0-9][0-9][0-9]")]
        return self.has_pass_frames() or any(
            _OUR_FRAME_FILE.match(p.name) for folder in folders for p in folder.glob("*.png")
        )

    def segment_frames(
        self, segment: Segment, before_save: Callable[[], None] | None = None
    ) -> FrameStore:
        """The frames as segment `segment` sees them: its warm-up frames in its own folder.
        Creates nothing (status reads through here): save_frame makes the folders it needs."""
        warmup = self.segment_dir(segment.index)
        return FrameStore(self.frames_dir, warmup, segment.start, before_save)

    def segment_dir(self, index: int) -> Path:
        """Where segment `index` keeps its warm-up frames and worker.json."""
        return self.segments_dir / f"{index:03d}"

    @property
    def driver_path(self) -> Path:
        """segments/driver.json: the Ray run whose segment tasks may write frames."""
        return self.segments_dir / DRIVER_FILE

    def write_driver(self, driver: dict[str, Any]) -> None:
        self.segments_dir.mkdir(parents=True, exist_ok=True)  # the atomic write makes none
        atomic_write_json(self.driver_path, driver)

    def write_worker(self, index: int, worker: dict[str, Any]) -> None:
        """segments/K/worker.json: the process rendering segment `index` now."""
        self.segment_dir(index).mkdir(parents=True, exist_ok=True)  # the write makes none
        atomic_write_json(self.segment_dir(index) / WORKER_FILE, worker)

    def last_frame(self) -> int:
        """The highest index among the render's finished frames (frames/), -1 with none."""
        names = [p.stem for p in self.frames_dir.glob("*.png") if p.stem.isdigit()]
        return max(map(int, names), default=-1)

    # --- manifest ---------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self, allow_old: bool = False) -> Manifest | None:
        """The manifest, checked (see parse_manifest); None only for an older one with
        `allow_old`."""
        try:
            data = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise ResumeError(
                f"{self.path} is not a render work directory (no {MANIFEST})"
            ) from None
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not JSON"
            raise ResumeError(f"cannot read {self.manifest_path}: {reason}") from exc
        return parse_manifest(data, self.path, self.manifest_path, allow_old)

    def manifest(self) -> Manifest:
        """The manifest of a directory that has one of this format (else one clear error)."""
        manifest = self.read_manifest()
        assert manifest is not None  # only allow_old reads as None
        return manifest

    def write_manifest(self, manifest: Manifest) -> None:
        self.claim(manifest)  # a new directory: the manifest is the first file in it
        atomic_write_json(self.manifest_path, manifest.to_dict())
        self._mkdir(self.frames_dir)

    def claim(self, manifest: Manifest) -> bool:
        """Make a new or empty directory ours: write its manifest as the first file in it,
        complete (a hard link to a finished temporary file) and only if none is there yet, so
        no instant leaves our files in a directory without it. Returns whether it wrote it.

        Two processes claiming one directory at once: one link wins, the other finds the
        manifest, and the lock (taken after this) decides which renders.
        """
        if self.exists():
            return False
        self.create()
        self.check_ours()  # still empty (or holding only a killed claim's temporary)
        data = (json.dumps(manifest.to_dict(), indent=1, sort_keys=True) + "\n").encode()
        # Written in place under its temporary name (no temporary of the temporary): the one
        # leftover a kill can leave here is a name check_ours accepts.
        tmp = temporary_name(self.manifest_path)
        try:
            with open(tmp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, self.manifest_path)
            except FileExistsError:
                return False  # another process claimed it at this instant
            except OSError:  # a filesystem without hard links: a rename, as every other write
                os.replace(tmp, self.manifest_path)
        except OSError as exc:
            raise write_error(self.manifest_path, exc) from exc
        finally:
            tmp.unlink(missing_ok=True)
            fsync_directory(self.path)
        return True

    def create(self) -> None:
        self._mkdir(self.path)

    def _mkdir(self, path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create work directory {self.path}: "
                f"{exc.strerror or exc}; pass --work-dir DIR"
            ) from exc

    def check_ours(self) -> None:
        """Refuse a directory that nst-video did not create: its files are not ours to
        replace or delete, whatever they are called (only a killed claim's temporary manifest,
        by its exact name, is ours). Refuse one of ours whose folders are links. Nothing is
        written before this check."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise OutputError(f"work directory {self.path} is a file; pass --work-dir DIR")
        if self.exists():
            self.check_layout()
            return
        names = [p.name for p in self.path.iterdir()]
        foreign = [n for n in names if not is_temporary(n, of=MANIFEST)]
        if foreign:
            raise OutputError(
                f"{self.path} is not empty and was not made by nst-video (no {MANIFEST}); "
                "nothing in it was changed: choose another --work-dir"
            )

    def check_layout(self) -> None:
        """frames/, passes/, segments/ and the numbered folders in them must be real folders
        in this directory: through a link (or a link above them) our frames would overwrite,
        and --restart delete, someone else's files."""
        root = self.path.resolve()
        for folder in self._folders():
            if not os.path.lexists(folder):
                continue
            relative = folder.relative_to(self.path)
            if folder.is_symlink() or not folder.is_dir() or folder.resolve() != root / relative:
                what = "a symbolic link" if folder.is_symlink() else "not a folder nst-video made"
                raise OutputError(
                    f"{folder} is {what}; nst-video writes and deletes its frames only in real "
                    "folders of the work directory: remove it, or choose another --work-dir"
                )

    def _folders(self) -> Iterator[Path]:
        """Every folder of the layout that may exist, parents before their children."""
        yield from (self.frames_dir, self.passes_dir)
        yield from _numbered(self.passes_dir, _OUR_PASS_DIR)
        yield self.segments_dir
        for segment in _numbered(self.segments_dir, _OUR_SEGMENT_DIR):
            yield segment
            yield segment / PASSES
            yield from _numbered(segment / PASSES, _OUR_PASS_DIR)

    # --- one process at a time ----------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive flock on WORKDIR/lock, or fail at once naming its holder.

        The kernel drops the lock when its process dies, however it dies, so a crashed render
        never blocks the next one; the pid and host in the file are only for the message.
        """
        self.create()
        try:
            # Never through a link: the lock file is truncated and written below.
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            raise OutputError(
                f"cannot create {self.path / LOCK}: {exc.strerror or exc}; pass --work-dir DIR"
            ) from exc
        try:
            _check_lock_file(fd, self.path / LOCK)
            if not _flock_soon(fd):
                raise ResumeError(
                    f"{self.path} is in use by {_describe(_read_owner(fd))}; wait for it to "
                    "finish or stop it (nst-video status shows it)"
                )
            os.ftruncate(fd, 0)
            owner = {"pid": os.getpid(), "host": socket.gethostname()}
            os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    def owner(self) -> dict[str, Any] | None:
        """The pid and host of the process holding the lock now, or None if none does.

        Takes the shared lock for an instant (nothing else says whether the holder lives, on
        any filesystem); a render starting in that instant waits for it (_flock_soon)."""
        try:
            fd = os.open(self.path / LOCK, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_owner(fd) or {"pid": None, "host": None}
            return None
        finally:
            os.close(fd)

    def save_latest(self, content: np.ndarray, output: np.ndarray) -> None:
        """WORKDIR/latest.png: the input and the finished frame side by side, replaced
        atomically (never through a link: atomic_file refuses anything but a regular file)."""
        pair = np.concatenate([content, output], axis=1)
        path = self.path / LATEST_FILE
        atomic_write_bytes(path, encode_image(pair, path))

    def drop_wrong_size(self, size: tuple[int, int]) -> list[Path]:
        """Delete finished frames (PNG and statistics) whose PNG is not `size` (width, height),
        in every folder of frames: they cannot be from this plan, so they are damaged and are
        rendered again, like a PNG that fails its checksums. Returns the PNGs deleted."""
        folders = [self.frames_dir, *self.passes_dir.glob("[0-9][0-9]")]
        for segment in self.segments_dir.glob("[0-9][0-9][0-9]"):
            folders += [segment, *(segment / PASSES).glob("[0-9][0-9]")]
        dropped = []
        for folder in folders:
            for png in sorted(folder.glob("*.png")):
                found = _png_size(png)
                if _OUR_FRAME_FILE.match(png.name) and found is not None and found != size:
                    for path in (png, png.with_suffix(".json")):
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()
                    dropped.append(png)
        return dropped

    def remove_temporaries(self) -> None:
        """Temp files a kill left behind between write and rename."""
        _remove(self.path, is_temporary)
        self.frames.remove_temporaries()

    def discard_frames(self) -> int:
        """Delete every frame this work directory rendered, and nothing else: only our
        numbered names and temporaries, in frames/ and each segments/K/."""
        count = len([p for p in self.frames_dir.glob("*.png") if _OUR_FRAME_FILE.match(p.name)])
        _remove(self.frames_dir, _ours_in_frames)
        _remove_passes(self.passes_dir)
        self.discard_segments()
        return count

    def discard_segments(self) -> None:
        """Warm-up frames of an abandoned segment plan (they would seed the wrong chains)."""
        segments = self.segments_dir
        if not segments.is_dir():
            return
        for folder in segments.iterdir():
            if folder.is_dir() and _OUR_SEGMENT_DIR.match(folder.name):
                _remove_passes(folder / PASSES)
                _remove(folder, lambda n: _ours_in_frames(n) or n in _OUR_SEGMENT_FILES)
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty: anything else someone put there stays
        with contextlib.suppress(OSError):
            segments.rmdir()


class FrameStore:
    """Finished frames by index: NNNNNN.png (lossless) and NNNNNN.json, its statistics and the
    digest of its input frame (written first; the PNG's rename commits the frame).

    All in `main` (WORKDIR/frames), except, for a parallel segment, its warm-up frames (those
    before `warmup_stop`), which live in its own `warmup` folder (WORKDIR/segments/K). One
    store type serves the frame loop, a segment, the encoder and status alike. `before_save`
    runs before every save (a Ray task checks there that its driver is still alive).
    """

    def __init__(
        self,
        main: Path,
        warmup: Path | None = None,
        warmup_stop: int = 0,
        before_save: Callable[[], None] | None = None,
    ):
        self.main, self.warmup, self.warmup_stop = main, warmup, warmup_stop
        self.before_save = before_save

    def folder(self, index: int) -> Path:
        return self.warmup if self.warmup is not None and index < self.warmup_stop else self.main

    def frame_path(self, index: int) -> Path:
        return self.folder(index) / f"{index:06d}.png"

    def stats_path(self, index: int) -> Path:
        return self.folder(index) / f"{index:06d}.json"

    def save_frame(self, index: int, image: np.ndarray, stats: dict[str, Any]) -> None:
        """The statistics (with the digest of the PNG), then the PNG, whose rename commits
        the frame."""
        if self.before_save is not None:
            self.before_save()
        _mkdir(self.frame_path(index).parent)
        data = encode_image(image, self.frame_path(index))
        atomic_write_json(self.stats_path(index), {**stats, PNG_DIGEST: bytes_signature(data)})
        atomic_write_bytes(self.frame_path(index), data)

    def has_frame(self, index: int) -> bool:
        """A frame counts when its PNG is complete (ends with the IEND chunk)."""
        path = self.frame_path(index)
        try:
            size = path.stat().st_size
            if size < len(_PNG_END):
                return False
            with open(path, "rb") as handle:
                handle.seek(size - len(_PNG_END))
                return handle.read() == _PNG_END
        except OSError:
            return False

    def load_frame(self, index: int) -> np.ndarray | None:
        """The frame, or None when it is missing or damaged (it is rendered again)."""
        if not self.frame_intact(index):
            return None
        try:
            return read_image(self.frame_path(index))
        except Exception:  # a corrupt PNG: treat as missing
            return None

    def frame_intact(self, index: int) -> bool:
        """Complete and every chunk CRC matches: damaged IDAT bytes can still decode, wrongly."""
        if not self.has_frame(index):
            return False
        try:
            with Image.open(self.frame_path(index)) as image:
                image.verify()
        except Exception:
            return False
        return True

    def drop_damaged(self, indices: range) -> list[int]:
        """Delete finished frames whose PNG is damaged, so the frame loop renders them again."""
        damaged = [i for i in self.done_frames(indices) if not self.frame_intact(i)]
        for index in damaged:
            with contextlib.suppress(OSError):
                self.frame_path(index).unlink()
        return damaged

    def drop_changed(self, indices: range) -> list[int]:
        """Delete finished frames whose PNG is no longer the one rendered (its digest differs
        from the one its statistics recorded: replaced by another picture), so the frame loop
        renders them again. A frame saved without a digest (an older version) is kept."""
        changed = []
        for index in self.done_frames(indices):
            recorded = (self.read_stats(index) or {}).get(PNG_DIGEST)
            if recorded is not None and file_signature(self.frame_path(index)) != recorded:
                changed.append(index)
        for index in changed:
            with contextlib.suppress(OSError):
                self.frame_path(index).unlink()
        return changed

    def read_stats(self, index: int) -> dict[str, Any] | None:
        """The statistics saved with a finished frame (see pipeline/sweep.build_stats); None
        when missing or damaged (not a JSON object)."""
        return read_json_object(self.stats_path(index))

    def done_frames(self, indices: range) -> list[int]:
        return [i for i in indices if self.has_frame(i)]

    def drop_frames(self, indices: range | list[int]) -> None:
        """Delete these finished frames (PNG and statistics), so they are rendered again."""
        for index in indices:
            for path in (self.frame_path(index), self.stats_path(index)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def remove_temporaries(self) -> None:
        """Temporaries a kill left in the folder only this store writes: a segment's own
        folder, since other segments may be writing into frames/ now."""
        _remove(self.warmup if self.warmup is not None else self.main, is_temporary)

    def drop_all(self, indices: range) -> None:
        """Delete this store's frames of `indices`: all of an earlier pass's own folder (its
        frames are of no other range), only those of `indices` in frames/ (the render's or a
        segment's last pass, which may hold other ranges' frames)."""
        own_folder = self.main.parent.name == PASSES and _OUR_PASS_DIR.match(self.main.name)
        if self.warmup is None and own_folder:
            self.discard()
        else:
            self.drop_frames(indices)

    def discard(self) -> None:
        """Delete every frame of a store that holds one folder alone (an earlier pass, no
        longer needed), and the folder once empty; only our names."""
        assert self.warmup is None, "a segment's store shares frames/ with other segments"
        _remove(self.main, _ours_in_frames)
        with contextlib.suppress(OSError):
            self.main.rmdir()
            if self.main.parent.name == PASSES:
                self.main.parent.rmdir()  # when it held no other pass

    def iter_frames(self, indices: range) -> Iterator[np.ndarray]:
        for index in indices:
            frame = self.load_frame(index)
            if frame is None:
                raise ResumeError(
                    f"frame {index} in {self.frame_path(index).parent} is missing or corrupt; "
                    "run the render again to redo it"
                )
            yield frame


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create {path}: {exc.strerror or exc}; pass --work-dir DIR"
        ) from exc


def _numbered(directory: Path, name: re.Pattern[str]) -> list[Path]:
    """The entries of `directory` named like one of our numbered folders (none if it is no
    folder)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if name.match(p.name))


def _check_lock_file(fd: int, path: Path) -> None:
    """The lock file is truncated and rewritten: it must be a regular file of its own, never
    another name of someone's file (a hard link)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        raise OutputError(
            f"{path} is not the lock file nst-video made (a special file or a hard link); "
            "nothing was changed: remove it, or choose another --work-dir"
        )


def _pass_folder(passes_dir: Path, number: int) -> Path:
    return passes_dir / f"{number:02d}"


def _remove_passes(passes_dir: Path) -> None:
    """Our frames in every passes/NN folder, the folders once empty, then passes/ itself."""
    if not passes_dir.is_dir():
        return
    for folder in passes_dir.iterdir():
        if folder.is_dir() and _OUR_PASS_DIR.match(folder.name):
            FrameStore(folder).discard()
    with contextlib.suppress(OSError):
        passes_dir.rmdir()


def _ours_in_frames(name: str) -> bool:
    return bool(_OUR_FRAME_FILE.match(name)) or is_temporary(name)


def _remove(directory: Path, ours: Any) -> None:
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if ours(path.name) and path.is_file():
            with contextlib.suppress(OSError):
                path.unlink()
    fsync_directory(directory)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A small JSON file we wrote that must hold an object; None when it is missing, unreadable
    or damaged (a reader that finds `[1, 2]` treats it as absent, not as a traceback)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# How long a render waits for the lock: `status` holds it shared for a few microseconds, and a
# render starting in that instant must not fail (11 times in 2,000 tries without the wait);
# another render holds it for the whole render, far longer.
LOCK_WAIT = 1.0  # seconds
LOCK_POLL = 0.01


def _flock_soon(fd: int) -> bool:
    """Take the exclusive lock, trying for up to LOCK_WAIT; False if it stays held."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(LOCK_POLL)


def _gone(owner: dict[str, Any]) -> bool:
    """Whether the pid in the lock file is of a process on this host that no longer exists (a
    pid on another host cannot be checked)."""
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, another user's
        return False
    return False


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk; None when the header is not a PNG's."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(24)
    except OSError:
        return None
    if len(header) < 24 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        return None
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def _read_owner(fd: int) -> dict[str, Any] | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(owner: dict[str, Any] | None) -> str:
    if not owner or owner.get("pid") is None or _gone(owner):
        # The file names an earlier holder: the one now is a `status` that outlasted the
        # wait, or a render in the instant before it writes its own pid.
        return "another nst-video process"
    return f"another nst-video process (pid {owner['pid']} on {owner.get('host', '?')})"
