"""File primitives every layer above uses: the one atomic write, and content signatures.

Depends on errors only, so media I/O (frames/) and the work directory share the same helper.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from nst_video.errors import OutputError

TEMPORARY_TAGS = ("tmp", "partial")
# temporary_name's shape, whole: '.', the final name, '.nst-', pid, '-', 8 hex digits (a token
# we generate), the tag, the final name's extension. Cleanup deletes only names of this shape,
# never by substring: a user's '.backup.tmp' is not ours.
_TEMPORARY = re.compile(
    r"^\.(?P<name>.+)\.nst-\d+-[0-9a-f]{8}\.(?:tmp|partial)(?P<suffix>\.[^.]*)?$"
)


def temporary_name(path: Path, tag: str = "tmp") -> Path:
    """A unique hidden name beside `path` (pid + random token: two writers never collide).

    The leading '.' hides it from image-sequence inputs; the real extension stays at the end so
    tools that guess formats by extension (PIL, ffmpeg) still do.
    """
    assert tag in TEMPORARY_TAGS, tag
    unique = f"nst-{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f".{path.name}.{unique}.{tag}{path.suffix}")


# The most digits a Linux pid has (pid_max is at most 2**22): temporary names are checked at
# their longest.
_PID_DIGITS = 7


def check_name_fits(path: str | Path, what: str) -> None:
    """Refuse, before any work, a path whose name (or a folder still to be made on the way to
    it) is longer than its filesystem takes, counting the temporary name the atomic write
    gives it first: an output name that fits alone failed with ENAMETOOLONG only after the
    whole render, when the encoder opened its temporary file."""
    path = Path(os.path.abspath(path))
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:  # no ENAMETOOLONG
        existing = existing.parent
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    longest = temporary_name(path, "partial").name
    longest += "0" * max(0, _PID_DIGITS - len(str(os.getpid())))
    extra = len(os.fsencode(longest)) - len(os.fsencode(path.name))
    missing = [p.name for p in path.parents if p.parent != p and not os.path.lexists(p)]
    for name, added in [(path.name, extra), *((m, 0) for m in missing)]:
        if len(os.fsencode(name)) + added > limit:
            shown = name if len(name) <= 40 else name[:32] + "..." + name[-5:]
            adds = f" (nst-video adds up to {added} while writing it)" if added else ""
            raise OutputError(
                f"{what}: the name {shown!r} is {len(os.fsencode(name))} bytes, and its "
                f"filesystem takes at most {limit}{adds}; choose a shorter name"
            )


def is_temporary(name: str, of: str | None = None) -> bool:
    """Whether `name` is exactly one of temporary_name's (of a file named `of`, if given)."""
    match = _TEMPORARY.match(name)
    if match is None or (of is not None and match["name"] != of):
        return False
    return (match["suffix"] or "") == Path(match["name"]).suffix


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Yield a handle to a temporary file that replaces `path` when the block ends cleanly.

    The data and then the directory entry are fsynced, so after a crash at any instant `path`
    holds the old content or the new one, never a mix. The file is created like any other
    (mode 0666 minus the umask). A failure or an interrupt removes the temporary file.
    """
    path = Path(path)
    require_regular(path)
    tmp = temporary_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:  # e.g. a parent that is a file: one line, not a traceback
        raise write_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        require_regular(path)  # again: the rename replaces whatever is there now
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise write_error(path, exc) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically and durably (see atomic_file)."""
    with atomic_file(path) as handle:
        handle.write(data)


def fsync_directory(directory: Path) -> None:
    """Make a rename or deletion in `directory` durable (a no-op where directories can't be
    opened, e.g. on Windows)."""
    try:
        fd = os.open(directory if str(directory) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return disk_full(path)
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def disk_full(path: str | Path) -> OutputError:
    """The one disk-full message (an OSError's ENOSPC here, ffmpeg's stderr in writers)."""
    return OutputError(f"disk full while writing {path}; free space and run the command again")


def refuse_existing(path: str | Path, overwrite: bool) -> None:
    """The one check of a file about to be written that the user named (an output, a report,
    a numbered frame): nothing there, or a regular file and --overwrite (or one of ours: the
    caller passes overwrite=True then). Anything else is refused, whatever --overwrite says."""
    if require_regular(path) and not overwrite:
        raise OutputError(f"{path} exists; pass --overwrite to replace it")


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def require_regular(path: str | Path) -> bool:
    """Whether a regular file is at `path` (False: nothing is); anything else there (a device,
    a FIFO, a socket, a link, a directory) is refused: every write of nst-video renames a new
    regular file into place, which would replace it. Called before every such rename."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False  # nothing there (a parent that is a file is named by the caller's checks)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    if stat.S_ISREG(mode):
        return True
    if stat.S_ISDIR(mode):
        raise OutputError(f"{path} is a directory; give a file name")
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    raise OutputError(
        f"{path} is {kind}; nst-video writes only regular files, and never replaces anything "
        "else, not even with --overwrite: choose another path"
    )


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bytes_signature(data: bytes) -> str:
    """Size and digest of some content: what a file of ours must still hold to be ours."""
    return f"{len(data)}:{hashlib.blake2b(data, digest_size=16).hexdigest()}"


def file_signature(path: Path) -> str | None:
    """bytes_signature of the file at `path`, or None when there is no readable file."""
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None  # a link, FIFO or device is never ours (and a FIFO would block)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    except OSError:
        return None
    return f"{size}:{digest.hexdigest()}"


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (symlinks and hard links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): compare where they would be
        return Path(a).resolve() == Path(b).resolve()


def is_within(path: str | Path, directory: str | Path) -> bool:
    """Whether `path` is `directory` or lies inside it (after resolving symlinks)."""
    resolved, folder = Path(path).resolve(), Path(directory).resolve()
    return resolved == folder or folder in resolved.parents


def atomic_write_json(path: Path, data: Any) -> None:
    """`data` as indented, key-sorted JSON, written with atomic_write_bytes."""
    atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
