"""A diskcache `Disk` that stores and returns bytes only.

diskcache pickles every key and value that is not a plain str/bytes/number and unpickles what
it reads back, so anyone able to write the cache could run code in every worker
(CVE-2025-69872). This Disk accepts str keys and bytes (or binary file) values only, and refuses
to read back any row that is not raw bytes or a binary file, whatever wrote it.
"""

from __future__ import annotations

import sqlite3
from typing import Any, BinaryIO

import diskcache
from diskcache.core import MODE_BINARY, MODE_RAW, UNKNOWN

from procsupervisor.cache.errors import NotBytesError

# Values smaller than this live in the SQLite row (negative entries); larger ones are files
# that readers mmap.
MIN_FILE_SIZE = 1024


class BytesOnlyDisk(diskcache.Disk):
    """Keys: str. Values: bytes, or a binary file object with `read=True`."""

    def __init__(self, directory: str, min_file_size: int = MIN_FILE_SIZE, **_ignored: Any):
        # pickle_protocol (a diskcache setting) is accepted and ignored: nothing is pickled.
        super().__init__(directory, min_file_size=min_file_size, pickle_protocol=0)

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise NotBytesError(f"symbol cache keys must be str, not {type(key).__name__}")
        return key, True

    def get(self, key: Any, raw: bool) -> str:
        if not raw or type(key) is not str:
            raise NotBytesError("symbol cache row has a non-str key; refusing to decode it")
        return key

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[int, int, str | None, Any]:
        if type(value) is bytes:
            if len(value) < self.min_file_size:
                return 0, MODE_RAW, None, sqlite3.Binary(value)
            return super().store(value, False, key)
        if read and hasattr(value, "read"):
            return super().store(value, True, key)
        raise NotBytesError(f"symbol cache values must be bytes, not {type(value).__name__}")

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> bytes | BinaryIO:
        if mode == MODE_RAW and isinstance(value, bytes | sqlite3.Binary | memoryview):
            return bytes(value)
        if mode == MODE_BINARY and filename is not None:
            return super().fetch(mode, filename, value, read)
        raise NotBytesError(f"symbol cache row has storage mode {mode}; only bytes are read")
