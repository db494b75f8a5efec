"""nst-video's benchmarks: `python -m benchmarks NAME [args]` (`python -m benchmarks` lists
them). Not part of the installed package; run from a checkout. Never tests: tests/ runs each one
on a tiny input only so that none rots (tests/test_benchmarks.py)."""
