#!/usr/bin/env bash
# Quick start: set everything up, then fine-tune the packaged MiniLM on the packaged disaster tweets,
# evaluate on a held-out split and predict, offline. Writes runs/demo/ (replaced on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
.venv/bin/textune train --output_dir runs/demo --overwrite_output_dir "$@"
