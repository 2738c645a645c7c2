# Sourced by run_demo.sh and test.sh (from the repository root): make sure $VENV (default
# .venv) exists with the project and its test extras installed; set VENV for the caller.
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/procsupervisor" ] || [ ! -x "$VENV/bin/pytest" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e '.[test]'
fi
