"""Breakpad `.sym` text for synthetic modules, stored where Breakpad's SimpleSymbolSupplier
looks for it (docs/formats/breakpad.md §2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from procsupervisor.workers.stackwalker.model import CodeModule
from procsupervisor.workers.stackwalker.symbols.paths import symbol_file_relpath


@dataclass
class SymFunction:
    address: int  # module-relative
    size: int
    name: str
    line: int = 1
    file: str = "src/main.c"


def sym_text(
    debug_file: str,
    debug_id: str,
    functions: list[SymFunction],
    *,
    os: str = "Linux",
    arch: str = "x86_64",
    cfi: list[str] | None = None,
) -> str:
    """A minimal Breakpad .sym: MODULE, FILE, FUNC plus one line record each, optional CFI."""
    files = sorted({f.file for f in functions})
    lines = [f"MODULE {os} {arch} {debug_id} {debug_file}"]
    lines += [f"FILE {i} {name}" for i, name in enumerate(files)]
    for f in functions:
        lines.append(f"FUNC {f.address:x} {f.size:x} 0 {f.name}")
        lines.append(f"{f.address:x} {f.size:x} {f.line} {files.index(f.file)}")
    lines += cfi or []
    return "\n".join(lines) + "\n"


def write_sym(root: Path, debug_file: str, debug_id: str, text: str) -> Path:
    """Store .sym text under `root` at Breakpad's path for (debug_file, debug_id)."""
    module = CodeModule(0, 0, debug_file, "", debug_file=debug_file, debug_identifier=debug_id)
    relpath = symbol_file_relpath(module)
    if relpath is None:
        raise ValueError(f"no safe symbol path for {debug_file!r} / {debug_id!r}")
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
