"""The manifest of a work directory, as typed data: the Job (what the user asked for), the
fingerprint (what its frames depend on), the Plan (which frames, at what size, in which
segments), and the outputs it wrote. Each has to_dict / from_dict; the format version is checked
on every read.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import Field, asdict, dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from nst_video.config import (
    PRECISIONS,
    RESULT,
    RETIRED,
    VIDEO,
    ComputeConfig,
    ImageConfig,
    LossConfig,
    OptimConfig,
    Settings,
    VideoConfig,
    absent_value,
    command_settings,
    role,
    setting_fields,
    setting_of,
    video_long_side,
)
from nst_video.errors import ResumeError
from nst_video.media.ffmpeg import rate_text
from nst_video.media.files import file_digest, file_signature
from nst_video.video.levels import level_long_sides
from nst_video.video.segments import Segment

# 2: input digests in the frame statistics, owned-output signatures, the frame range left out
# of the fingerprint. 3: result settings by group (optim.iterations, video.iterations), with
# precision and history_size among them. 4: device and precision in their own group
# (compute.device, compute.precision; were image.device, image.precision). 5: new result
# settings in the fingerprint (a format-4 fingerprint lacks them, so it would read as changed
# settings): video.temporal_offsets and the multi-pass settings (video.passes, pass_blend,
# temporal_from_pass, pass_iterations); passes/NN folders in the work directory; the resolved
# precision (what `auto` became where the render started), which a resume keeps. Checked on
# every read: an older or newer layout is refused, not guessed. A result setting added since
# needs no bump when its default (or its `before`) renders as before: `upgraded` fills it in.
FORMAT_VERSION = 5
ENCODE_STATES = ("pending", "started", "done")


@dataclass(frozen=True)
class Job:
    """What the user asked for: enough to run the render again from the manifest alone."""

    input: str
    styles: tuple[str, ...]
    output: str
    weights: str | None
    report: str | None
    settings: Settings

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        """The job as stored in a manifest (a damaged one: one line)."""
        try:
            return _job_from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ResumeError(
                f"the job stored in the manifest is damaged ({type(exc).__name__}: {exc}); "
                "start the render again with its full command"
            ) from exc


def _job_from_dict(data: dict[str, Any]) -> Job:
    raw = data["settings"]

    def build(cls: type, group: str) -> Any:
        values = {**_absent(cls), **_current(group, raw.get(group, {}))}
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        if cls is VideoConfig and fields.get("fps"):
            fields["fps"] = Fraction(fields["fps"])
        return cls(**fields)

    settings = Settings(
        loss=build(LossConfig, "loss"),
        optim=build(OptimConfig, "optim"),
        image=build(ImageConfig, "image"),
        compute=build(ComputeConfig, "compute"),
        video=build(VideoConfig, "video"),
    )
    return Job(
        data["input"],
        tuple(data["styles"]),
        data["output"],
        data["weights"],
        data["report"],
        settings,
    )


def _absent(cls: type) -> dict[str, Any]:
    """A settings group's values as a work directory that predates any of them rendered."""
    return {f.name: _jsonable(absent_value(f)) for f in fields(cls)}


def _current(group: str, stored: dict[str, Any]) -> dict[str, Any]:
    """Stored settings less those this version retired, each only while it held the value
    under which dropping it changes nothing (RETIRED); any other value cannot be continued."""
    kept = dict(stored)
    for (retired_group, name), neutral in RETIRED.items():
        if retired_group == group and name in kept:
            value = kept.pop(name)
            if value != neutral:
                raise ResumeError(
                    f"this render used --{name.replace('_', '-')} {value}, which this version of "
                    "nst-video no longer has; finish it with the version that began it, or "
                    "pass --restart to render it again"
                )
    return kept


def upgraded(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored fingerprint as this version writes it, so only real changes are named: every
    setting it lacks (one added since, even a whole group) filled with the value it rendered
    with (absent_value: its `before`, else its default), retired ones dropped (RETIRED), and
    those a video does not read left out as result_settings leaves them out (optim.iterations,
    which video jobs stored as a copy of video.first_iterations; image.init, always content).
    So a new result setting whose default renders as before needs no format bump."""
    settings = stored.get("settings")
    if not isinstance(settings, dict):
        return stored
    filled = dict(settings)  # a group this version lacks stays, and so reads as a change
    for group in fields(Settings):
        values = settings.get(group.name, {})
        if not isinstance(values, dict):
            continue
        config = group.default_factory  # type: ignore[misc]
        known = {f.name for f in fields(config)}
        read = _video_result_fields(group.name)
        kept = {
            k: v for k, v in _current(group.name, values).items() if k not in known or k in read
        }
        absent = {name: _jsonable(absent_value(f)) for name, f in read.items()}
        if absent or kept:
            filled[group.name] = {**absent, **kept}
    return {**stored, "settings": filled}


def _video_result_fields(group: str) -> dict[str, Field[Any]]:
    """The result settings of group `group` that a video render reads: its fingerprint's."""
    return {
        name: s.field
        for name, s in command_settings(VIDEO).items()
        if s.group == group and role(s.field) == RESULT
    }


@dataclass(frozen=True)
class Plan:
    """Which frames a render covers ([start, stop) of the input), the output frames' size and
    rate, and its segments (None: one worker renders them in order)."""

    start: int
    stop: int
    size: tuple[int, int]  # (width, height) of the output frames
    fps: Fraction
    has_audio: bool
    segments: tuple[Segment, ...] | None = None

    @property
    def indices(self) -> range:
        return range(self.start, self.stop)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "stop": self.stop,
            "size": list(self.size),
            "fps": rate_text(self.fps),
            "has_audio": self.has_audio,
            "segments": [s.as_dict() for s in self.segments] if self.segments else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        segments = data.get("segments")
        return cls(
            int(data["start"]),
            int(data["stop"]),
            (int(data["size"][0]), int(data["size"][1])),
            Fraction(data["fps"]),
            bool(data["has_audio"]),
            tuple(Segment(**s) for s in segments) if segments else None,
        )


@dataclass
class Manifest:
    """WORKDIR/manifest.json. Mutable: a render updates it as it goes (plan, encode, owned)."""

    job: Job
    fingerprint: dict[str, Any]
    result_hash: str
    encode: str = "pending"  # one of ENCODE_STATES
    plan: Plan | None = None
    # Absolute path -> signatures (size:digest) of the files this work directory wrote there.
    owned: dict[str, list[str]] = field(default_factory=dict)
    partial: str | None = None  # the temporary file of an encode in progress
    # The arithmetic the frames are rendered in (core.device.resolve_precision of the job's
    # precision, recorded at the start): a resume on a machine where `auto` means something
    # else keeps it. None: not resolved by the driver (a Ray cluster's workers resolve it).
    precision: str | None = None
    # CPU threads of each rendering process (core.device.render_threads, recorded at the
    # start): float sums depend on the count, so a resume with another number of workers, or
    # another OMP_NUM_THREADS, keeps it and its frames stay byte-identical. None: not recorded.
    threads: int | None = None

    def require_plan(self, directory: Path) -> Plan:
        if self.plan is None:
            raise ResumeError(f"{directory} has no frame plan yet; the render never started")
        return self.plan

    def owns(self, path: str | Path) -> bool:
        """Whether the file at `path` is byte for byte one this work directory wrote there:
        only such a file is replaced freely."""
        known = self.owned.get(os.path.abspath(path), [])
        return bool(known) and file_signature(Path(path)) in known

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "job": self.job.to_dict(),
            "fingerprint": self.fingerprint,
            "result_hash": self.result_hash,
            "encode": self.encode,
            "plan": self.plan.to_dict() if self.plan else None,
            "owned": self.owned,
            "partial": self.partial,
            "precision": self.precision,
            "threads": self.threads,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """A manifest of this FORMAT_VERSION (parse_manifest checks that first)."""
        plan = data.get("plan")
        try:
            encode = data.get("encode", "pending")
            if encode not in ENCODE_STATES:
                raise ValueError(f"encode {encode!r}")
            return cls(
                Job.from_dict(data["job"]),
                dict(data["fingerprint"]),
                str(data.get("result_hash", "")),
                encode,
                Plan.from_dict(plan) if plan else None,
                {str(k): list(v) for k, v in (data.get("owned") or {}).items()},
                data.get("partial"),
                _precision(data.get("precision")),
                _threads(data.get("threads")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResumeError(
                f"the manifest is damaged ({type(exc).__name__}: {exc}); "
                "start the render again with its full command"
            ) from exc


def _precision(value: Any) -> str | None:
    if value is not None and value not in PRECISIONS:
        raise ValueError(f"precision {value!r}")
    return value


def _threads(value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"threads {value!r}")
    return value


def parse_manifest(data: Any, directory: Path, file: Path, allow_old: bool) -> Manifest | None:
    """The manifest in `data` (read from `file` in work directory `directory`), checked: a
    damaged, older or newer one is one clear error. `allow_old`: an older format reads as None
    (for --restart, which keeps nothing of it but the knowledge that the directory is ours)."""
    version = data.get("format") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise ResumeError(
            f"{file} is damaged (no manifest format version); choose another --work-dir"
        )
    if version > FORMAT_VERSION:
        raise ResumeError(
            f"{directory} was written by a newer nst-video (manifest format {version}, "
            f"this one reads {FORMAT_VERSION}); continue it with that version"
        )
    if version < FORMAT_VERSION:
        if allow_old:
            return None
        raise ResumeError(
            f"{directory} was written by an older nst-video (manifest format {version}, "
            f"this one reads {FORMAT_VERSION}); pass --restart to render it again"
        )
    if not isinstance(data.get("job"), dict) or not isinstance(data.get("fingerprint"), dict):
        raise ResumeError(f"{file} is damaged (no job or fingerprint); choose another --work-dir")
    return Manifest.from_dict(data)


def fingerprint(job: Job, source_info: dict[str, Any], weights_id: str) -> dict[str, Any]:
    """Everything whose change makes finished frames invalid."""
    long_side = video_long_side(job.settings.image.size, max(source_info["size"]))
    return {
        "settings": _without_idle_levels(result_settings(job.settings), job.settings, long_side),
        "input": source_info,
        "styles": [file_digest(Path(s)) for s in job.styles],
        "weights": weights_id,
    }


def _without_idle_levels(
    stored: dict[str, dict[str, Any]], settings: Settings, long_side: int
) -> dict[str, dict[str, Any]]:
    """`stored` with --coarse-start as 0 where frames of `long_side` px are too small for a
    coarse level: such frames render the same under any value, so changing it (or its default)
    does not refuse a resume."""
    if len(level_long_sides(long_side, settings.image)) > 1:
        return stored
    return {**stored, "image": {**stored["image"], "coarse_start": 0}}


def result_settings(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings that change a video's stylized frames (role RESULT, read by the video
    command), by group: `{group: {name: value}}` (optim.iterations and video.iterations are two
    settings; only the second is a video's)."""
    out: dict[str, dict[str, Any]] = {}
    for group, name, value, field_role in setting_fields(settings):
        if field_role == RESULT and setting_of(VIDEO, group, name) is not None:
            out.setdefault(group, {})[name] = _jsonable(value)
    return out


def _jsonable(value: Any) -> Any:
    """Settings values as JSON: tuples become lists, a frame rate 'n/d'."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Fraction):
        return rate_text(value)
    return value


def result_hash(fingerprint_data: dict[str, Any]) -> str:
    """Short digest of a fingerprint: equal hashes, interchangeable frames."""
    text = json.dumps(fingerprint_data, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def differing(stored: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The entries that differ between two fingerprints: a setting by its option
    (`--style-weight 3 -> 5`), anything else by its path (`weights (old -> new)`)."""
    out: list[str] = []
    for key in sorted(set(stored) | set(new)):
        old, cur = stored.get(key), new.get(key)
        path = f"{prefix}{key}"
        if isinstance(old, dict) and isinstance(cur, dict):
            out += differing(old, cur, prefix=f"{path}.")
        elif old != cur:
            out.append(_change(path, old, cur))
    return out


def _change(path: str, old: Any, cur: Any) -> str:
    parts = path.split(".")
    setting = setting_of(VIDEO, parts[1], parts[2]) if len(parts) == 3 else None
    if parts[0] == "settings" and setting is not None:
        return f"{setting.flag} {_option_text(old)} -> {_option_text(cur)}"
    return f"{path} ({_short(old)} -> {_short(cur)})"


def _option_text(value: Any) -> str:
    """A stored setting as its option is written: 3 (not 3.0), 1,2,4, flow; none: unset."""
    if value is None:
        return "(none)"
    if isinstance(value, list):
        text = ",".join(_option_text(v) for v in value)
    elif isinstance(value, bool):
        text = json.dumps(value)
    elif isinstance(value, float):
        text = f"{value:g}" if float(f"{value:g}") == value else repr(value)
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:16] + "..." + text[-8:]


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:16] + "..." + text[-8:]
