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
    # What the source calls this version of the file (HTTP/S3 ETag, local mtime and size),
    # recorded with a shared index.
    etag: str = ""


class SymbolSupplier(Protocol):
    kind: str  # "dir" | "http" | "s3", for counters and metric tags

    def fetch(self, relpath: str, workdir: Path) -> FetchedSymbols | None:
        """The symbol file at Breakpad layout path `relpath`, or None if this supplier does not
        have it. Downloads go to a temp file in `workdir` and are returned only when complete.
        Raises SupplierError when the answer is unknown (network error, server error).
        `relpath` has passed `symbols.paths.is_safe_relpath`."""
        ...
