"""The optional second level: built indexes shared by every host, so a fleet parses each `.sym`
once (docs/architecture.md §9).

After a host builds an index it publishes it with its format tag, SHA-256, size and the source
`.sym` file's size and etag; a host whose own cache misses fetches the index instead of the
`.sym` file. Nothing fetched is trusted: an object of another format, a size or checksum that
does not match its metadata, or an index the codec refuses is ignored (and rebuilt from the
`.sym`, which replaces it). `SharedIndexStore` is what any such store provides; S3 (or any
S3-compatible store, shared_index_s3.py) is the one implemented.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_CHUNK = 1 << 20


@dataclass(frozen=True)
class SharedIndexMeta:
    format_tag: str
    sha256: str
    size: int
    sym_size: int
    sym_etag: str

    def as_metadata(self) -> dict[str, str]:
        return {
            "format": self.format_tag,
            "sha256": self.sha256,
            "size": str(self.size),
            "sym-size": str(self.sym_size),
            "sym-etag": self.sym_etag[:200],
        }


@dataclass(frozen=True)
class SharedFetch:
    """A fetched index file whose size and checksum match what was published (`path`), or
    why there is none to use: "" when the store does not have it, else the reason it was
    rejected."""

    path: Path | None
    rejected: str = ""


class SharedIndexStore(Protocol):
    kind: str

    def fetch(self, relpath: str, workdir: Path) -> SharedFetch:
        """The index for the `.sym` at Breakpad layout path `relpath` (safe), downloaded to a
        new file in `workdir`. Raises SupplierError when the store cannot be asked."""
        ...

    def publish(self, relpath: str, index_path: Path, meta: SharedIndexMeta) -> None:
        """Share an index built here (replacing what is there). Raises SupplierError."""
        ...


def file_digest(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size) of a file, read a chunk at a time."""
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
