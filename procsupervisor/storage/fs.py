"""The embedded `fs` crash storage: Socorro's S3 key layout (docs/processing.md §3) under a folder.

    v2/raw_crash/<id[:3]>/<YYYYMMDD>/<id>   raw crash JSON
    v1/dump_names/<id>                      JSON list of the original dump names
    v1/dump/<id>                            the main dump (upload_file_minidump)
    v1/<dump name>/<id>                     every other dump
    v1/processed_crash/<id>                 processed crash JSON

Every crash id is validated before a path is built, and dump names must be plain names. Files
are written to a temporary name and renamed, so a reader never sees half a file; the raw crash is
written last, so a raw crash that exists always has its dumps.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from procsupervisor import bounded_json, crashid
from procsupervisor.health import Health
from procsupervisor.metrics import Metrics
from procsupervisor.storage import crashjson, keys
from procsupervisor.storage.base import (
    CrashDestination,
    CrashNotFound,
    CrashSource,
    TransientStorageError,
)

MAX_JSON_BYTES = bounded_json.MAX_JSON_BYTES


class FSCrashStorage(CrashSource, CrashDestination):
    name = "fs"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], *, data_dir: Path, metrics: Metrics
    ) -> FSCrashStorage:
        root = options.get("root") or ""
        return cls(Path(root) if root else Path(data_dir) / "crashes")

    def probe(self) -> Health:
        """The root is a folder we can read and write (or one we can create)."""
        existing = self.root
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            return Health.misconfigured(f"{existing} is not a directory")
        if not os.access(existing, os.R_OK | os.W_OK | os.X_OK):
            return Health.misconfigured(f"PermissionError: {existing} is not writable")
        return Health.healthy()

    # -- keys ---------------------------------------------------------------------------------

    def raw_crash_path(self, crash_id: str) -> Path:
        return self.root / keys.raw_crash_key(crash_id)

    def dump_names_path(self, crash_id: str) -> Path:
        return self.root / keys.dump_names_key(crash_id)

    def dump_path(self, crash_id: str, dump_name: str) -> Path:
        return self.root / keys.dump_key(crash_id, dump_name)

    def processed_crash_path(self, crash_id: str) -> Path:
        return self.root / keys.processed_crash_key(crash_id)

    # -- read side ----------------------------------------------------------------------------

    def get_raw_crash(self, crash_id: str) -> dict[str, Any]:
        return self._read_json_object(self.raw_crash_path(crash_id), "raw crash")

    def get_dumps(self, crash_id: str) -> dict[str, bytes]:
        names_path = self.dump_names_path(crash_id)
        try:
            names = json.loads(self._read_bytes(names_path, "dump names"))
        except CrashNotFound:
            return {}  # a crash without dumps
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"dump names of {crash_id} are not a list of strings")
        dumps = {}
        for name in names:
            canonical = keys.canonical_dump_name(name)
            dumps[canonical] = self._read_bytes(self.dump_path(crash_id, canonical), "dump")
        return dumps

    def get_processed(self, crash_id: str) -> dict[str, Any]:
        return self._read_json_object(self.processed_crash_path(crash_id), "processed crash")

    def raw_crash_ids(self, day: dt.date) -> Iterator[str]:
        """v2/raw_crash/<id[:3]>/<YYYYMMDD>/<id>: every entropy folder's folder for `day`."""
        folder = self.root / "v2" / "raw_crash"
        try:
            entropies = sorted(os.listdir(folder))
        except FileNotFoundError:
            return
        for entropy in entropies:
            try:
                names = sorted(os.listdir(folder / entropy / f"{day:%Y%m%d}"))
            except (FileNotFoundError, NotADirectoryError):
                continue
            yield from (name for name in names if crashid.is_valid(name))

    def has_processed(self, crash_id: str) -> bool:
        return self.processed_crash_path(crash_id).is_file()

    def _read_bytes(self, path: Path, what: str) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise CrashNotFound(f"{what} not found: {path.name}")
        except OSError as exc:
            raise TransientStorageError(f"reading {what} {path.name}: {exc.strerror}")

    def _read_json_object(self, path: Path, what: str) -> dict[str, Any]:
        data = self._read_bytes(path, what)
        # Bounded in size and nesting: hostile stored data is refused (outcome `invalid`),
        # never a RecursionError retried for every attempt.
        return bounded_json.loads_object(data, f"{what} {path.name}", max_bytes=MAX_JSON_BYTES)

    # -- write side ---------------------------------------------------------------------------

    def save_raw_crash(
        self, raw_crash: Mapping[str, Any], dumps: Mapping[str, bytes], crash_id: str
    ) -> None:
        crashid.validate(crash_id)
        names = list(dumps)
        for name in names:
            self._write(self.dump_path(crash_id, name), bytes(dumps[name]))
        self._write(self.dump_names_path(crash_id), json.dumps(names).encode())
        self._write(self.raw_crash_path(crash_id), crashjson.dumps(raw_crash).encode())

    def save_processed(
        self, raw_crash: Mapping[str, Any], processed_crash: Mapping[str, Any]
    ) -> None:
        crash_id = crashjson.crash_id_of(raw_crash, processed_crash)
        self._write(self.processed_crash_path(crash_id), crashjson.dumps(processed_crash).encode())

    def _write(self, path: Path, data: bytes) -> None:
        # A temporary name unique to this process and write, then an atomic rename over the
        # final name: readers see the old file or the new one, never a part.
        tmp = path.with_name(f".tmp-{os.getpid()}-{next(_TMP_SEQUENCE)}-{path.name}")
        try:
            try:
                fd = os.open(tmp, _CREATE_FLAGS, 0o644)
            except FileNotFoundError:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, _CREATE_FLAGS, 0o644)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            raise TransientStorageError(f"writing {path.name}: {exc.strerror or exc}")


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_TMP_SEQUENCE = itertools.count()
