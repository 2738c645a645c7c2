#!/usr/bin/env bash
# Run the test suite: create the venv (first time, or $VENV), install the project with its test
# extras, then run pytest. Extra arguments go to pytest (e.g. tests/test_core_config.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure_venv.sh
set +e
"$VENV/bin/python" -m pytest "$@"
code=$?
set -e
# Exit code 5 means "no tests collected": not a failure when a filter given as an argument
# (e.g. -k) matched nothing, but a failure for the whole suite (it would hide a broken setup).
if [ "$code" -eq 5 ] && [ "$#" -gt 0 ]; then
    echo "no tests collected"
    exit 0
fi
exit "$code"
