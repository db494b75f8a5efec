"""`image --save-every N`: the image as it paints, OUTPUT.iter0100.png, OUTPUT.iter0200.png, ...
written atomically under every output's rule (nothing replaced without --overwrite, never an
input, only regular files), all checked before any work."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nst_video.config import Settings
from nst_video.errors import OptionError
from nst_video.media.files import check_name_fits, refuse_existing
from nst_video.media.images import write_image
from nst_video.media.paths import check_not_inputs
from nst_video.progress import ITERATE, Callback, Event, Iteration, asking


def snapshot_path(output: Path, evaluation: int) -> Path:
    """OUT.png -> OUT.iter0100.png (as a PNG whatever the output's format: lossless)."""
    return output.with_name(f"{output.stem}.iter{evaluation:04d}.png")


class Snapshots:
    """Saves the best iterate every `every` evaluations, counted over all --coarse-start levels
    (the events count so); a coarse level's snapshots are at that level's size."""

    def __init__(
        self,
        output: Path,
        every: int,
        settings: Settings,
        overwrite: bool,
        inputs: Sequence[Path],
    ):
        if every < 1:
            raise OptionError(f"--save-every must be >= 1 (or 0 for never), got {every}")
        self.output, self.every, self.overwrite = Path(output), every, overwrite
        # The --coarse-start levels share one budget: the largest count a snapshot can carry.
        most = settings.optim.iterations
        paths = [snapshot_path(self.output, n) for n in range(every, most + 1, every)]
        check_not_inputs([("--save-every image", p) for p in paths], inputs)
        for path in paths:
            check_name_fits(path, "--save-every image")
            refuse_existing(path, overwrite)
        self._next = every
        self.written: list[Path] = []

    def wrap(self, callback: Callback) -> Callback:
        def forward(event: Event) -> None:
            if isinstance(event, Iteration) and event.image is not None:
                self._saw(event)
            callback(event)

        return asking(forward, ITERATE, like=callback)

    def _saw(self, event: Iteration) -> None:
        count = event.evaluation
        if count >= self._next:
            path = snapshot_path(self.output, self._next)
            refuse_existing(path, self.overwrite)  # again: something may have appeared since
            write_image(path, event.image)
            self.written.append(path)
            self._next = (count // self.every + 1) * self.every
