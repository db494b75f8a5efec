"""Compatibility shim for `python -m benchmarks quality` (the measures: benchmarks/metrics.py).

Kept only while runs started against this path finish (the calibration scripts): the same
arguments, the Markdown tables on stdout, and --json writes the old shape ({"images": ...,
"mean": ...}, the result document's `data`). Delete once nothing runs or imports it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's benchmarks/

from benchmarks import quality  # noqa: E402
from benchmarks.harness import run_benchmark  # noqa: E402
from benchmarks.metrics import (  # noqa: E402
    COLUMNS,
    band_step,
    border_band,
    chroma_hf,
    color_w2,
    content_images,
    edge_r,
    read_rgb,
    structure,
)

__all__ = ["COLUMNS", "band_step", "border_band", "chroma_hf", "color_w2", "content_images",
           "edge_r", "read_rgb", "structure", "main"]  # fmt: skip


def main() -> None:
    argv = sys.argv[1:]
    json_path = None
    if "--json" in argv:
        at = argv.index("--json")
        json_path = Path(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    doc = run_benchmark("quality", quality, argv)
    if json_path is not None:
        json_path.write_text(json.dumps(doc["data"], indent=1))


if __name__ == "__main__":
    main()
