"""The on-disk half of the symbol cache: one diskcache directory shared by every worker.

Each entry is keyed `debug_file/debug_id`. A positive entry is the serialized symbol index,
stored as a file that readers mmap read-only, with a tag `idx1:<size>:<crc32>` so that a
truncated or damaged file is caught before it is handed to the index reader. A negative entry
(no supplier has the symbols) is a tiny row tagged `neg1` with an expiry time.

diskcache culls on `set` only `cull_limit` rows at a time; here automatic culling is off and
every write is followed by a full `cull()`, so the cache exceeds its limit by at most the entry
just written, and the number of evicted rows is known for the counters.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import mmap
import os
import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import diskcache

from procsupervisor.cache.directory import secure_cache_dir
from procsupervisor.cache.disk import MIN_FILE_SIZE, BytesOnlyDisk
from procsupervisor.cache.errors import NotBytesError

INDEX_TAG_PREFIX = "idx1:"
NEGATIVE_TAG = "neg1"
NEGATIVE_VALUE = b"no symbols"
MAX_REASON_BYTES = 400  # a negative entry stays small enough to live in its row
_CRC_CHUNK = 1 << 20
OPEN_LOCK_NAME = ".open.lock"
# diskcache's own sqlite busy timeout; a busy database beyond this raises diskcache.Timeout.
DEFAULT_SQLITE_TIMEOUT_S = 30.0

# Exceptions meaning "the cache database or its files are unusable right now": callers fall
# back to working without the disk cache instead of failing the crash.
STORE_ERRORS: tuple[type[BaseException], ...] = (
    diskcache.Timeout,
    sqlite3.Error,
    OSError,
    NotBytesError,
)


class EntryKind(enum.Enum):
    ABSENT = "absent"
    NEGATIVE = "negative"
    INDEX = "index"
    CORRUPT = "corrupt"


@dataclass
class StoredEntry:
    kind: EntryKind
    # INDEX: the serialized index (read-only mmap of the value file, or bytes for tiny values).
    buffer: mmap.mmap | bytes | None = None
    # NEGATIVE: when the entry expires (epoch seconds), None if never.
    expires_at: float | None = None
    # CORRUPT: why. NEGATIVE: why the symbols were refused ("" when nobody has them).
    reason: str = ""
    # Which stored value this is (see `SymbolStore.discard`).
    version: bytes | str | None = None

    @property
    def nbytes(self) -> int:
        return len(self.buffer) if self.buffer is not None else 0


def index_tag(data: bytes) -> str:
    return f"{INDEX_TAG_PREFIX}{len(data)}:{zlib.crc32(data):08x}"


def _parse_index_tag(tag: object) -> tuple[int, int] | None:
    if not isinstance(tag, str) or not tag.startswith(INDEX_TAG_PREFIX):
        return None
    try:
        size_text, crc_text = tag[len(INDEX_TAG_PREFIX) :].split(":")
        return int(size_text), int(crc_text, 16)
    except ValueError:
        return None


def _negative_reason(value: bytes) -> str:
    prefix = NEGATIVE_VALUE + b": "
    return value[len(prefix) :].decode("utf-8", "replace") if value.startswith(prefix) else ""


def file_crc32(handle: BinaryIO) -> int:
    """CRC-32 of a binary file from its current position, read a chunk at a time."""
    crc = 0
    while chunk := handle.read(_CRC_CHUNK):
        crc = zlib.crc32(chunk, crc)
    return crc


def _version_of(value: bytes | BinaryIO) -> bytes | str:
    """What tells one stored value from its replacement: diskcache gives every value file a
    new random name; a value small enough to live in its row is compared by content."""
    return value if isinstance(value, bytes) else str(value.name)


class SymbolStore:
    """A size-capped, least-recently-used diskcache.Cache holding bytes only."""

    def __init__(
        self,
        directory: Path,
        size_limit_bytes: int | None,
        sqlite_timeout_s: float = DEFAULT_SQLITE_TIMEOUT_S,
    ) -> None:
        """`size_limit_bytes=None` keeps the limit already recorded in the cache (for tools
        that inspect a cache without changing how the workers run it)."""
        self.directory = secure_cache_dir(Path(directory))
        settings: dict[str, Any] = {
            "eviction_policy": "least-recently-used",
            "cull_limit": 0,
            "statistics": 0,
            "disk_min_file_size": MIN_FILE_SIZE,
        }
        self._read_connection: sqlite3.Connection | None = None
        self._read_pid = 0
        if size_limit_bytes is not None:
            settings["size_limit"] = int(size_limit_bytes)
        with self._open_lock():
            self.cache = diskcache.Cache(
                str(self.directory), timeout=sqlite_timeout_s, disk=BytesOnlyDisk, **settings
            )

    @contextlib.contextmanager
    def _open_lock(self) -> Iterator[None]:
        # diskcache's start-up (pragmas, CREATE TABLE, INSERT OR REPLACE into Settings) runs
        # with a zero busy timeout and races other processes opening the same directory;
        # serializing it behind a lock file avoids "database is locked" when workers start
        # together.
        fd = os.open(self.directory / OPEN_LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @property
    def size_limit(self) -> int:
        return int(self.cache.size_limit)

    def volume(self) -> int:
        """Bytes used: the SQLite pages plus every value file (what the limit applies to)."""
        return int(self.cache.volume())

    def __len__(self) -> int:
        return len(self.cache)

    def lookup(self, key: str) -> StoredEntry:
        """The entry under `key`; a damaged one is reported CORRUPT and deleted."""
        try:
            value, expires_at, tag = self.cache.get(key, read=True, expire_time=True, tag=True)
        except NotBytesError as exc:
            # Nothing this cache writes looks like that: no fresh value can be lost here.
            self.delete(key)
            return StoredEntry(EntryKind.CORRUPT, reason=str(exc))
        if value is None:
            return StoredEntry(EntryKind.ABSENT)
        version = _version_of(value)
        try:
            if tag == NEGATIVE_TAG:
                reason = "" if not isinstance(value, bytes) else _negative_reason(value)
                return StoredEntry(
                    EntryKind.NEGATIVE, expires_at=expires_at, reason=reason, version=version
                )
            buffer = self._verified_buffer(value, tag)
        finally:
            if hasattr(value, "close"):
                value.close()
        if isinstance(buffer, str):
            self.discard(key, version)
            return StoredEntry(EntryKind.CORRUPT, reason=buffer, version=version)
        return StoredEntry(EntryKind.INDEX, buffer=buffer, version=version)

    def discard(self, key: str, version: bytes | str | None) -> None:
        """Delete `key` if it still holds the value `lookup` returned as `version`.

        Readers find damage without holding the key's download lock, so by the time one
        deletes, another process may have stored a fresh index under the key; deleting
        unconditionally would throw that away and cost a second download. The check and the
        delete run in one write transaction."""
        with contextlib.suppress(*STORE_ERRORS), self.cache.transact():
            current = self.cache.get(key, read=True)
            if current is None:
                return
            try:
                unchanged = _version_of(current) == version
            finally:
                if hasattr(current, "close"):
                    current.close()
            if unchanged:
                self.cache.delete(key)

    def _verified_buffer(self, value: bytes | BinaryIO, tag: object) -> mmap.mmap | bytes | str:
        """The value's bytes if its size and CRC match its tag, else a reason string."""
        expected = _parse_index_tag(tag)
        if expected is None:
            return f"unexpected tag {tag!r:.40}"
        size, crc = expected
        if isinstance(value, bytes):
            if len(value) != size:
                return f"value is {len(value)} bytes, expected {size}"
            if zlib.crc32(value) != crc:
                return "checksum mismatch"
            return value
        actual_size = os.fstat(value.fileno()).st_size
        if actual_size != size:
            return f"value file is {actual_size} bytes, expected {size}"
        if size == 0:
            return "empty value file"
        # Read, not mapped: checking every page through the map would make the whole index
        # part of this process's resident memory, where lookups only touch a few pages.
        if file_crc32(value) != crc:
            return "checksum mismatch"
        return mmap.mmap(value.fileno(), 0, access=mmap.ACCESS_READ)

    def put_index(self, key: str, data: bytes) -> int:
        """Store a serialized index; returns how many entries were evicted to make room."""
        self.cache.set(key, data, tag=index_tag(data))
        return self._cull()

    def put_index_file(self, key: str, path: Path) -> int:
        """Store the index in the file at `path` (copied in chunks, never read whole)."""
        with Path(path).open("rb") as handle:
            tag = f"{INDEX_TAG_PREFIX}{os.fstat(handle.fileno()).st_size}:{file_crc32(handle):08x}"
            handle.seek(0)
            self.cache.set(key, handle, read=True, tag=tag)
        return self._cull()

    def has_index(self, key: str) -> bool:
        """Whether an index is stored under `key`, without reading it (for `symbols warm`)."""
        query = "SELECT 1 FROM Cache WHERE key = ? AND raw = 1 AND tag LIKE ?"
        row = self._reader().execute(query, (key, INDEX_TAG_PREFIX + "%")).fetchone()
        return row is not None

    def put_negative(self, key: str, ttl_s: float, reason: str = "") -> int:
        """"No symbols" for `ttl_s`; with a reason, "symbols refused" (kept short)."""
        value = NEGATIVE_VALUE
        if reason:
            value += b": " + reason.encode()[:MAX_REASON_BYTES]
        self.cache.set(key, value, expire=ttl_s, tag=NEGATIVE_TAG)
        return self._cull()

    def delete(self, key: str) -> None:
        with contextlib.suppress(*STORE_ERRORS):
            self.cache.delete(key)

    def _cull(self) -> int:
        """Drop expired rows, then least-recently-used value files, one at a time, until the
        volume is under the limit; returns the number dropped for space (expired ones are not
        evictions). diskcache's own `cull` drops ten rows per step, which for large indexes
        would throw away far more than needed."""
        self.cache.expire()
        evicted = 0
        while True:
            excess = self.volume() - self.size_limit
            if excess <= 0:
                return evicted
            victims = self._least_recently_used(excess)
            if not victims:
                return evicted
            for key in victims:
                if self.cache.delete(key):
                    evicted += 1

    def _least_recently_used(self, excess: int) -> list[str]:
        """Oldest value files whose sizes add up to at least `excess` bytes."""
        query = (
            "SELECT key, size FROM Cache WHERE size > 0 AND raw = 1 ORDER BY access_time LIMIT 64"
        )
        victims: list[str] = []
        freed = 0
        for key, size in self._reader().execute(query):
            victims.append(key)
            freed += size
            if freed >= excess:
                break
        return victims

    def _reader(self) -> sqlite3.Connection:
        """A read-only connection of this process, for queries diskcache has no API for."""
        if self._read_connection is None or self._read_pid != os.getpid():
            database = self.directory / diskcache.core.DBNAME
            self._read_connection = sqlite3.connect(
                f"file:{database}?mode=ro",
                uri=True,
                timeout=self.cache.timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            self._read_pid = os.getpid()
        return self._read_connection

    def expire(self) -> int:
        return int(self.cache.expire())

    def cull(self) -> int:
        return self._cull()

    def drop_negative(self) -> int:
        """Delete every negative entry (after symbols were uploaded); returns how many."""
        return int(self.cache.evict(NEGATIVE_TAG))

    def clear(self) -> int:
        return int(self.cache.clear())

    def count_by_kind(self) -> dict[str, int]:
        """Rows and value bytes per kind, read straight from the database so that looking does
        not count as a use for the LRU order (for `cache stats`)."""
        query = (
            "SELECT CASE WHEN tag = ? THEN 'negative' WHEN tag LIKE ? THEN 'index'"
            " ELSE 'other' END AS kind, COUNT(*), COALESCE(SUM(size), 0)"
            " FROM Cache GROUP BY kind"
        )
        counts = {
            f"{kind}_{what}": 0
            for kind in ("index", "negative", "other")
            for what in ("entries", "bytes")
        }
        for kind, rows, size in self._reader().execute(
            query, (NEGATIVE_TAG, INDEX_TAG_PREFIX + "%")
        ):
            counts[f"{kind}_entries"] = int(rows)
            counts[f"{kind}_bytes"] = int(size)
        return counts

    def close(self) -> None:
        if self._read_connection is not None:
            self._read_connection.close()
            self._read_connection = None
        self.cache.close()
