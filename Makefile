# The two quick-start commands: `make demo` and `make test`. Each sets up .venv on first use.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint
setup:
	@bash scripts/setup.sh

demo: setup
	@mkdir -p out
	$(BIN)/nst-video video samples/clip.mp4 --style samples/style.png -o out/clip_painted.mp4

test: setup
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check nst_video tests scripts

lint: setup
	$(BIN)/ruff check nst_video tests scripts
	$(BIN)/python -m pytest -q tests/test_layers.py
	$(BIN)/ruff format --check nst_video tests scripts
