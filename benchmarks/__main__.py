"""`python -m benchmarks NAME [args]` runs one benchmark; without NAME, lists them."""

from __future__ import annotations

import sys

from benchmarks.harness import run_benchmark
from benchmarks.registry import BENCHMARKS, load


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m benchmarks NAME [args]   (NAME --help for its arguments)\n")
        width = max(map(len, BENCHMARKS))
        for name in BENCHMARKS:
            print(f"  {name.ljust(width)}  {load(name).SUMMARY}")
        return 0
    run_benchmark(argv[0], load(argv[0]), argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
