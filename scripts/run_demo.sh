#!/usr/bin/env bash
# Run the main job on the embedded defaults: create .venv (first time), install the project,
# generate and submit sample crashes, run the supervisor until they are processed, and print
# each crash id, its outcome and the status table. Extra arguments go to scripts/run_demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/procsupervisor" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e '.[test]'
fi
exec "$VENV/bin/python" scripts/run_demo.py "$@"
