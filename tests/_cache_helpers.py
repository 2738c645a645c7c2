"""Helpers for the symbol cache tests: a counting HTTP symbol server and a toy index codec.

The toy codec lets the cache's mechanics (locking, eviction, corruption handling) be tested
with any bytes; tests that need real Breakpad parsing use the stackwalker's codec.
"""

from __future__ import annotations

import gzip
import http.server
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from diskcache.core import MODE_BINARY, MODE_RAW

from procsupervisor.cache.disk import BytesOnlyDisk
from procsupervisor.workers.stackwalker.model import (
    CodeModule,
    SymbolLookup,
    WindowsFrameInfo,
)
from procsupervisor.workers.stackwalker.symbols import IndexCorruptError

TOY_MAGIC = b"TOYIDX01"


class ToyIndex:
    """Answers every lookup with the MODULE line of the .sym it was built from."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    @property
    def module_line(self) -> str:
        return self.payload.split(b"\n", 1)[0].decode()

    def lookup(self, rel: int) -> SymbolLookup | None:
        return SymbolLookup(function_name=self.module_line, function_base=0)

    def find_windows_frame_info(self, rel: int) -> WindowsFrameInfo | None:
        return None

    def find_cfi_rules(self, rel: int) -> dict[str, str] | None:
        return None


class ToyCodec:
    """Serialized form: magic + the .sym bytes; `load` rejects anything without the magic."""

    format_tag = "toy1"

    def __init__(self) -> None:
        self.builds = 0

    def build(self, sym_path: Path) -> bytes:
        data = sym_path.read_bytes()
        if not data.startswith(b"MODULE "):
            raise ValueError("not a symbol file")
        self.builds += 1
        return TOY_MAGIC + data

    def build_file(self, sym_path: Path, out_path: Path) -> None:
        out_path.write_bytes(self.build(sym_path))

    def load(self, buffer: bytes | memoryview) -> ToyIndex:
        if bytes(buffer[: len(TOY_MAGIC)]) != TOY_MAGIC:
            raise IndexCorruptError("bad magic")
        return ToyIndex(bytes(buffer[len(TOY_MAGIC) :]))


def make_module(name: str, debug_id: str = "0123456789ABCDEF0123456789ABCDEF0") -> CodeModule:
    return CodeModule(
        base_address=0x1000,
        size=0x1000,
        code_file=name,
        code_identifier="",
        debug_file=name,
        debug_identifier=debug_id,
    )


def sym_relpath(module: CodeModule) -> str:
    stem = (
        module.debug_file[:-4] if module.debug_file.lower().endswith(".pdb") else module.debug_file
    )
    return f"{module.debug_file}/{module.debug_identifier}/{stem}.sym"


def sym_text(module: CodeModule, filler_bytes: int = 4000) -> bytes:
    """A small valid .sym: MODULE line, one FUNC and enough PUBLIC lines to reach the size."""
    head = f"MODULE Linux x86_64 {module.debug_identifier} {module.debug_file}\n"
    lines = [head, "FUNC 0 10 0 main\n"]
    size = sum(map(len, lines))
    n = 0
    while size < filler_bytes:
        line = f"PUBLIC {0x100 + n * 16:x} 0 filler_{n}\n"
        lines.append(line)
        size += len(line)
        n += 1
    return "".join(lines).encode()


def write_symbol_tree(root: Path, modules: list[CodeModule], filler_bytes: int = 4000) -> None:
    for module in modules:
        path = root / sym_relpath(module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sym_text(module, filler_bytes))


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # serve this status this many times before the real answer
    fail_first: int = 0
    fail_status: int = 503
    delay_s: float = 0.0
    # called before every answer; blocks it until the test's condition holds
    hold: Callable[[], None] | None = None
    # announce the full length but send only this many bytes, then close
    cut_after: int | None = None


class SymbolServer:
    """A threaded HTTP server on 127.0.0.1 that counts every request per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner._serve(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def add(self, path: str, route: Route) -> None:
        self.routes["/" + path.lstrip("/")] = route

    def add_sym(self, relpath: str, body: bytes, **kwargs: object) -> None:
        self.add(relpath, Route(body=body, **kwargs))  # type: ignore[arg-type]

    def add_gzipped(self, relpath: str, body: bytes) -> None:
        self.add(relpath + ".gz", Route(body=gzip.compress(body)))

    def count(self, relpath: str) -> int:
        return self.requests["/" + relpath.lstrip("/")]

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        path = handler.path
        with self._lock:
            self.requests[path] += 1
            seen = self.requests[path]
        route = self.routes.get(path)
        if route is None:
            self._reply(handler, 404, b"not found", {})
            return
        if route.hold is not None:
            route.hold()
        if route.delay_s:
            time.sleep(route.delay_s)
        if seen <= route.fail_first:
            self._reply(handler, route.fail_status, b"try later", {})
            return
        if route.cut_after is not None:
            handler.send_response(route.status)
            handler.send_header("Content-Length", str(len(route.body)))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(route.body[: route.cut_after])
            handler.wfile.flush()
            handler.close_connection = True
            return
        self._reply(handler, route.status, route.body, route.headers)

    @staticmethod
    def _reply(
        handler: http.server.BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
    ) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        if status not in (301, 302, 303, 307, 308) or body:
            handler.send_header("Content-Length", str(len(body)))
        else:
            handler.send_header("Content-Length", "0")
        handler.end_headers()
        handler.wfile.write(body)


@contextmanager
def running_server() -> Iterator[SymbolServer]:
    server = SymbolServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def make_provider(
    cache_dir: Path,
    suppliers: list,
    *,
    size_limit_bytes: int = 64 << 20,
    codec: object | None = None,
    **options: object,
):
    """A CachingSymbolProvider over a fresh SymbolStore, with the toy codec by default."""
    from procsupervisor.cache.provider import CachingSymbolProvider
    from procsupervisor.cache.store import SymbolStore

    return CachingSymbolProvider(
        SymbolStore(cache_dir, size_limit_bytes),
        suppliers,
        codec=codec or ToyCodec(),  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


def assert_no_pickle(cache_dir: Path) -> None:
    """Every row is raw bytes or a binary file, every key a str, nothing looks like a pickle."""
    disk = BytesOnlyDisk(str(cache_dir))
    with sqlite3.connect(cache_dir / "cache.db") as db:
        rows = db.execute("SELECT key, raw, mode, filename, value FROM Cache").fetchall()
        settings = db.execute("SELECT value FROM Settings").fetchall()
    assert rows
    for key, raw, mode, filename, value in rows:
        assert raw == 1 and isinstance(disk.get(key, raw), str)
        assert mode in (MODE_RAW, MODE_BINARY)
        fetched = disk.fetch(mode, filename, value, False)
        assert isinstance(fetched, bytes)
        assert not fetched.startswith((b"\x80\x03", b"\x80\x04", b"\x80\x05"))
    for (value,) in settings:
        assert not isinstance(value, bytes)
    for path in cache_dir.rglob("*.val"):
        assert not path.read_bytes()[:2].startswith(b"\x80")


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    import pytest
    from conftest import free_port

    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class CountingCodec:
    """The stackwalker's real codec, counting the indexes it builds in this process."""

    def __init__(self) -> None:
        from procsupervisor.workers.stackwalker.symbols import BreakpadIndexCodec

        self.inner = BreakpadIndexCodec()
        self.format_tag = self.inner.format_tag
        self.builds = 0

    def build_file(self, sym_path: Path, out_path: Path) -> None:
        self.builds += 1
        self.inner.build_file(sym_path, out_path)

    def load(self, buffer):  # type: ignore[no-untyped-def]
        return self.inner.load(buffer)
