#!/usr/bin/env bash
# Creates the project-local virtual environment .venv with the right torch build, then installs
# nst-video (editable) with its test tools. Re-running is cheap: it skips work already done.
#   TORCH_INDEX_URL=...  pick a torch wheel index yourself (e.g. a CUDA or ROCm one).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
stamp=.venv/.nst-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then exit 0; fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

local_cpu_wheel() {
  # A torch +cpu wheel in pip's find-links (how offline CPU machines provide torch).
  local dirs
  dirs="${PIP_FIND_LINKS:-} $(.venv/bin/python -m pip config get global.find-links 2>/dev/null || true)"
  for d in $dirs; do ls "${d#file://}"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 && return 0; done
  return 1
}

if [ -n "${TORCH_INDEX_URL:-}" ]; then
  "${pip[@]}" torch==2.13.0 --index-url "$TORCH_INDEX_URL"
elif command -v nvidia-smi >/dev/null 2>&1 || local_cpu_wheel; then
  # PyPI's Linux torch wheel is the CUDA build; a local +cpu wheel is preferred when present.
  "${pip[@]}" torch==2.13.0
else
  # A CPU machine must not pull several GB of CUDA libraries.
  "${pip[@]}" torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
fi
"${pip[@]}" -e ".[test,ray]"  # ray: the tests exercise --workers too
touch "$stamp"
