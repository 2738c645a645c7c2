"""One line for a command that failed (docs/architecture.md §10): what failed and why, never a
traceback. Used by the commands that take crashes in or process them inline (`submit`,
`enqueue`, `process`, `verify`)."""

from __future__ import annotations

from procsupervisor.cli_context import one_line


def describe(exc: BaseException) -> str:
    """An exception as an operator reads it: an OS error as its reason and file, a ValueError
    (worded for the operator already) as its text, anything else with its class."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    if isinstance(exc, ValueError | OSError):
        return one_line(str(exc)) or type(exc).__name__
    text = one_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
