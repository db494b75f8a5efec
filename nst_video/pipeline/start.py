"""How a frame starts: from its content, from the earlier frames' outputs warped onto it (pass
1), or from its own last result blended with its warped neighbours (a later pass of --passes);
and the window of earlier frames a sweep keeps for that."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nst_video.config import VideoConfig
from nst_video.core.engine import Temporal
from nst_video.video import flow


@dataclass(frozen=True)
class FrameStart:
    """How one frame's optimization starts: its first image, iteration budget and temporal
    target."""

    image: np.ndarray  # the optimizer's first iterate
    budget: int
    init: str  # content | warped | previous | cut
    temporal: Temporal | None
    consistent: float | None
    # Share of the pixels whose warm start came from an offset > 1 (hidden in the previous
    # frame, reliably tracked to an earlier one); None with offset 1 alone.
    recovered: float | None = None


@dataclass(frozen=True)
class Earlier:
    """A frame `offset` frames before the one being rendered: its input (at the render's size)
    and its finished output."""

    offset: int
    input: np.ndarray
    output: np.ndarray


def temporal_start(
    content: np.ndarray,
    earlier: Sequence[Earlier],
    video: VideoConfig,
    flows: Mapping[int, flow.FrameFlow] | None = None,
    cut_flow: flow.FrameFlow | None = None,
) -> FrameStart:
    """How a frame starts, given the earlier frames at (some of) `video.temporal_offsets`.

    Without the previous frame (offset 1) it starts from its content, as a first frame does;
    so does a scene cut (judged on the flow from the previous frame). Otherwise every earlier
    frame's output is warped onto this one by the flow computed directly between the two
    input frames, and weighted by Ruder et al.'s long-term masks, so each pixel is tied to
    the nearest earlier frame where it was visible. The caller passes only frames of the same
    shot (none from before a cut or before the render's first frame). `flows` holds the flows
    already computed (in the background), by offset; the others are computed here.

    "Earlier" means earlier in the pass: a backward pass of --passes passes the frames after
    this one (offset k = frame i+k), and `cut_flow`, the flow the scene cut is judged on in
    place of the one from offset 1 (there: the forward pair, as pass 1 judged it).
    """
    by_offset = {e.offset: e for e in earlier if e.offset in video.temporal_offsets}
    if 1 not in by_offset or video.init == "content":
        # No history, or independent frames (for comparison): the first frame's budget.
        return FrameStart(content, video.first_iterations, "content", None, None)
    known = dict(flows or {})

    def flow_from(offset: int) -> flow.FrameFlow:
        motion = known.get(offset)
        if motion is None:
            motion = flow.frame_flow(by_offset[offset].input, content, video.flow)
        return motion

    adjacent = flow_from(1)
    if flow.is_scene_cut(cut_flow or adjacent, video.scene_cut_threshold):
        return FrameStart(
            content, video.first_iterations, "cut", None, adjacent.consistent_fraction
        )
    offsets = sorted(by_offset)
    motions = {1: adjacent, **{k: flow_from(k) for k in offsets[1:]}}
    warps = {
        k: flow.warp(by_offset[k].output, motions[k].backward, video.warp_interpolation)
        for k in offsets
    }
    masks = flow.long_term_masks({k: motions[k].mask for k in offsets})
    # Pixels no earlier frame tracks reliably (disoccluded) start from the content instead;
    # the nearest offset that tracks a pixel gives its start (with 0/1 masks only one does).
    image = content
    for k in reversed(offsets):
        image = np.where(masks[k][..., None] > 0.5, warps[k], image)
    init = "previous" if video.flow == "none" else "warped"
    recovered = None
    if len(video.temporal_offsets) > 1:
        recovered = float(sum((masks[k] > 0.5).mean() for k in offsets[1:]))
    return FrameStart(
        image,
        video.iterations,
        init,
        combined_temporal(warps, masks),
        adjacent.consistent_fraction,
        recovered,
    )


def combined_temporal(warps: Mapping[int, np.ndarray], masks: Mapping[int, np.ndarray]) -> Temporal:
    """One temporal target equal to the sum of the per-offset terms mean(m_k (x - w_k)^2).

    That sum is mean(M (x - W)^2) + C with M = sum m_k, W = sum m_k w_k / M and C the
    x-independent mean(sum m_k w_k^2 - M W^2): the same gradient, so the engine's one target
    suffices; C goes into Temporal.constant so the reported term is the sum. With 0/1 masks
    from long_term_masks the m_k are disjoint, W picks each pixel's one warp and C is 0.
    """
    if len(warps) == 1:
        (offset,) = warps
        return Temporal(warps[offset], masks[offset])  # as it is: uint8, no rounding
    units = {k: unit_colors(w) for k, w in warps.items()}
    total = sum(masks[k] for k in warps)
    weighted = sum(masks[k][..., None] * units[k] for k in warps)
    squares = sum(masks[k][..., None] * np.square(units[k]) for k in warps)
    covered = total > 0
    first = units[min(warps)]
    target = np.where(
        covered[..., None], weighted / np.where(covered, total, 1.0)[..., None], first
    )
    constant = float(np.mean(squares - total[..., None] * np.square(target)))
    return Temporal(target.astype(np.float32), total.astype(np.float32), max(constant, 0.0))


def unit_colors(image: np.ndarray) -> np.ndarray:
    """Colors in [0, 1] as float32 (uint8 images scaled)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32)


# Starts that take nothing from the frames before them in their pass (pass 1: the first frame,
# a cut, --init content; a later pass: its first frame, a cut): a sweep's later frames reach
# back to such a frame, never past it.
INDEPENDENT = ("content", "cut", "own")


class Window:
    """The inputs and outputs of the last `depth` frames (the largest temporal offset): all
    the history the loop keeps. An independent frame (first, cut) empties it first, so no
    offset reaches back across a scene cut."""

    def __init__(self, depth: int):
        # (index, input, output or None while a finished frame is not decoded)
        self._frames: deque[tuple[int, np.ndarray, np.ndarray | None]] = deque(maxlen=depth)

    def __len__(self) -> int:
        return len(self._frames)

    def push(
        self, index: int, content: np.ndarray, output: np.ndarray | None, independent: bool
    ) -> None:
        if independent:
            self._frames.clear()
        self._frames.append((index, content, output))

    def fill(self, load: Callable[[int], np.ndarray | None]) -> None:
        """Decodes the finished frames not decoded yet; one that fails to decode is dropped."""
        kept = deque(maxlen=self._frames.maxlen)
        for index, content, output in self._frames:
            output = output if output is not None else load(index)
            if output is not None:
                kept.append((index, content, output))
        self._frames = kept

    def earlier(self, index: int, offsets: Sequence[int], step: int = 1) -> list[Earlier]:
        """The frames at `offsets` before frame `index` that the window holds (decoded);
        `step` -1: a backward pass, where the frames before are those after (index + k)."""
        return [
            Earlier((index - i) * step, content, output)
            for i, content, output in self._frames
            if (index - i) * step in offsets and output is not None
        ]


@dataclass(frozen=True)
class Neighbour:
    """The neighbours' results of this pass warped onto a frame, and where to trust them."""

    warped: np.ndarray  # HxWx3 uint8 (one neighbour) or float32 in [0, 1] (several, combined)
    mask: np.ndarray  # HxW float32 in [0, 1]
    consistent: float
    constant: float = 0.0  # Temporal.constant of the combined target
    recovered: float | None = None  # as FrameStart.recovered


# (frame's content, this pass's earlier frames at the temporal offsets (Earlier.offset k: frame
# i-k going forward, i+k going backward; the same shot only), pass direction, settings) -> what
# the frame takes from them, or None across a scene cut.
NeighbourTarget = Callable[[np.ndarray, Sequence[Earlier], int, VideoConfig], "Neighbour | None"]


def pass_neighbour(
    content: np.ndarray, earlier: Sequence[Earlier], step: int, video: VideoConfig
) -> Neighbour | None:
    """This pass's earlier results warped onto the frame and weighted as pass 1 weights them
    (temporal_start: Ruder's long-term masks, flows between the input frames).

    A backward pass warps frame i+1 onto frame i (flow i -> i+1) but decides the cut between
    them from the forward pair, as pass 1 did, so every pass sees the same cuts.
    """
    adjacent = next((e for e in earlier if e.offset == 1), None)
    if adjacent is None:
        return None
    flows, cut_flow = None, None
    if step < 0:
        cut_flow, behind = flow.pair_flows(content, adjacent.input, video.flow)
        flows = {1: behind}
    start = temporal_start(content, earlier, video, flows, cut_flow)
    if start.temporal is None:  # offset 1 is there: a scene cut
        return None
    target = start.temporal
    return Neighbour(target.warped, target.mask, start.consistent, target.constant, start.recovered)


def later_start(
    own: np.ndarray, neighbour: Neighbour | None, number: int, video: VideoConfig, init: str
) -> FrameStart:
    """How a frame of pass `number` (>= 2) starts: its own last result blended with the warped
    neighbour where the flow is reliable; `init` names a frame without one (own / cut)."""
    if neighbour is None:
        return FrameStart(own, video.pass_iterations, init, None, None)
    weight = (video.pass_blend * neighbour.mask)[..., None]
    image = weight * unit_colors(neighbour.warped) + (1.0 - weight) * unit_colors(own)
    temporal = None
    if number >= video.temporal_from_pass:
        temporal = Temporal(neighbour.warped, neighbour.mask, neighbour.constant)
    return FrameStart(
        image.astype(np.float32),
        video.pass_iterations,
        "blended",
        temporal,
        neighbour.consistent,
        neighbour.recovered,
    )
