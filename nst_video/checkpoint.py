"""The work directory of a render: manifest, finished frames, and what resuming needs.

Layout:  WORKDIR/manifest.json        settings, fingerprints, the command to resume
         WORKDIR/frames/000123.png    stylized frame 123 of the clip (lossless)
         WORKDIR/frames/000123.json   its statistics (written before the PNG, which commits it)
Every file is written to a temporary name, fsynced and renamed, so a kill at any instant leaves
either the old version or the new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nst_video.config import Settings
from nst_video.errors import OutputError, ResumeError
from nst_video.frames.images import read_image, write_image

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# Settings that only affect encoding or speed, not the stylized frames.
_NOT_IN_RESULT = {"crf", "codec", "audio", "device", "precision", "log_every"}
_PNG_END = b"IEND\xaeB`\x82"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write, flush, fsync and rename, so readers see the old file or the new one, never a mix."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # e.g. a parent that is a file: one line, not a traceback
        raise _write_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _write_error(path, exc) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == 28:  # ENOSPC
        return OutputError(
            f"disk full while writing {path}; free space and run the command "
            "again to continue (finished frames are kept)"
        )
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def result_settings(settings: Settings) -> dict[str, Any]:
    """The settings that change the stylized frames, flattened to `name: value`."""
    flat: dict[str, Any] = {}
    for group in asdict(settings).values():
        for key, value in group.items():
            if key not in _NOT_IN_RESULT:
                flat[key] = _jsonable(value)
    return flat


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass(frozen=True)
class Job:
    """What the user asked for: enough to run the render again from the manifest alone."""

    input: str
    styles: tuple[str, ...]
    output: str
    weights: str | None
    report: str | None
    settings: Settings


def fingerprint(job: Job, source_info: dict[str, Any], weights_id: str) -> dict[str, Any]:
    """Everything whose change makes finished frames invalid."""
    return {
        "settings": result_settings(job.settings),
        "input": source_info,
        "styles": [file_digest(Path(s)) for s in job.styles],
        "weights": weights_id,
    }


def result_hash(fingerprint_data: dict[str, Any]) -> str:
    """Short digest of a fingerprint: equal hashes, interchangeable frames."""
    text = json.dumps(fingerprint_data, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:16]


class WorkDir:
    def __init__(self, path: Path):
        self.path = path
        self.frames_dir = path / "frames"

    # --- manifest ---------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise ResumeError(
                f"{self.path} is not a render work directory (no {MANIFEST})"
            ) from None
        except (OSError, ValueError) as exc:
            raise ResumeError(f"cannot read {self.manifest_path}: {exc}") from exc

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        try:
            self.frames_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create work directory {self.path}: "
                f"{exc.strerror or exc}; pass --work-dir DIR"
            ) from exc
        manifest = {**manifest, "format": FORMAT_VERSION}
        atomic_write_json(self.manifest_path, manifest)

    # --- frames -----------------------------------------------------------------------------

    def frame_path(self, index: int) -> Path:
        return self.frames_dir / f"{index:06d}.png"

    def stats_path(self, index: int) -> Path:
        return self.frames_dir / f"{index:06d}.json"

    def save_frame(self, index: int, image: np.ndarray, stats: dict[str, Any]) -> None:
        atomic_write_json(self.stats_path(index), stats)
        write_image(self.frame_path(index), image)  # the PNG's rename commits the frame

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

    def frame_stats(self, index: int) -> dict[str, Any] | None:
        try:
            return json.loads(self.stats_path(index).read_text())
        except (OSError, ValueError):
            return None

    def done_frames(self, indices: range) -> list[int]:
        return [i for i in indices if self.has_frame(i)]

    def remove_temporaries(self) -> None:
        """Temp files a kill left behind between write and rename."""
        for directory in (self.path, self.frames_dir):
            for tmp in directory.glob(".*.tmp*"):
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def discard_frames(self) -> int:
        count = 0
        for path in self.frames_dir.glob("*.*"):
            with contextlib.suppress(OSError):
                path.unlink()
                count += path.suffix == ".png"
        return count

    def iter_frames(self, indices: range) -> Iterator[np.ndarray]:
        for index in indices:
            frame = self.load_frame(index)
            if frame is None:
                raise ResumeError(
                    f"frame {index} in {self.frame_path(index).parent} is missing or corrupt; "
                    "run the render again to redo it"
                )
            yield frame


def differing(stored: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Names of the entries that differ between two fingerprints, as 'name (old -> new)'."""
    out: list[str] = []
    for key in sorted(set(stored) | set(new)):
        old, cur = stored.get(key), new.get(key)
        if isinstance(old, dict) and isinstance(cur, dict):
            out += differing(old, cur, prefix=f"{key}.")
        elif old != cur:
            out.append(f"{prefix}{key} ({_short(old)} -> {_short(cur)})")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:16] + "..." + text[-8:]


def job_to_dict(job: Job) -> dict[str, Any]:
    data = asdict(job)
    data["settings"] = _settings_jsonable(data["settings"])
    return data


def _settings_jsonable(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _settings_jsonable(v) for k, v in data.items()}
    if isinstance(data, tuple | list):
        return [_settings_jsonable(v) for v in data]
    if isinstance(data, Fraction):
        return f"{data.numerator}/{data.denominator}"
    return data


def job_from_dict(data: dict[str, Any]) -> Job:
    """Inverse of job_to_dict: the job as stored in a manifest."""
    from nst_video.config import ImageConfig, LossConfig, OptimConfig, VideoConfig

    raw = data["settings"]

    def build(cls: type, values: dict[str, Any]) -> Any:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        if cls is VideoConfig and fields.get("fps"):
            fields["fps"] = Fraction(fields["fps"])
        return cls(**fields)

    settings = Settings(
        loss=build(LossConfig, raw["loss"]),
        optim=build(OptimConfig, raw["optim"]),
        image=build(ImageConfig, raw["image"]),
        video=build(VideoConfig, raw["video"]),
    )
    return Job(
        data["input"],
        tuple(data["styles"]),
        data["output"],
        data["weights"],
        data["report"],
        settings,
    )


def render_status(work: WorkDir) -> dict[str, Any]:
    """Frames done / total, mean seconds per frame over the finished frames, ETA."""
    manifest = work.read_manifest()
    plan = manifest.get("plan")
    if plan is None:
        raise ResumeError(f"{work.path} has no frame plan yet; the render never started")
    indices = range(plan["start"], plan["stop"])
    done = work.done_frames(indices)
    seconds = [s["seconds"] for i in done if (s := work.frame_stats(i))]
    per_frame = sum(seconds) / len(seconds) if seconds else None
    remaining = len(indices) - len(done)
    return {
        "work_dir": str(work.path),
        "output": manifest["job"]["output"],
        "done": len(done),
        "total": len(indices),
        "seconds_per_frame": per_frame or 0.0,
        "eta_seconds": None if per_frame is None else remaining * per_frame,
        "encode": manifest.get("encode", "pending"),
        "result_hash": manifest.get("result_hash"),
        "segments": _segments_status(work, plan.get("segments")),
    }


def _segments_status(work: WorkDir, segments: list[dict[str, int]] | None) -> list[Any] | None:
    if not segments:
        return None
    from nst_video.distributed import segment_status

    return segment_status(work, segments)
