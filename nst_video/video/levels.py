"""Coarse-to-fine levels of a frame started from scratch: their sizes and budgets (no arrays,
so the work directory can tell whether a render has levels without loading torch)."""

from __future__ import annotations

import math

from nst_video.config import ImageConfig


def level_long_sides(long_side: int, image: ImageConfig | None = None) -> list[int]:
    """Long side of each coarse-to-fine level of a frame started from scratch, coarsest first.

    Levels divide the output's long side by `coarse_step` as often as the result stays at
    least `coarse_start` px (0: one level), so a 512 px output at 256 and step 2 has
    [256, 512], at step sqrt(2) [256, 362, 512], and a 500 px output one level.
    """
    if image is None or not image.coarse_start or long_side < image.coarse_start:
        return [long_side]
    steps = math.floor(math.log(long_side / image.coarse_start, image.coarse_step) + 1e-9)
    return [round(long_side / image.coarse_step**k) for k in range(steps, -1, -1)]


def split_budget(budget: int, levels: int, fine_share: float) -> list[int]:
    """Evaluations per level, coarsest first, summing to `budget`: the full size gets
    `fine_share` of it (at least 1), the coarser levels the rest in equal parts."""
    if levels == 1:
        return [budget]
    fine = min(budget, max(1, round(budget * fine_share)))
    rest, coarse = budget - fine, levels - 1
    return [rest // coarse + (i < rest % coarse) for i in range(coarse)] + [fine]


def first_coarse_long_side(image: ImageConfig) -> int | None:
    """The smallest output long side that gets a coarse level (None: single scale always)."""
    if not image.coarse_start:
        return None
    side = math.ceil(image.coarse_start * image.coarse_step - 1e-6)
    while len(level_long_sides(side, image)) < 2:  # the log's rounding, at most a pixel or two
        side += 1
    return side
