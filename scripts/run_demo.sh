#!/usr/bin/env bash
# Run the main job on the embedded defaults: create .venv (first time), install the project,
# generate and submit sample crashes, run the supervisor until they are processed, and print
# each crash id, its outcome and the status table. Extra arguments go to scripts/run_demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure_venv.sh
exec "$VENV/bin/python" scripts/run_demo.py "$@"
