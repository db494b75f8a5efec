"""The benchmarks by name: module paths, imported only when one is run (torch is slow to load)."""

from __future__ import annotations

import importlib
from types import ModuleType

# name -> module under benchmarks/ (docs/benchmarks.md and docs/quality.md quote the figures)
BENCHMARKS = {
    "speed": "benchmarks.speed",
    "defaults": "benchmarks.defaults",
    "memory": "benchmarks.memory",
    "precision": "benchmarks.precision",
    "temporal": "benchmarks.temporal",
    "passes": "benchmarks.passes",
    "drift": "benchmarks.drift",
    "seams": "benchmarks.seams",
    "border": "benchmarks.border",
    "coarse": "benchmarks.coarse",
    "quality": "benchmarks.quality",
    "quantization": "benchmarks.quantization",
    "calib": "benchmarks.calib",
    "stoprule": "benchmarks.stoprule",
    "compiled": "benchmarks.compiled",
}


def load(name: str) -> ModuleType:
    """The module of benchmark `name`; SystemExit listing the names for an unknown one."""
    if name not in BENCHMARKS:
        raise SystemExit(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
    return importlib.import_module(BENCHMARKS[name])
