#!/usr/bin/env bash
# Set everything up, then run the offline test suite (tiny models; real-model runs need -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
.venv/bin/python -m pytest "$@"
