"""What a render may write and where: outputs and reports never replace a file nst-video did not
write (without --overwrite), never an input, never a path inside the work directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nst_video.errors import OutputError
from nst_video.media import FrameSource
from nst_video.media.files import (
    check_name_fits,
    is_temporary,
    is_within,
    refuse_existing,
    require_regular,
    same_file,
)
from nst_video.media.paths import check_not_inputs, check_writable_parent
from nst_video.media.writers import (
    OUTPUT_FRAME,
    OUTPUT_FRAME_NAME,
    check_video_output,
    is_directory_output,
)
from nst_video.models import chosen_weights
from nst_video.workdir.manifest import (
    Job,
    Manifest,
)
from nst_video.workdir.store import WorkDir


def input_files(source: FrameSource) -> list[Path]:
    """The files a source reads: the video file, or every image of a sequence."""
    return list(source.files)


def check_paths(job: Job, work: WorkDir, source: FrameSource) -> None:
    """No output or report may be an input (video, frames, styles, weights) or each other, and
    none may lie inside the work directory: refused always, even with --overwrite."""
    frames = input_files(source)
    weights = chosen_weights(job.weights)
    inputs = [*frames, *map(Path, job.styles), *([weights] if weights else [])]
    check_not_inputs({"output": job.output}, inputs)
    check_not_inputs({"--report": job.report}, inputs)
    if is_directory_output(job.output):
        # Not the folder the input frames are in either: our frames would join them.
        check_not_inputs({"output directory": job.output}, sorted({f.parent for f in frames}))
    elif job.report is not None and same_file(job.report, job.output):
        raise OutputError(f"--report {job.report} is the output; choose another path")
    inside = [("input", f) for f in sorted({f.parent for f in frames})]
    inside += [("output", job.output), ("--report", job.report)]
    for what, path in inside:
        if path is not None and is_within(path, work.path):
            raise inside_work_dir(work, what, path)


def inside_work_dir(work: WorkDir, what: str, path: str | Path) -> OutputError:
    return OutputError(
        f"{what} {path} is inside the work directory {work.path}; choose another --work-dir"
    )


def _ours(manifest: Manifest | None, path: str | Path) -> bool:
    return manifest is not None and manifest.owns(path)


def check_output(output: str, overwrite: bool, manifest: Manifest | None, start: int = 0) -> None:
    """Refuse early (before hours of work) to overwrite an output this render did not make
    (in a frame folder: the numbered frames from `start` on, which it replaces or removes)."""
    check_video_output(output)
    if not is_directory_output(output):
        check_writable_parent(Path(output))
        check_replaceable(Path(output), overwrite, manifest)
        return
    target = Path(output)
    if os.path.lexists(target) and not target.is_dir():
        require_regular(target)  # a FIFO or a device: named as such
        raise OutputError(f"{target} is a file; a directory output needs a directory")
    for frame in numbered_frames(target):
        require_regular(frame)  # refused before any work, not when the encoder reaches it
    touched = [p for p in numbered_frames(target) if frame_number(p) >= start]
    foreign = [p for p in touched if not _ours(manifest, p)]
    if foreign and not overwrite:
        raise foreign_frames(target, foreign)


def check_replaceable(path: Path, overwrite: bool, manifest: Manifest | None) -> None:
    """A file may be replaced when it is byte for byte one we wrote there, or with
    --overwrite; anything else at the path stays (refuse_existing: never a non-regular file)."""
    refuse_existing(path, overwrite or _ours(manifest, path))


def numbered_frames(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if OUTPUT_FRAME.match(p.name))


def foreign_frames(directory: Path, foreign: list[Path]) -> OutputError:
    return OutputError(
        f"{directory} holds {len(foreign)} numbered frames this render did not write "
        f"(first: {foreign[0].name}); pass --overwrite to replace them (other files there "
        "are never touched)"
    )


def is_our_partial(partial: Path, output: Path) -> bool:
    """Whether the `partial` a manifest names may be deleted: a regular file in the output's
    own folder (symlinks resolved), with exactly the name of a temporary file of this output.
    It is the one path a manifest names outside the work directory (a temporary file must be
    beside its output to be renamed into place), so it is checked this closely."""
    try:
        regular = stat.S_ISREG(os.lstat(partial).st_mode)
    except OSError:
        return False
    same_folder = partial.parent.resolve() == output.parent.resolve()
    return regular and same_folder and is_temporary(partial.name, of=output.name)


def frame_number(path: Path) -> int:
    """The frame index in an output frame's name (frame_000123.png: 123)."""
    return int(path.stem.rpartition("_")[2])


def check_names(job: Job, work: WorkDir) -> None:
    """Every name the render will create fits its filesystem, temporary names included."""
    output = Path(job.output)
    if is_directory_output(job.output):
        output = output / OUTPUT_FRAME_NAME.format(0)
    check_name_fits(output, "output")
    check_name_fits(work.manifest_path, "work directory")
    if job.report:
        check_name_fits(job.report, "--report")
