"""Compatibility shim: the benchmarks' shared code moved to benchmarks/harness.py.

Kept only while scripts written against it still run (the calibration scripts); new code
imports benchmarks.harness. Delete once nothing imports it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's benchmarks/

from benchmarks.harness import (  # noqa: E402
    add_network_options,
    network_label,
    render,
    with_network,
)

__all__ = ["add_network_options", "network_label", "render", "with_network"]
