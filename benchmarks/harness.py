"""What every benchmark shares: its arguments, the machine it ran on, one JSON result schema and
the Markdown made from that JSON, and the in-process render through the pipeline's entry point.

A benchmark module defines `SUMMARY` (one line), `add_arguments(parser)` and `run(args) ->
Result`; `python -m benchmarks NAME` (benchmarks/__main__.py) parses, runs it, prints the
Markdown and writes the JSON (--json) and the Markdown (--markdown).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from nst_video.config import VIDEO, LossConfig, Settings, settings_from_flat
from nst_video.models import MODEL_NAMES

# The version of the result document below; bump it when a key changes meaning.
SCHEMA = "nst-video-benchmark/1"
# The seed tutorial's way: every frame from its content with exactly this many L-BFGS
# evaluations, no early stop, no warm start, no temporal term.
TUTORIAL_EVALUATIONS = 300
# A frame whose mean absolute difference to the last kept one is below one grey level is a
# duplicate: decoders and encoders never make a real change of the scene that small.
DEDUPE_THRESHOLD = 1.0 / 255.0


@dataclass
class Table:
    """One Markdown table: a title, column names and rows of cells (numbers or text)."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class Result:
    """What a benchmark returns: its tables (the figures docs/*.md quote), every raw figure
    (`data`, free-form JSON) and notes (lines printed under the tables)."""

    tables: list[Table]
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- arguments ---------------------------------------------------------------------------------


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """--json and --markdown: where the result document and its Markdown go (both optional)."""
    parser.add_argument("--json", type=Path, help="write the result document (JSON) here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown tables here")


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """--model, --weights and --style-weight, the same in every benchmark."""
    parser.add_argument(
        "--model",
        default=LossConfig().model,
        choices=MODEL_NAMES,
        help="network the weights file holds (default: the library's)",
    )
    parser.add_argument("--weights", help="weights file for --model (default: $NST_VIDEO_WEIGHTS)")
    parser.add_argument(
        "--style-weight", type=float, help="style weight (default: the library's default)"
    )


def add_clip_options(
    parser: argparse.ArgumentParser, *, frames: int, start: int = 0, size: int = 256
) -> None:
    """--input, --style, --start, --frames, --size and --dedupe: which frames, how large."""
    parser.add_argument("--input", required=True, help="video file or image sequence")
    parser.add_argument("--style", required=True, help="style image")
    parser.add_argument("--start", type=int, default=start, help="first input frame")
    parser.add_argument("--frames", type=int, default=frames, help="frames to use (after dedupe)")
    parser.add_argument("--size", type=int, default=size, help="long side of the render")
    parser.add_argument(
        "--dedupe",
        action="store_true",
        help="drop frames (nearly) identical to the previous kept one (mean abs diff < 1/255)",
    )


def add_budget_options(parser: argparse.ArgumentParser) -> None:
    """--first-iterations and --iterations: the video budgets (the library's when omitted)."""
    parser.add_argument("--first-iterations", type=int, help="nst-video default if omitted")
    parser.add_argument("--iterations", type=int, help="nst-video default if omitted")


def with_budgets(settings: Settings, args: argparse.Namespace) -> Settings:
    """`settings` with the video budgets the command line asked for (as `nst-video video`
    reads them: config.settings_from_flat)."""
    flat = {
        name: getattr(args, name)
        for name in ("first_iterations", "iterations")
        if getattr(args, name, None) is not None
    }
    return settings_from_flat(settings, command=VIDEO, **flat)


def add_tutorial_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tutorial-evaluations",
        type=int,
        default=TUTORIAL_EVALUATIONS,
        help=f"evaluations per frame of the seed tutorial's way (its {TUTORIAL_EVALUATIONS})",
    )


def with_network(settings: Settings, args: argparse.Namespace) -> Settings:
    """`settings` with the network and style weight the command line asked for."""
    flat = {"model": args.model}
    if getattr(args, "style_weight", None) is not None:
        flat["style_weight"] = args.style_weight
    return settings_from_flat(settings, command=VIDEO, **flat)


def network_label(args: argparse.Namespace) -> str:
    weights = Path(args.weights).name if args.weights else "default download"
    return f"{args.model} ({weights})"


# --- machine and load --------------------------------------------------------------------------


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: other processes' share of a shared machine."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:  # not on every OS
        return None


def machine() -> dict[str, Any]:
    """What ran the benchmark, read when it starts."""
    import torch

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# --- the result document and its Markdown --------------------------------------------------------


def _plain(value: Any) -> Any:
    """Arguments as JSON can hold them (paths as text)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def document(
    name: str, argv: Sequence[str], args: argparse.Namespace, result: Result, began: float,
    load_before: list[float] | None, started: datetime, machine_info: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The one JSON shape every benchmark writes."""
    return {
        "schema": SCHEMA,
        "benchmark": name,
        "command": " ".join(["python", "-m", "benchmarks", name, *argv]),
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - began, 1),
        "cpu_seconds": round(time.process_time(), 1),
        "machine": machine_info,
        "load": {"before": load_before, "after": load_average()},
        "network": network_label(args) if hasattr(args, "model") else None,
        "arguments": {k: _plain(v) for k, v in vars(args).items()},
        "tables": [vars(table) for table in result.tables],
        "notes": result.notes,
        "data": result.data,
    }


def cell(value: Any) -> str:
    """A table cell: None as '-', floats with 4 significant digits (small ones as 1.23e-04)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-2:
            return f"{value:.2e}"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def markdown(doc: dict[str, Any]) -> str:
    """The Markdown of a result document: what ran where, then each table, then the notes."""
    box = doc["machine"]
    load = doc["load"]
    where = f"{box['cpu']}, {box['cores']} cores, {box['torch_threads']} torch threads"
    if box.get("gpu"):
        where += f", {box['gpu']}"
    lines = [f"`{doc['command']}`", ""]
    facts = [where, f"torch {box['torch']}"]
    if doc.get("network"):
        facts.insert(0, doc["network"])
    if load["before"] is not None and load["after"] is not None:
        facts.append(f"load {load['before'][0]:.1f} before, {load['after'][0]:.1f} after")
    facts.append(f"{doc['seconds']:.0f} s wall, {doc['cpu_seconds']:.0f} s CPU")
    lines += ["; ".join(facts), ""]
    for table in doc["tables"]:
        if table["title"]:
            lines += [f"**{table['title']}**", ""]
        lines.append("| " + " | ".join(table["columns"]) + " |")
        lines.append("|" + "---|" * len(table["columns"]))
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table["rows"]]
        lines.append("")
    lines += [f"- {note}" for note in doc["notes"]]
    return "\n".join(lines).rstrip() + "\n"


def write_outputs(doc: dict[str, Any], args: argparse.Namespace) -> str:
    """Print the Markdown; write the JSON and the Markdown where asked. Returns the Markdown."""
    text = markdown(doc)
    print(text)
    if getattr(args, "json", None):
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    if getattr(args, "markdown", None):
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    return text


def run_benchmark(name: str, module: Any, argv: Sequence[str]) -> dict[str, Any]:
    """Parse `argv` for benchmark `name`, run it and write its outputs; returns the document."""
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks {name}", description=module.SUMMARY
    )
    module.add_arguments(parser)
    add_output_options(parser)
    args = parser.parse_args(list(argv))
    started = datetime.now(timezone.utc)  # noqa: UP017 (3.10 has no datetime.UTC)
    load_before, machine_info, began = load_average(), machine(), time.perf_counter()
    result = module.run(args)
    doc = document(name, argv, args, result, began, load_before, started, machine_info)
    write_outputs(doc, args)
    return doc


def progress(text: str) -> None:
    """A line on stderr while a benchmark runs (stdout carries only the Markdown)."""
    print(text, file=sys.stderr, flush=True)


# --- inputs ------------------------------------------------------------------------------------


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float32) - b.astype(np.float32)))) / 255.0


def extract_inputs(args: argparse.Namespace) -> tuple[list[np.ndarray], int, str]:
    """The input frames at the render size (--input, --start, --frames, --size, --dedupe); also
    how many were read and the clip's frame rate as text."""
    from nst_video.media import open_source
    from nst_video.video.resize import resize_long_side

    source = open_source(args.input)
    fps = f"{source.fps.numerator}/{source.fps.denominator}"
    kept: list[np.ndarray] = []
    read = 0
    for raw in source.frames(args.start):
        read += 1
        frame = resize_long_side(raw, args.size)
        dedupe = getattr(args, "dedupe", False)
        if dedupe and kept and mean_abs_diff(frame, kept[-1]) < DEDUPE_THRESHOLD:
            continue
        kept.append(frame)
        if len(kept) == args.frames:
            break
    if len(kept) < 2:
        raise SystemExit(f"benchmarks: need at least 2 frames, got {len(kept)}")
    return kept, read, fps


def write_frames(directory: Path, frames: list[np.ndarray]) -> None:
    """`frames` as frame_00000.png... in a fresh `directory` (a folder the benchmark owns)."""
    from nst_video.media import write_image

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for index, frame in enumerate(frames):
        write_image(directory / f"frame_{index:05d}.png", frame)


def read_frames(directory: Path, pattern: str = "*.png") -> list[np.ndarray]:
    from nst_video.media import read_image

    return [read_image(path) for path in sorted(directory.glob(pattern))]


def read_report(path: Path) -> list[dict[str, Any]]:
    """The rows of a render's --report file (one JSON object a frame)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- renders -----------------------------------------------------------------------------------


def tutorial_settings(settings: Settings, evaluations: int = TUTORIAL_EVALUATIONS) -> Settings:
    """The seed tutorial's way with `settings`' network and losses: every frame from its
    content, exactly `evaluations` evaluations (no early stop), no warm start."""
    return replace(
        settings,
        optim=replace(settings.optim, tolerance=0.0, iterations=evaluations),
        video=replace(settings.video, init="content", first_iterations=evaluations),
    )


def render(
    input_path: str | Path,
    style: str | Path,
    frames_dir: Path,
    work_dir: Path,
    settings: Settings,
    weights: str | None,
    report: Path | None = None,
    workers: int = 1,
    restart: bool = True,
    make_engine: Any = None,
    progress: Any = None,
) -> float:
    """What `nst-video video INPUT -s STYLE -o FRAMES_DIR/ --report REPORT --overwrite
    --restart` does, with any Settings: the API's stylize_video; returns the wall seconds.
    restart=False continues the frames already in `work_dir` (same settings), like a rerun.
    `make_engine` (a benchmark's own engine, e.g. one already built) goes to the pipeline's
    entry point, render_video, in place of the API's engine factory. `progress` receives the
    events (nst_video.progress)."""
    from nst_video.api import stylize_video, video_job
    from nst_video.pipeline.job import render_video
    from nst_video.pipeline.preflight import Parallel
    from nst_video.progress import ignore

    output = str(frames_dir) + "/"
    start = time.perf_counter()
    if make_engine is None:
        stylize_video(input_path, style, output, work_dir=work_dir, settings=settings,
                      weights=weights, report=report, overwrite=True, restart=restart,
                      workers=workers, progress=progress)  # fmt: skip
    else:
        job = video_job(input_path, [style], output, weights, report, settings)
        render_video(job, work_dir, make_engine, overwrite=True, restart=restart,
                     parallel=Parallel(workers), callback=progress or ignore)  # fmt: skip
    return time.perf_counter() - start
