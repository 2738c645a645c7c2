"""Where a module's symbol file lives in Breakpad's layout (docs/formats/breakpad.md §2.1), safely.

`<root>/<debug_file>/<debug_id>/<name>.sym`: the names come from hostile minidumps, so every
path built from them goes through `is_safe_relpath` before it touches a file system or a URL.
The stackwalker's directory provider and the symbol cache's suppliers both resolve through here.
"""

from __future__ import annotations

from pathlib import Path

from procsupervisor.workers.stackwalker.model import CodeModule

_UNSAFE_COMPONENTS = frozenset({"", ".", ".."})


def is_safe_relpath(relpath: str) -> bool:
    """True for exactly `<debug_file>/<debug_id>/<name>.sym` with no component that could
    climb out of a symbol root or a URL prefix (no "..", ".", empty part, backslash or NUL)."""
    if "\\" in relpath or "\x00" in relpath:
        return False
    parts = relpath.split("/")
    return len(parts) == 3 and not _UNSAFE_COMPONENTS.intersection(parts)


def _basename(path: str) -> str:
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[cut + 1 :]


def symbol_file_relpath(module: CodeModule) -> str | None:
    """`<F>/<I>/<N>.sym` for a module, or None when Breakpad would not look or the path is
    not safe (§2.1).

    F = basename of debug_file (after the last / or \\), I = debug_identifier verbatim,
    N = F without a trailing ".pdb" (any case) when F is longer than 4 characters."""
    file_name = _basename(module.debug_file)
    stem = file_name
    if len(file_name) > 4 and file_name[-4:].lower() == ".pdb":
        stem = file_name[:-4]
    relpath = f"{file_name}/{module.debug_identifier}/{stem}.sym"
    return relpath if is_safe_relpath(relpath) else None


def find_symbol_file(root: Path, relpath: str) -> Path | None:
    """The existing file `root/relpath`, or None (also for an unsafe `relpath`)."""
    if not is_safe_relpath(relpath):
        return None
    candidate = Path(root) / relpath
    return candidate if candidate.is_file() else None
