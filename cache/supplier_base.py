"""What a symbol supplier is: something that may have `<debug_file>/<debug_id>/<name>.sym`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class FetchedSymbols:
    """A complete `.sym` file on local disk."""

    path: Path
    # Bytes that crossed the network (0 for a local directory).
    transferred_bytes: int
    # True: a download in the cache's temp folder, deleted once parsed.
    temporary: bool
    origin: str


class SymbolSupplier(Protocol):
    kind: str  # "dir" | "http" | "s3", for counters and metric tags

    def fetch(self, relpath: str, workdir: Path) -> FetchedSymbols | None:
        """The symbol file at Breakpad layout path `relpath`, or None if this supplier does not
        have it. Downloads go to a temp file in `workdir` and are returned only when complete.
        Raises SupplierError when the answer is unknown (network error, server error)."""
        ...


def is_safe_relpath(relpath: str) -> bool:
    """True for exactly `<debug_file>/<debug_id>/<name>.sym` with no component that could
    climb out of a symbol root or a URL prefix (the names come from hostile minidumps)."""
    if "\\" in relpath or "\x00" in relpath:
        return False
    parts = relpath.split("/")
    return len(parts) == 3 and all(part not in ("", ".", "..") for part in parts)
