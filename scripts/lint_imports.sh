#!/usr/bin/env bash
# Check the dependency contracts ([tool.importlinter] in pyproject.toml) against a wheel
# install: with the package-dir mapping (workers/ -> procsupervisor.workers, cache/ ->
# procsupervisor.cache) an editable install hides those packages from import-linter.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(cd "${VENV:-.venv}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! "$VENV/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheel" . 2>"$work/build.log"; then
    cat "$work/build.log" >&2
    echo "lint_imports: building the wheel failed" >&2
    exit 1
fi
"$VENV/bin/python" -m pip install --quiet --no-deps --target "$work/site" "$work"/wheel/*.whl
repo=$(pwd)
cd "$work"
PYTHONPATH="$work/site" "$VENV/bin/lint-imports" --no-cache "$repo/pyproject.toml"
