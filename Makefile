# The two quick-start commands: `make demo` and `make test`. Each sets up .venv on first use.
VENV := .venv
BIN := $(VENV)/bin

# The demo paints the 2 s sample clip (12 frames) at 192x144. From a fresh clone, `make demo`
# took 2 min 49 s on two quiet CPU cores, the set-up and the network's fetch included (the
# render itself about 2 min): fewer loss evaluations than the defaults (150 first / 30 later)
# buy the time; the flow warm start carries the first frame's painting, so 25 per later frame
# suffice here. 224 px took 2 min 34 s without the set-up, 3 min 29 s with it.
DEMO_FLAGS := --size 192 --first-iterations 80 --iterations 25

.PHONY: setup demo test test-fast lint
setup:
	@bash scripts/setup.sh

demo: setup
	@mkdir -p out
	$(BIN)/nst-video video samples/tree.mp4 --style samples/starry-night.jpg \
		-o out/demo.mp4 $(DEMO_FLAGS) --overwrite $(DEMO_EXTRA)
	$(BIN)/python scripts/side_by_side.py samples/tree.mp4 out/demo.mp4 \
		-o out/demo-side-by-side.gif

test: setup
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check nst_video tests scripts benchmarks

# The edit-test loop: every test but the `slow` ones (subprocess runs, SIGKILL resumes, Ray,
# whole-clip renders); under a minute on two quiet cores.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check nst_video tests scripts benchmarks
	$(BIN)/python -m pytest -q tests/test_layers.py
	$(BIN)/ruff format --check nst_video tests scripts benchmarks
