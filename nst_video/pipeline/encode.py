"""From finished frames to the output: the video file or numbered frames (seams of parallel
segments crossfaded), and the JSONL report; idempotent, so a killed encode is simply rerun."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nst_video.errors import ResumeError, plural
from nst_video.media import open_writer
from nst_video.media.files import (
    atomic_write_bytes,
    bytes_signature,
    file_signature,
    temporary_name,
)
from nst_video.media.images import encode_image
from nst_video.media.writers import (
    OUTPUT_FRAME_NAME,
    is_directory_output,
)
from nst_video.pipeline.outputs import (
    check_replaceable,
    foreign_frames,
    frame_number,
    is_our_partial,
    numbered_frames,
)
from nst_video.progress import Callback, Message, ignore
from nst_video.video.segments import Segment, blend_weight
from nst_video.workdir.manifest import (
    Job,
    Manifest,
    Plan,
)
from nst_video.workdir.store import WorkDir


def encode(work: WorkDir, overwrite: bool, callback: Callback = ignore) -> str:
    """Write the output from the finished frames. Idempotent: safe to re-run after a crash.

    What it writes is claimed in the manifest (size and digest) before it is renamed into
    place, so a later run recognises its own output by content, never by path alone.
    """
    manifest = work.manifest()
    plan = manifest.require_plan(work.path)
    indices = plan.indices
    missing = [i for i in indices if not work.frames.has_frame(i)]
    if missing:
        raise ResumeError(
            f"{plural(len(missing), 'frame')} not rendered yet (first: {missing[0]}); "
            f"run: nst-video resume {work.path}"
        )
    output = manifest.job.output
    callback(Message(f"encoding {plural(len(indices), 'frame')} to {output}"))
    if is_directory_output(output):
        _encode_directory(work, manifest, plan, overwrite)
    else:
        _encode_file(work, manifest, plan, overwrite)
    manifest.encode = "done"
    work.write_manifest(manifest)
    return output


def _encode_file(work: WorkDir, manifest: Manifest, plan: Plan, overwrite: bool) -> None:
    output = Path(manifest.job.output)
    key = os.path.abspath(output)
    if manifest.partial and is_our_partial(Path(manifest.partial), output):
        Path(manifest.partial).unlink(missing_ok=True)  # a killed encode's temporary file
    partial = temporary_name(output, "partial")
    ours = manifest.owns(output)
    owned = dict(manifest.owned)
    manifest.encode, manifest.partial = "started", str(partial)
    work.write_manifest(manifest)

    def claim(finished: Path) -> None:
        # Until the rename, an older file of ours may still be the one at the path: both count.
        signature = file_signature(finished)
        assert signature is not None  # the writer just finished it
        manifest.owned = {**owned, key: [*owned.get(key, []), signature]}
        work.write_manifest(manifest)

    writer = open_writer(
        output,
        plan.size,
        plan.fps,
        overwrite=overwrite or ours,
        partial=partial,
        before_commit=claim,
        **_writer_options(manifest.job, plan),
    )
    with writer:
        for frame in final_frames(work, plan.indices, plan.segments):
            writer.write(frame)
    manifest.owned = {**owned, key: manifest.owned[key][-1:]}
    manifest.partial = None


def _encode_directory(work: WorkDir, manifest: Manifest, plan: Plan, overwrite: bool) -> None:
    """Numbered frames into the directory: ours (or, with --overwrite, any numbered frame) are
    replaced, and numbered frames past the end of this render (a longer render's, which would
    make a mixed sequence) removed. Frames before its first are kept: a clip may be rendered
    in pieces (--start). Nothing else is touched."""
    directory = Path(manifest.job.output)
    indices = plan.indices
    new = {}
    for index, frame in zip(indices, final_frames(work, indices, plan.segments), strict=True):
        name = OUTPUT_FRAME_NAME.format(index)
        new[os.path.abspath(directory / name)] = bytes_signature(encode_image(frame, name))
    existing = numbered_frames(directory)
    foreign = [
        p
        for p in existing
        if frame_number(p) >= plan.start
        and not manifest.owns(p)
        and file_signature(p) != new.get(os.path.abspath(p))
    ]
    if foreign and not overwrite:
        raise foreign_frames(directory, foreign)
    owned = dict(manifest.owned)
    claimed = {key: [*owned.get(key, []), sig] for key, sig in new.items()}
    manifest.encode, manifest.owned = "started", {**owned, **claimed}
    work.write_manifest(manifest)
    # The output as given: its trailing '/' says "directory" even before it exists.
    output = manifest.job.output
    with open_writer(output, plan.size, plan.fps, overwrite=True, start_index=plan.start) as writer:
        for frame in final_frames(work, indices, plan.segments):
            writer.write(frame)
    # Frames of an older, longer render would make a mixed sequence: only ours (or, with
    # --overwrite, numbered frames the user let us replace) are here to remove.
    removed = {os.path.abspath(p) for p in existing if frame_number(p) >= plan.stop}
    for path in removed:
        Path(path).unlink(missing_ok=True)
    kept = {k: v for k, v in owned.items() if k not in removed}
    manifest.owned = {**kept, **{key: [sig] for key, sig in new.items()}}


def _writer_options(job: Job, plan: Plan) -> dict[str, Any]:
    video = job.settings.video
    options: dict[str, Any] = {"crf": video.crf}
    if video.codec:
        options["codec"] = video.codec
    if video.audio and plan.has_audio:
        options.update(
            audio_from=job.input,
            audio_start=float(plan.start / plan.fps),
            audio_duration=float((plan.stop - plan.start) / plan.fps),
        )
    return options


def write_report(work: WorkDir, indices: range, report: str | None, overwrite: bool) -> None:
    """One JSON object per frame, gathered from the per-frame statistics in the work dir.

    Follows the output's rules: an existing file needs --overwrite unless it is a report we
    wrote (claimed in the manifest by size and digest before it is renamed into place).
    """
    if not report:
        return
    path = Path(report)
    manifest = work.manifest()
    check_replaceable(path, overwrite, manifest)
    lines = [json.dumps(work.frames.read_stats(i), sort_keys=True) for i in indices]
    data = ("\n".join(lines) + "\n").encode()
    key, owned = os.path.abspath(path), dict(manifest.owned)
    signature = bytes_signature(data)
    manifest.owned = {**owned, key: [*owned.get(key, []), signature]}
    work.write_manifest(manifest)
    atomic_write_bytes(path, data)
    manifest.owned = {**owned, key: [signature]}
    work.write_manifest(manifest)


def final_frames(
    work: WorkDir, indices: range, segments: Sequence[Segment] | None
) -> Iterator[np.ndarray]:
    """The frames to encode: the rendered ones, crossfaded over each segment's overlap."""
    overlaps = {}
    for segment in segments or ():
        for index in segment.overlap:
            overlaps[index] = segment
    for index, frame in zip(indices, work.frames.iter_frames(indices), strict=True):
        segment = overlaps.get(index)
        if segment is None:
            yield frame
            continue
        warm = next(work.segment_frames(segment).iter_frames(range(index, index + 1)))
        alpha = blend_weight(segment, index)
        mixed = (1 - alpha) * frame.astype(np.float32) + alpha * warm.astype(np.float32)
        yield np.rint(mixed).astype(np.uint8)
