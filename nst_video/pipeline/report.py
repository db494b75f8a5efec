"""The HTML render report (`nst-video report`, `video --report-html`): one self-contained page
built from a work directory's files alone (manifest, per-frame statistics, finished frames, the
lock), so it works from file:// and from a shared folder, with no server and nothing fetched.

Charts are matplotlib's SVG, inlined; thumbnails are PNG data: URIs. Reads only: the liveness
comes from WorkDir.owner(), which never holds a lock a render waits on for more than an instant.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nst_video.config import REPORT, ReportConfig
from nst_video.errors import NstError, OutputError, ResumeError
from nst_video.media.files import (
    atomic_write_bytes,
    bytes_signature,
    file_signature,
    is_within,
    refuse_existing,
    same_file,
)
from nst_video.media.images import encode_image
from nst_video.media.paths import check_not_inputs, check_writable_parent
from nst_video.media.sources import open_source
from nst_video.pipeline.outputs import input_files
from nst_video.pipeline.preflight import open_work_dir
from nst_video.pipeline.sweep import frame_ranges
from nst_video.progress import (
    Callback,
    Event,
    FrameDone,
    Message,
    asking,
    format_duration,
    ignore,
)
from nst_video.video.resize import resize_long_side
from nst_video.workdir.manifest import Job, Manifest
from nst_video.workdir.store import REPORT_FILE, WorkDir

_STATE = re.compile(r'data-state="(\w+)"')
# The loss terms, in the order the charts show them.
TERMS = ("content", "style", "tv", "temporal")


@dataclass(frozen=True)
class FrameRow:
    """One finished frame of one pass, from its statistics file."""

    index: int
    number: int  # the pass (1 for a single-pass render)
    stats: Mapping[str, Any]
    mtime: float | None = None  # when its statistics were written

    def value(self, key: str) -> float | None:
        value = self.stats.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None


@dataclass
class ThumbCache:
    """Thumbnails as data: URIs, kept between updates of a live report: a frame's output is
    encoded again only when its PNG changes (mtime and size), an input frame never."""

    outputs: dict[int, tuple[tuple[int, int], str]] = field(default_factory=dict)
    inputs: dict[int, str] = field(default_factory=dict)
    encoded: int = 0  # thumbnails encoded so far (tests check that updates reuse them)
    # Rows of earlier passes seen by a live report: a pass's folder is deleted once the next
    # pass is complete, and the page keeps its line.
    rows: dict[tuple[int, int], FrameRow] = field(default_factory=dict)


# --- reading the work directory ----------------------------------------------------------------


def read_rows(work: WorkDir, manifest: Manifest) -> list[FrameRow]:
    """The statistics of every finished frame, of every pass still on disk."""
    plan = manifest.require_plan(work.path)
    passes = manifest.job.settings.video.passes
    rows = []
    for number in range(1, passes + 1):
        store = work.pass_frames(number, passes)
        for index in plan.indices:
            stats = store.read_stats(index) if store.has_frame(index) else None
            if stats is not None:
                rows.append(FrameRow(index, number, stats, _mtime(store.stats_path(index))))
    return rows


def liveness(work: WorkDir, manifest: Manifest, done: int, total: int) -> str:
    """live (a process holds the lock), finished (every frame done), or stopped."""
    if work.owner() is not None:
        return "live"
    return "finished" if done >= total else "stopped"


# --- flags -------------------------------------------------------------------------------------


def flag_frames(rows: Sequence[FrameRow], config: ReportConfig = REPORT) -> dict[int, list[str]]:
    """Why each frame deserves a look (final-pass frames, or pass 1's while it is the only one):
    its evaluations hit the budget, its loss is far above its neighbours', little of it has
    reliable flow."""
    flags: dict[int, list[str]] = {}
    by_index = {r.index: r for r in _final(rows)}
    indices = sorted(by_index)
    for pos, index in enumerate(indices):
        row = by_index[index]
        why = []
        if row.stats.get("stop") == "budget":
            why.append(f"{_BUDGET} ({row.stats.get('iterations')})")
        loss = row.value("loss")
        near = [
            by_index[i].value("loss")
            for i in indices[max(0, pos - config.neighbours) : pos + config.neighbours + 1]
            if i != index and _same_kind(by_index[i], row)
        ]
        near = [v for v in near if v is not None]
        if loss is not None and near and loss > config.loss_ratio * statistics.median(near):
            ratio = loss / statistics.median(near)
            why.append(f"loss {ratio:.1f}x its neighbours' median")
        consistent = row.value("consistent")
        if consistent is not None and consistent < config.reliable_flow:
            why.append(f"reliable flow on {consistent:.0%} of the pixels")
        if why:
            flags[index] = why
    return flags


def _final(rows: Sequence[FrameRow]) -> list[FrameRow]:
    """Each frame's row from the latest pass that has it."""
    latest: dict[int, FrameRow] = {}
    for row in rows:
        if row.index not in latest or row.number > latest[row.index].number:
            latest[row.index] = row
    return [latest[i] for i in sorted(latest)]


def _same_kind(a: FrameRow, b: FrameRow) -> bool:
    """Frames with and without a temporal term have losses of different sizes."""
    independent = ("content", "cut")
    return (a.stats.get("init") in independent) == (b.stats.get("init") in independent)


# --- timing ------------------------------------------------------------------------------------


def estimate_eta(
    rows: Sequence[FrameRow], remaining_first: int, remaining_later: int
) -> float | None:
    """Seconds left: first frames (and cuts, full budget) and later frames at their own mean
    speeds; None before any frame finished."""
    first = [r.value("seconds") for r in rows if r.stats.get("init") in ("content", "cut")]
    later = [r.value("seconds") for r in rows if r.stats.get("init") not in ("content", "cut")]
    first = [s for s in first if s is not None]
    later = [s for s in later if s is not None]
    if not first and not later:
        return None
    mean_first = statistics.fmean(first) if first else statistics.fmean(later)
    mean_later = statistics.fmean(later) if later else mean_first
    return remaining_first * mean_first + remaining_later * mean_later


# --- pictures ----------------------------------------------------------------------------------


def data_uri(image: np.ndarray) -> str:
    data = encode_image(image, Path("thumb.png"))
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def thumbnails(
    work: WorkDir,
    manifest: Manifest,
    indices: Iterable[int],
    cache: ThumbCache,
    long_side: int,
) -> dict[int, tuple[str | None, str | None]]:
    """(input, output) thumbnails of `indices`, from the cache where still valid."""
    from PIL import Image

    store = work.frames
    wanted = sorted(set(indices))
    missing_inputs = [i for i in wanted if i not in cache.inputs]
    if missing_inputs:
        _read_inputs(manifest, missing_inputs, cache, long_side)
    result = {}
    for index in wanted:
        path = store.frame_path(index)
        try:
            info = path.stat()
        except OSError:
            result[index] = (cache.inputs.get(index), None)
            continue
        key = (info.st_mtime_ns, info.st_size)
        cached = cache.outputs.get(index)
        if cached is None or cached[0] != key:
            try:
                with Image.open(path) as image:
                    rgb = np.asarray(image.convert("RGB"))
            except OSError:
                result[index] = (cache.inputs.get(index), None)
                continue
            cache.outputs[index] = (key, data_uri(resize_long_side(rgb, long_side)))
            cache.encoded += 1
        result[index] = (cache.inputs.get(index), cache.outputs[index][1])
    return result


def _read_inputs(
    manifest: Manifest, indices: Sequence[int], cache: ThumbCache, long_side: int
) -> None:
    """Decodes the input frames `indices` (one pass over the span they cover); an input that
    cannot be read any more just has no thumbnail."""
    job = manifest.job
    try:
        source = open_source(job.input, job.settings.video.fps)
        frames = source.frames(indices[0], indices[-1] - indices[0] + 1)
    except Exception:  # noqa: BLE001 - the report shows outputs even when the input is gone
        return
    wanted = set(indices)
    try:
        for index, raw in zip(range(indices[0], indices[-1] + 1), frames, strict=False):
            if index in wanted:
                cache.inputs[index] = data_uri(resize_long_side(raw, long_side))
                cache.encoded += 1
    except Exception:  # noqa: BLE001 - a truncated input: the frames read so far
        pass
    finally:
        frames.close()  # ends the decoder when the span is read only in part


# --- charts ------------------------------------------------------------------------------------


def charts_svg(
    rows: Sequence[FrameRow],
    cuts: Sequence[int],
    boundaries: Sequence[int],
    flagged: Iterable[int],
    budget: Mapping[str, int],
) -> str:
    """One SVG (matplotlib) with a panel per quantity, frames along x; one line per pass."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    panels = [
        ("iterations", "evaluations"),
        ("seconds", "seconds"),
        *((term, f"{term} term") for term in TERMS),
        ("consistent", "reliable flow (fraction)"),
    ]
    figure = Figure(figsize=(9, 1.6 * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), 1, sharex=True)
    passes = sorted({r.number for r in rows})
    flagged = set(flagged)
    for ax, (key, label) in zip(axes, panels, strict=True):
        for number in passes:
            points = [(r.index, r.value(key)) for r in rows if r.number == number]
            points = [(i, v) for i, v in points if v is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                name = f"pass {number}" if len(passes) > 1 else None
                ax.plot(xs, ys, lw=1, marker=".", ms=3, label=name)
                marked = [(i, v) for i, v in points if i in flagged]
                if marked and number == passes[-1]:
                    mx, my = zip(*marked, strict=True)
                    ax.plot(mx, my, ls="none", marker="o", mfc="none", mec="red", ms=6)
        values = [y for line in ax.lines for y in line.get_ydata()]
        if key in TERMS and values and min(values) > 0 and max(values) > 10 * min(values):
            ax.set_yscale("log")  # a term spanning decades: each decade gets its ticks
            ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        if key == "iterations":
            for what, value in budget.items():
                ax.axhline(value, color="grey", ls=":", lw=1)
                ax.annotate(
                    f"budget ({what})", (0, value), xycoords=("axes fraction", "data"), fontsize=7
                )
        for cut in cuts:
            ax.axvline(cut, color="tab:red", lw=0.8, alpha=0.6)
        for start in boundaries:
            ax.axvline(start, color="tab:green", lw=0.8, ls="--", alpha=0.6)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        if len(passes) > 1 and ax is axes[0]:
            ax.legend(fontsize=7)
    axes[-1].set_xlabel("frame (red: scene cut, green dashed: segment start, circled: flagged)")
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text: smaller, searchable
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: no XML prolog or DOCTYPE


# --- the page ----------------------------------------------------------------------------------


def build_report(
    work: WorkDir, cache: ThumbCache | None = None, config: ReportConfig = REPORT
) -> str:
    """The page for the work directory as it is now (ResumeError: not a work directory, or
    its manifest is damaged or has no plan yet)."""
    cache = cache if cache is not None else ThumbCache()
    manifest = work.manifest()
    plan = manifest.require_plan(work.path)
    settings = manifest.job.settings
    passes = settings.video.passes
    rows = _remembered(read_rows(work, manifest), cache, passes)
    final = [r for r in rows if r.number == passes]
    total = len(plan.indices)
    state = liveness(work, manifest, len(final), total)
    flags = flag_frames(rows, config)
    cuts = [r.index for r in _final(rows) if r.stats.get("init") == "cut"]
    boundaries = [s.start for s in plan.segments or ()][1:]
    shown = [i for i in plan.indices if (i - plan.start) % config.every == 0]
    done_indices = {r.index for r in _final(rows)}
    # Hitting the budget is common (L-BFGS rarely converges in a frame's budget): such frames
    # are counted in the flagged section, not each shown.
    notable = [i for i, why in flags.items() if any(not w.startswith(_BUDGET) for w in why)]
    picked = sorted({*(i for i in shown if i in done_indices), *cuts, *notable})
    thumbs = thumbnails(work, manifest, picked, cache, config.thumb_size)
    budget = {"first": settings.video.first_iterations, "later": settings.video.iterations}
    chart = charts_svg(rows, cuts, boundaries, notable, budget) if rows else "<p>No frame yet.</p>"
    header = _header(work, manifest, rows, state, total, passes)
    refresh = (
        f'<meta http-equiv="refresh" content="{config.refresh_seconds}">' if state == "live" else ""
    )
    return _PAGE.format(
        refresh=refresh,
        title=html.escape(f"nst-video: {Path(manifest.job.output).name}"),
        header=header,
        strip=_strip(picked, thumbs, flags, cuts),
        charts=chart,
        flagged=_flag_table(flags, len(done_indices)),
    )


def _remembered(rows: list[FrameRow], cache: ThumbCache, passes: int) -> list[FrameRow]:
    """`rows`, plus the earlier passes' rows this cache saw whose files are gone since."""
    on_disk = {r.number for r in rows}
    for row in rows:
        cache.rows[(row.number, row.index)] = row
    kept = [r for key, r in cache.rows.items() if key[0] < passes and key[0] not in on_disk]
    return sorted([*rows, *kept], key=lambda r: (r.number, r.index))


def _header(
    work: WorkDir, manifest: Manifest, rows: Sequence[FrameRow], state: str, total: int, passes: int
) -> str:
    job = manifest.job
    settings = job.settings
    final = [r for r in rows if r.number == passes]
    started = _started(rows)
    latest = max((r.mtime for r in rows if r.mtime is not None), default=None)
    end = time.time() if state == "live" else latest
    elapsed = None if started is None or end is None else max(0.0, end - started)
    remaining = total * passes - len(rows)
    later_left = max(0, remaining - (0 if rows else 1))
    eta = estimate_eta(rows, 0 if rows else 1, later_left) if state != "finished" else 0.0
    owner = work.owner() if state == "live" else None
    status = {
        "live": f"live (pid {owner.get('pid') if owner else '?'} on "
        f"{owner.get('host') if owner else '?'})",
        "finished": "finished",
        "stopped": "stopped (no process holds the lock: `nst-video resume` continues it)",
    }[state]
    items = [
        ("State", status),
        (
            "Frames",
            f"{len(final)}/{total} done" + (f" (pass rows: {len(rows)})" if passes > 1 else ""),
        ),
        ("Input", job.input),
        ("Style", ", ".join(job.styles)),
        ("Output", job.output),
        ("Network", f"{settings.loss.model}" + (f" ({job.weights})" if job.weights else "")),
        ("Device", f"{settings.compute.device}, precision {manifest.precision or 'auto'}"),
        ("Size", "x".join(map(str, manifest.plan.size)) if manifest.plan else "?"),
        (
            "Settings",
            f"style weight {settings.loss.style_weight:g}, temporal weight "
            f"{settings.loss.temporal_weight:g}, evaluations {settings.video.first_iterations}"
            f" first / {settings.video.iterations} later, flow {settings.video.flow}, "
            f"passes {passes}",
        ),
        ("Started", _clock(started)),
        ("Elapsed", format_duration(elapsed)),
        ("ETA", format_duration(eta)),
        ("Updated", _clock(time.time())),
    ]
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in items
    )
    return f'<table class="head" id="state" data-state="{state}">{cells}</table>'


def _started(rows: Sequence[FrameRow]) -> float | None:
    """When the first frame began: its file's time less its render time."""
    if not rows:
        return None
    first = min(rows, key=lambda r: r.mtime if r.mtime is not None else math.inf)
    return None if first.mtime is None else first.mtime - (first.value("seconds") or 0.0)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _clock(when: float | None) -> str:
    if when is None:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))


def _strip(
    picked: Sequence[int],
    thumbs: Mapping[int, tuple[str | None, str | None]],
    flags: Mapping[int, list[str]],
    cuts: Sequence[int],
) -> str:
    cells = []
    for index in picked:
        source, output = thumbs.get(index, (None, None))
        imgs = "".join(
            f'<img src="{uri}" alt="{what} {index}">'
            for what, uri in (("input", source), ("output", output))
            if uri is not None
        )
        # Hitting the budget is summed up under the charts, not repeated on every thumbnail.
        why = [w for w in flags.get(index, []) if not w.startswith(_BUDGET)]
        notes = (["scene cut"] if index in cuts else []) + why
        css = " flagged" if why else ""
        caption = html.escape(f"frame {index}" + (": " + "; ".join(notes) if notes else ""))
        cells.append(
            f'<figure class="thumb{css}">{imgs}<figcaption>{caption}</figcaption></figure>'
        )
    return "".join(cells) or "<p>No frame yet.</p>"


def _flag_table(flags: Mapping[int, list[str]], done: int) -> str:
    budget = [i for i, why in flags.items() if any(w.startswith(_BUDGET) for w in why)]
    others = {i: [w for w in why if not w.startswith(_BUDGET)] for i, why in flags.items()}
    others = {i: why for i, why in others.items() if why}
    parts = []
    if budget:
        parts.append(
            f'<p id="budget">{_BUDGET.capitalize()} on {len(budget)} of {done} frames '
            f"({html.escape(frame_ranges(sorted(budget)))}): the optimizer was still lowering the "
            "loss when the frame's budget ran out; more evaluations would change them further."
            "</p>"
        )
    if others:
        rows = "".join(
            f"<tr><td>{index}</td><td>{html.escape('; '.join(why))}</td></tr>"
            for index, why in sorted(others.items())
        )
        parts.append(f"<table><tr><th>frame</th><th>why</th></tr>{rows}</table>")
    return "".join(parts) or "<p>No frame flagged.</p>"


_BUDGET = "evaluations hit the budget"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; color: #222; }}
table.head th {{ text-align: left; padding-right: 1em; }}
.strip {{ display: flex; flex-wrap: wrap; gap: 6px; }}
figure.thumb {{ margin: 0; padding: 3px; border: 1px solid #ccc; font-size: 11px; }}
figure.thumb.flagged {{ border-color: #d00; }}
figure.thumb img {{ display: inline-block; margin-right: 2px; }}
.charts svg {{ max-width: 100%; height: auto; }}
</style></head><body>
<h1>{title}</h1>
{header}
<h2>Frames (input | output)</h2>
<div class="strip">{strip}</div>
<h2>Per frame</h2>
<div class="charts">{charts}</div>
<h2>Flagged frames</h2>
{flagged}
</body></html>
"""


# --- writing -----------------------------------------------------------------------------------


class ReportWriter:
    """Writes the page to `path`, and again after each frame of a live render: the first write
    follows every output's rule (refuse_existing), later ones replace only the page this writer
    wrote (the same bytes still there), so a file the user put there meanwhile is kept."""

    def __init__(self, work: WorkDir, path: Path, overwrite: bool, config: ReportConfig = REPORT):
        self.work, self.path, self.config = work, Path(path), config
        # Ours without --overwrite: the work directory's own report.
        self.overwrite = overwrite or self.path == work.path / REPORT_FILE
        self.cache = ThumbCache()
        self._written: str | None = None
        self.state = "unknown"  # of the render, at the last write

    def check(self) -> None:
        """Before any work: the target is writable under the output rules (the work
        directory's own page: its folder may not exist before the render starts)."""
        if self.path != self.work.path / REPORT_FILE:
            check_writable_parent(self.path)
        refuse_existing(self.path, self.overwrite)

    def write(self) -> None:
        text = build_report(self.work, self.cache, self.config)
        self.state = _STATE.search(text).group(1)  # type: ignore[union-attr]
        page = text.encode()
        if self._written is None:
            refuse_existing(self.path, self.overwrite)
        elif file_signature(self.path) not in (self._written, None):
            raise OutputError(
                f"{self.path} was changed by someone else while the report was updated; "
                "it was kept: choose another path"
            )
        atomic_write_bytes(self.path, page)
        self._written = bytes_signature(page)


def open_report(work_dir: Path, output: Path | None, overwrite: bool) -> ReportWriter:
    """The writer of `nst-video report`: the work directory checked (one line when it is not
    one, or its manifest is damaged or has no plan), the target checked like every output."""
    work = open_work_dir(Path(work_dir))
    manifest = work.manifest()
    manifest.require_plan(work.path)
    path = Path(output) if output is not None else work.path / REPORT_FILE
    check_report_path(work, manifest.job, path, "-o")
    writer = ReportWriter(work, path, overwrite)
    writer.check()
    return writer


def check_report_path(work: WorkDir, job: Job, path: Path, what: str) -> None:
    """Never an input or the output, never inside the work directory but as its report.html."""
    try:  # every frame of an image sequence, as the render's own checks list them
        frames = input_files(open_source(job.input, job.settings.video.fps))
    except NstError:  # the input is gone: its path still names it
        frames = []
    weights = [Path(job.weights)] if job.weights else []
    inputs = [*frames, Path(job.input), *map(Path, job.styles), *weights]
    check_not_inputs({what: path, "output": None}, inputs)
    if same_file(path, job.output):
        raise OutputError(f"{what} {path} is the render's output; choose another path")
    own = work.path / REPORT_FILE
    if is_within(path, work.path) and not same_file(path, own):
        raise OutputError(
            f"{what} {path} is inside the work directory {work.path}, where nst-video writes only "
            f"its own files; use {own} or a path outside it"
        )


class LiveReport:
    """`video --report-html FILE`: the page rewritten after finished frames, at most so often
    that building it costs a small share of the render (config.live_share), thumbnails cached
    between writes. A failure to write it is said once and the render goes on."""

    def __init__(
        self, work_dir: Path, path: Path, overwrite: bool, job: Job, config: ReportConfig = REPORT
    ):
        self.work = WorkDir(Path(work_dir))
        check_report_path(self.work, job, Path(path), "--report-html")
        self.writer = ReportWriter(self.work, Path(path), overwrite, config)
        self.writer.check()
        self.config = config
        self._last = -math.inf  # when the last write ended (monotonic)
        self._cost = 0.0  # seconds the last write took
        self.failed = False
        self.writes = 0

    def wrap(self, callback: Callback) -> Callback:
        def forward(event: Event) -> None:
            callback(event)
            if isinstance(event, FrameDone) and event.index >= 0:
                due = time.monotonic() - self._last >= self._cost / self.config.live_share
                if due:
                    self.update(callback)

        return asking(forward, like=callback)

    def update(self, callback: Callback = ignore) -> None:
        if self.failed or not self.work.exists():
            return
        began = time.monotonic()
        try:
            self.writer.write()
        except NstError as exc:
            self.failed = True
            callback(Message(f"--report-html is no longer updated: {exc}"))
            return
        self.writes += 1
        self._last = time.monotonic()
        self._cost = self._last - began


def report_summary(work: WorkDir) -> dict[str, Any]:
    """Machine-readable essentials of the report (for tests and scripts)."""
    manifest = work.manifest()
    rows = read_rows(work, manifest)
    return {"frames": len(rows), "flags": flag_frames(rows)}


def check_work_dir(path: Path) -> WorkDir:
    """A work directory with a readable manifest and a plan, or one line saying what it is."""
    work = WorkDir(path)
    if not path.is_dir():
        raise ResumeError(f"{path} is not a render work directory (not a directory)")
    manifest = work.manifest()
    manifest.require_plan(work.path)
    return work
