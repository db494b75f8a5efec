"""What a render is and what its frames depend on: the Job, its fingerprint, and their JSON form
in the manifest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from nst_video.config import (
    RESULT,
    ImageConfig,
    LossConfig,
    OptimConfig,
    Settings,
    VideoConfig,
    setting_fields,
)
from nst_video.errors import ResumeError
from nst_video.media.files import file_digest


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


def result_settings(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings that change the stylized frames (role RESULT), by group: `{group: {name:
    value}}`, so a changed one is named by its path, e.g. settings.optim.iterations."""
    out: dict[str, dict[str, Any]] = {}
    for group, name, value, field_role in setting_fields(settings):
        if field_role == RESULT:
            out.setdefault(group, {})[name] = _jsonable(value)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, tuple):
        return list(value)
    return value


def result_hash(fingerprint_data: dict[str, Any]) -> str:
    """Short digest of a fingerprint: equal hashes, interchangeable frames."""
    text = json.dumps(fingerprint_data, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def differing(stored: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Names of the entries that differ between two fingerprints, as 'name (old -> new)'."""
    out: list[str] = []
    for key in sorted(set(stored) | set(new)):
        old, cur = stored.get(key), new.get(key)
        if isinstance(old, dict) and isinstance(cur, dict):
            out += differing(old, cur, prefix=f"{prefix}{key}.")
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
    """Inverse of job_to_dict: the job as stored in a manifest (a damaged one: one line)."""
    try:
        return _job_from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResumeError(
            f"the job stored in the manifest is damaged ({type(exc).__name__}: {exc}); "
            "start the render again with its full command"
        ) from exc


def _job_from_dict(data: dict[str, Any]) -> Job:
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
