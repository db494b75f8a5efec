"""Compatibility shim: the independent VGG16 scorers moved to benchmarks/metrics.py.

Kept only while scripts written against it still run; new code imports benchmarks.metrics.
Delete once nothing imports it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's benchmarks/

from benchmarks.metrics import (  # noqa: E402
    SCORERS,
    Vgg16Scorer,
    hed_scorer,
    make_scorers,
    tumor_scorer,
    tumor_state_dict,
)

__all__ = ["SCORERS", "Vgg16Scorer", "hed_scorer", "make_scorers", "tumor_scorer",
           "tumor_state_dict"]  # fmt: skip
