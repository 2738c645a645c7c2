#!/usr/bin/env bash
# Run the test suite: create the venv (first time, or $VENV), install the project with its test
# extras, then run pytest. Extra arguments go to pytest (e.g. tests/test_core_config.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/pytest" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e '.[test]'
fi
set +e
"$VENV/bin/python" -m pytest "$@"
code=$?
set -e
# Exit code 5 means "no tests collected" (e.g. a -k filter matching nothing): not a failure.
if [ "$code" -eq 5 ]; then
    echo "no tests collected"
    exit 0
fi
exit "$code"
