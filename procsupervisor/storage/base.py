"""Storage interfaces (docs/architecture.md §7).

A *source* gives a worker the raw crash, its dumps and (for reprocessing) the processed crash
saved earlier. A *destination* saves a processed crash. Backends raise the two exceptions below
so the worker can report the right outcome to the supervisor (docs/architecture.md §5).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from procsupervisor.health import Health

# The main dump's canonical name; Socorro stores it under the key name "dump".
MAIN_DUMP_NAME = "upload_file_minidump"


class CrashNotFound(Exception):
    """The crash (or the part asked for) does not exist in the source: outcome `not_found`."""


class TransientStorageError(Exception):
    """Any other failure talking to storage: outcome `transient` (retried later)."""


class BackendUnavailable(TransientStorageError):
    """The backend itself failed (unreachable, or refusing our configuration), so it would fail
    any crash: outcome `unavailable`. The crash goes back to its queue without costing an
    attempt and the supervisor's breaker stops pulling until a probe finds the backend
    healthy again (docs/architecture.md §5). Raise it `from` the client's exception, which
    the dead-letter reason and the log name as the root cause."""


class CrashUnreadable(ValueError):
    """The stored crash cannot be decoded (malformed JSON, not an object): outcome `invalid`,
    dead-lettered on its first attempt with the parse error as the reason."""


class CrashSource(abc.ABC):
    """Read side. Implementations validate the crash id before building any key."""

    @abc.abstractmethod
    def get_raw_crash(self, crash_id: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    def get_dumps(self, crash_id: str) -> dict[str, bytes]:
        """Dump name -> bytes. The main dump is returned as `upload_file_minidump`."""

    @abc.abstractmethod
    def get_processed(self, crash_id: str) -> dict[str, Any]:
        """The processed crash saved earlier; raises CrashNotFound if there is none."""

    def save_raw_crash(
        self, raw_crash: Mapping[str, Any], dumps: Mapping[str, bytes], crash_id: str
    ) -> None:
        """Store a new raw crash and its dumps (used by `submit`, not by workers)."""
        raise NotImplementedError(f"{type(self).__name__} cannot store raw crashes")

    def raw_crash_ids(self, day: dt.date) -> Iterator[str]:
        """Crash ids of the raw crashes stored for `day` (the date in the key layout,
        docs/processing.md §3), for `verify`."""
        raise NotImplementedError(f"{type(self).__name__} cannot list raw crashes")

    def has_processed(self, crash_id: str) -> bool:
        """Whether a processed crash is stored for `crash_id` (backends answer without
        reading it where they can)."""
        try:
            self.get_processed(crash_id)
        except CrashNotFound:
            return False
        return True

    def probe(self) -> Health:
        """One cheap check that the source answers as configured (procsupervisor.health)."""
        return Health.healthy()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients (called when a worker exits)."""


class CrashDestination(abc.ABC):
    """Write side. Saving the same crash twice must be harmless (upsert by crash id)."""

    name: str = "destination"

    @abc.abstractmethod
    def save_processed(
        self, raw_crash: Mapping[str, Any], processed_crash: Mapping[str, Any]
    ) -> None:
        """Raise BackendUnavailable when the backend itself failed, TransientStorageError (or
        any exception) for a failure of this crash."""

    def probe(self) -> Health:
        """One cheap check that the destination answers as configured."""
        return Health.healthy()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients (called when a worker exits)."""
