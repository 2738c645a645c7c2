"""Host-wide totals of the symbol cache counters, for `procsupervisor cache stats`.

Each worker's counters die with it; these totals live in `<cache_dir>/counters.db` and are
added to in batches (at most every few seconds, and whenever a miss is handled), so the hot
path of a memory hit never touches SQLite. Best effort: a failed update loses a few counts,
never a crash.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

COUNTERS_FILE = "counters.db"


class SharedCounters:
    def __init__(self, cache_dir: Path, timeout_s: float = 5.0) -> None:
        self.path = Path(cache_dir) / COUNTERS_FILE
        self.timeout_s = timeout_s
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            connection = sqlite3.connect(
                self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS Counters (name TEXT PRIMARY KEY, value REAL NOT NULL)"
            )
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def add(self, deltas: Mapping[str, float]) -> None:
        changed = [(name, value) for name, value in deltas.items() if value]
        if not changed:
            return
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(
                "INSERT INTO Counters (name, value) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                changed,
            )
            connection.execute("COMMIT")
        except BaseException:
            # A transaction left open (a failed COMMIT included) would make every later
            # BEGIN fail, and the totals would stop for the life of the worker.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def read(self) -> dict[str, float]:
        if not self.path.exists():
            return {}
        return {
            name: value
            for name, value in self._connect().execute(
                "SELECT name, value FROM Counters ORDER BY name"
            )
        }

    def reset(self) -> None:
        if self.path.exists():
            self._connect().execute("DELETE FROM Counters")

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None
