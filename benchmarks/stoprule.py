"""What each extra evaluation of a frame buys, and where stop rules would end (issue 24).

Renders a clip like `nst-video video` with the budgets given (the reference: today's, 300 for
the first frame and 100 for later ones) while recording every frame's best iterate and best
loss after EVERY evaluation (progress events with `log_every` 1). Then, without rendering
again:

* per checkpoint k: each frame's best iterate after k evaluations (its final one if it stopped
  earlier), scored by the independent VGG16s (style and content distance, metrics.py), its
  warping error against the reference's previous output, and its loss; as a ratio to the
  reference's final frames (first frame and later frames apart);
* per stop rule `TOLERANCE:WINDOW[:CAP]` (optimize._Tracker's rule: stop when the best loss
  improved by at most TOLERANCE relative over WINDOW evaluations, or at CAP): the evaluations it
  would spend per frame and the same measures at that point.

A replay holds each frame's start fixed (the reference's previous output): it prices a rule
per frame; the chain a rule makes is then rendered for real (`python -m benchmarks defaults`).

    OMP_NUM_THREADS=1 python -m benchmarks stoprule --input tree.avi --style starry.jpg \\
        --dedupe --frames 20 --size 256 --networks hed tumor --cache bench-out/score-cache \\
        --rules 1e-3:20 2e-3:10 5e-3:5 1:1:30 --json bench-out/stoprule.json
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.calib import apply, parse_variant
from benchmarks.harness import (
    Result,
    Table,
    add_budget_options,
    add_clip_options,
    add_network_options,
    extract_inputs,
    progress,
    read_frames,
    render,
    with_budgets,
    with_network,
    write_frames,
)
from benchmarks.metrics import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    _gram,
    _relative,
    flows_between,
    make_scorers,
)
from nst_video.config import ComputeConfig, Settings
from nst_video.media.images import read_image
from nst_video.progress import ITERATE, FrameDone, FrameStarted, Iteration, asking
from nst_video.video.flow import FrameFlow

SUMMARY = "what each extra evaluation buys, and where stop rules would end (replayed)"
LATER_CHECKPOINTS = (5, 10, 15, 20, 25, 30, 40, 50, 70, 100)
FIRST_CHECKPOINTS = (50, 100, 150, 200, 250, 300)


@dataclass
class FrameTrace:
    """One frame's best loss and best iterate (output size, uint8) after each evaluation."""

    index: int
    init: str
    losses: list[float] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    cpu_start: float = 0.0
    cpu_seconds: float = 0.0

    def at(self, evaluations: int) -> np.ndarray:
        """The best iterate after `evaluations` (the last one when the frame stopped before)."""
        return self.images[min(evaluations, len(self.images)) - 1]


class Recorder:
    """A progress callback that keeps a FrameTrace per frame."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.frames: list[FrameTrace] = []
        asking(self, ITERATE)

    def __call__(self, event: object) -> None:
        if isinstance(event, FrameStarted):
            self.frames.append(FrameTrace(event.index, event.init, cpu_start=time.process_time()))
        elif isinstance(event, Iteration) and self.frames:
            trace = self.frames[-1]
            trace.losses.append(event.loss)
            trace.images.append(_crop(event.image, self.shape))
        elif isinstance(event, FrameDone) and self.frames:
            self.frames[-1].cpu_seconds = time.process_time() - self.frames[-1].cpu_start


def _crop(image: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """The frame inside an iterate: the optimized canvas carries a mirrored margin all round."""
    assert image is not None
    top, left = (image.shape[0] - shape[0]) // 2, (image.shape[1] - shape[1]) // 2
    return np.ascontiguousarray(image[top : top + shape[0], left : left + shape[1]])


def stop_point(losses: list[float], tolerance: float, window: int, cap: int | None) -> int:
    """The evaluations the rule would spend (optimize._Tracker's test after each evaluation)."""
    budget = len(losses) if cap is None else min(cap, len(losses))
    for count in range(window + 1, budget + 1):
        before, best = losses[count - window - 1], losses[count - 1]
        if before - best <= tolerance * abs(before):
            return count
    return budget


class Scores:
    """Independent VGG16 distances and the warping error of frame t's picture, cached."""

    def __init__(
        self,
        names: list[str],
        cache: Path,
        style: np.ndarray,
        inputs: list[np.ndarray],
        flows: list[FrameFlow],
        finals: list[np.ndarray],
    ):
        self.scorers = make_scorers(names, cache)
        self.flows, self.finals = flows, finals
        side = max(inputs[0].shape[:2])
        self.grams = [s.style_grams(style, side) for s in self.scorers]
        self.content = [[s.features(x)[CONTENT_LAYER] for x in inputs] for s in self.scorers]
        self.columns = [f"{s.name}_{k}" for s in self.scorers for k in ("style", "content")]
        self._memo: dict[tuple[int, bytes], dict[str, float]] = {}

    def __call__(self, t: int, picture: np.ndarray) -> dict[str, float]:
        from nst_video.video import flow

        key = (t, hashlib.sha1(picture.tobytes()).digest())
        if key not in self._memo:
            values: dict[str, float] = {}
            for scorer, grams, content in zip(self.scorers, self.grams, self.content, strict=True):
                out = scorer.features(picture)
                values[f"{scorer.name}_style"] = float(
                    np.mean([_relative(_gram(out[n]), grams[n]) for n in STYLE_LAYERS])
                )
                values[f"{scorer.name}_content"] = _relative(out[CONTENT_LAYER], content[t])
            if t > 0:
                values["warp"] = flow.warping_error(self.finals[t - 1], picture, self.flows[t - 1])
            self._memo[key] = values
        return self._memo[key]


def _mean(rows: list[dict[str, float]], key: str) -> float:
    return float(np.mean([r[key] for r in rows if key in r]))


def measures(scores: Scores, frames: list[FrameTrace], spend: list[int]) -> dict[str, float]:
    """Mean measures of `frames` at `spend[i]` evaluations each, with the mean loss ratio."""
    spend = [min(n, len(f.losses)) for f, n in zip(frames, spend, strict=True)]
    rows = [scores(f.index, f.at(n)) for f, n in zip(frames, spend, strict=True)]
    out = {c: _mean(rows, c) for c in scores.columns}
    if any("warp" in r for r in rows):
        out["warp"] = _mean(rows, "warp")
    out["loss"] = float(np.mean([f.losses[n - 1] / f.losses[-1]
                                 for f, n in zip(frames, spend, strict=True)]))  # fmt: skip
    out["evaluations"] = float(np.mean(spend))
    return out


def ratios(values: dict[str, float], reference: dict[str, float]) -> list[Any]:
    """Each measure as a ratio to the reference's (1.02: 2% further / higher)."""
    return [values[k] / reference[k] if reference.get(k) else None for k in reference
            if k != "evaluations"]  # fmt: skip


def parse_rule(text: str) -> tuple[float, int, int | None]:
    parts = text.split(":")
    return float(parts[0]), int(parts[1]), int(parts[2]) if len(parts) > 2 else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_clip_options(parser, frames=20)
    add_network_options(parser)
    add_budget_options(parser)
    parser.add_argument("--networks", nargs="*", default=["hed", "tumor"])
    parser.add_argument("--cache", type=Path, default=Path("bench-out/score-cache"))
    parser.add_argument("--rules", nargs="*", default=["1e-3:20", "2e-3:10", "5e-3:5"],
                        help="TOLERANCE:WINDOW[:CAP] stop rules to replay")  # fmt: skip
    parser.add_argument("--first-rules", nargs="*", default=["1e-3:20", "2e-3:20", "5e-3:20"],
                        help="the same for the first frame")  # fmt: skip
    parser.add_argument("--out", type=Path, help="keep the reference's frames and iterates here")
    parser.add_argument("--replay", type=Path, help="score an --out folder again, no render")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="settings for the reference render (e.g. loss.temporal_weight=300)",
    )


def table(title: str, rows: list[tuple[str, dict[str, float]]], reference: dict[str, float]):
    keys = [k for k in reference if k != "evaluations"]
    columns = ["stop", "evaluations", *keys, *(f"{k} ratio" for k in keys)]
    return Table(title, columns, [
        [name, values["evaluations"], *(values[k] for k in keys), *ratios(values, reference)]
        for name, values in rows
    ])  # fmt: skip


def record(args: argparse.Namespace) -> tuple[list[np.ndarray], list[np.ndarray], list]:
    """Render the reference: the inputs, its frames and every frame's trace (kept in --out)."""
    inputs, _, _ = extract_inputs(args)
    base = with_network(Settings(compute=ComputeConfig(device="cpu")), args)
    base = with_budgets(replace(base, image=replace(base.image, size=args.size)), args)
    base = replace(base, optim=replace(base.optim, log_every=1))
    base = apply(base, parse_variant(":" + ",".join(args.set))[1])
    recorder = Recorder(inputs[0].shape[:2])
    with tempfile.TemporaryDirectory() as tmp:
        in_dir, out_dir = Path(tmp) / "in", Path(tmp) / "out"
        write_frames(in_dir, inputs)
        render(in_dir, args.style, out_dir, Path(tmp) / "work", base, args.weights,
               progress=recorder)  # fmt: skip
        finals = read_frames(out_dir)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for f in recorder.frames:
            np.savez_compressed(args.out / f"trace_{f.index:05d}.npz", images=np.stack(f.images),
                                losses=np.array(f.losses), index=f.index, init=f.init,
                                cpu=f.cpu_seconds, input=inputs[f.index],
                                final=finals[f.index])  # fmt: skip
    return inputs, finals, recorder.frames


def replay(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray], list]:
    """What record() kept in `folder`."""
    inputs, finals, frames = [], [], []
    for path in sorted(folder.glob("trace_*.npz")):
        data = np.load(path)
        inputs.append(data["input"])
        finals.append(data["final"])
        frames.append(FrameTrace(int(data["index"]), str(data["init"]), list(data["losses"]),
                                 list(data["images"]), cpu_seconds=float(data["cpu"])))  # fmt: skip
    return inputs, finals, frames


def run(args: argparse.Namespace) -> Result:
    inputs, finals, frames = replay(args.replay) if args.replay else record(args)
    progress(f"rendered: evaluations {[len(f.losses) for f in frames]}")
    scores = Scores(args.networks, args.cache, read_image(args.style), inputs,
                    flows_between(inputs), finals)  # fmt: skip
    first, later = frames[:1], frames[1:]
    tables, data = [], {"frames": [
        {"index": f.index, "init": f.init, "losses": f.losses, "cpu_s": f.cpu_seconds}
        for f in frames
    ]}  # fmt: skip
    for title, group, checkpoints, rules in (
        ("first frame", first, FIRST_CHECKPOINTS, args.first_rules),
        ("later frames", later, LATER_CHECKPOINTS, args.rules),
    ):
        reference = measures(scores, group, [len(f.losses) for f in group])
        rows = [("reference", reference)]
        for k in checkpoints:
            rows.append((f"after {k}", measures(scores, group, [k] * len(group))))
        for text in rules:
            spend = [stop_point(f.losses, *parse_rule(text)) for f in group]
            rows.append((f"rule {text}", measures(scores, group, spend)))
            progress(f"{title} rule {text}: {spend}")
        tables.append(table(f"{title} ({len(group)})", rows, reference))
        data[title] = rows
    return Result(tables, data, [f"cpu s per frame: {[round(f.cpu_seconds, 1) for f in frames]}"])
