"""Local symbol directories in Breakpad's layout (`minidump_stackwalk <dump> <root>`)."""

from __future__ import annotations

from pathlib import Path

from procsupervisor.cache.supplier_base import FetchedSymbols
from procsupervisor.health import Health
from procsupervisor.workers.stackwalker.symbols.paths import find_symbol_file


class LocalDirectorySupplier:
    kind = "dir"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalDirectorySupplier({str(self.root)!r})"

    def probe(self) -> Health:
        if not self.root.is_dir():
            return Health.misconfigured(f"FileNotFoundError: {self.root} is not a directory")
        return Health.healthy()

    def fetch(self, relpath: str, workdir: Path) -> FetchedSymbols | None:
        path = find_symbol_file(self.root, relpath)
        if path is None:
            return None
        info = path.stat()
        return FetchedSymbols(
            path=path,
            transferred_bytes=0,
            temporary=False,
            origin=str(path),
            etag=f"{info.st_mtime_ns:x}-{info.st_size:x}",
        )
