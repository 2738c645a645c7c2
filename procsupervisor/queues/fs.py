"""The embedded `fs` queue: a spool directory with crash-safe claims (docs/architecture.md §4, 5).

    <spool>/ready/<queue>/<ready_at_ns>-<pid>-<seq>   waiting messages (JSON), oldest name first
    <spool>/inflight/<queue>/<same name>               claimed by the supervisor (atomic rename)
    <spool>/deadletter/<name>                          dead letters with origin, attempts, reason
    <spool>/tmp/                                       files being written, renamed when complete

The name starts with the time the message becomes deliverable, so a sorted listing is the
delivery order and a retry with backoff is just a message whose name lies in the future. What a
dead supervisor left in `inflight` goes back to `ready` under its old name (first in line) on the
next start. Writers always write into `tmp` and rename, so a reader never sees half a message.

An `ack`, `retry`, `dead_letter` or `release` that cannot be written (the spool is full or
not writable) raises and leaves the message in `inflight`; the queue remembers the action and
tries it again from `poll` every `STUCK_RETRY_S`, so the running supervisor delivers the crash
again once the spool can be written, and `stuck` lists it for status meanwhile.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from procsupervisor.health import Health
from procsupervisor.logical_queues import DEFAULT_QUEUE_NAMES
from procsupervisor.logs import log_event
from procsupervisor.metrics import Metrics
from procsupervisor.queues.base import CrashQueue, DeadLetter, Delivery

log = logging.getLogger(__name__)

MAX_BODY_CHARS = 200
STUCK_RETRY_S = 1.0  # how often a queue action that failed on the spool is tried again
# How often an exhausted in-memory listing may be refreshed from the directory. A listing is
# the expensive part of a claim, and a waiting message is found at most this late.
RELIST_INTERVAL_S = 0.02
# Between listings, an unchanged folder mtime means nothing new arrived; a listing is still
# forced this often, in case two changes fell within one tick of the filesystem's clock.
FULL_RELIST_S = 1.0
# File names end in `<pid>-<seq>`; one counter per process (not per instance) keeps them unique
# when one process holds several queue clients, e.g. the supervisor across a reload.
_SEQUENCE = itertools.count()
# A dead letter's id is its file name; anything else (a path, "..") is never looked up.
_LETTER_ID = re.compile(r"\d{20}-\d+-\d+")


class FSQueue(CrashQueue):
    def __init__(self, spool: Path, queue_names: tuple[str, ...] = DEFAULT_QUEUE_NAMES) -> None:
        self.spool = Path(spool)
        self.queue_names = tuple(queue_names)
        self._ready = {q: self.spool / "ready" / q for q in self.queue_names}
        self._inflight = {q: self.spool / "inflight" / q for q in self.queue_names}
        self._dead = self.spool / "deadletter"
        self._tmp = self.spool / "tmp"
        for folder in (*self._ready.values(), *self._inflight.values(), self._dead, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._pending: dict[str, deque[str]] = {q: deque() for q in self.queue_names}
        self._listed_at: dict[str, float] = dict.fromkeys(self.queue_names, float("-inf"))
        self._listed_mtime: dict[str, int] = dict.fromkeys(self.queue_names, -1)
        # In-flight messages whose action failed, by their inflight path: action to try again.
        self._stuck: dict[Path, tuple[Delivery, str, Callable[[], None]]] = {}
        self._stuck_retry_at = 0.0

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], *, data_dir: Path, metrics: Metrics
    ) -> FSQueue:
        spool = options.get("spool") or ""
        return cls(Path(spool) if spool else Path(data_dir) / "queue")

    # -- producing ----------------------------------------------------------------------------

    def publish(self, queue: str, body: str) -> None:
        self._put(queue, {"body": _checked_body(body), "attempt": 1}, delay_s=0.0)

    def _put(self, queue: str, message: dict[str, Any], delay_s: float) -> None:
        ready_ns = time.time_ns() + int(delay_s * 1e9)
        self._write_atomically(self._folder(self._ready, queue) / _message_name(ready_ns), message)
        self._listed_mtime[queue] = -1  # our own change: the next get must look again

    def _write_atomically(self, path: Path, message: Mapping[str, Any]) -> None:
        tmp = self._tmp / path.name
        tmp.write_text(json.dumps(message), encoding="utf-8")
        os.rename(tmp, path)

    # -- consuming ----------------------------------------------------------------------------

    def get(self, queue: str) -> Delivery | None:
        ready = self._folder(self._ready, queue)
        inflight = self._inflight[queue]
        pending = self._pending[queue]
        now_ns = time.time_ns()
        for _ in range(2):
            while pending and int(pending[0][:20]) <= now_ns:
                name = pending.popleft()
                try:
                    os.rename(ready / name, inflight / name)
                except FileNotFoundError:
                    continue  # taken by `requeue`/another reader since the listing
                return self._delivery(queue, inflight / name)
            since = time.monotonic() - self._listed_at[queue]
            if since < RELIST_INTERVAL_S:
                return None
            if since < FULL_RELIST_S and os.stat(ready).st_mtime_ns == self._listed_mtime[queue]:
                return None  # nothing was added or removed since the listing
            self._relist(queue)
        return None

    def _relist(self, queue: str) -> None:
        # The mtime is read before listing, so a change during the listing shows up next time.
        self._listed_mtime[queue] = os.stat(self._ready[queue]).st_mtime_ns
        names = sorted(n for n in os.listdir(self._ready[queue]) if n[:20].isdigit())
        pending = self._pending[queue]
        pending.clear()
        pending.extend(names)
        self._listed_at[queue] = time.monotonic()

    def _delivery(self, queue: str, path: Path) -> Delivery:
        try:
            message = json.loads(path.read_bytes())
            body = str(message["body"])
            attempt = int(message.get("attempt", 1))
        except (ValueError, KeyError, TypeError):
            # A damaged message still has to end somewhere visible: deliver it with an empty
            # body, which the supervisor dead-letters as an invalid crash id.
            body, attempt, message = "", 1, {}
        headers = {k: v for k, v in message.items() if k not in ("body", "attempt")}
        return Delivery(queue=queue, body=body, attempt=attempt, tag=path, headers=headers)

    def ack(self, delivery: Delivery) -> None:
        self._settle(delivery, "ack", lambda: _unlink(delivery.tag))

    def retry(self, delivery: Delivery, reason: str, delay_s: float) -> None:
        message = {"body": delivery.body, "attempt": delivery.attempt + 1, "reason": reason}
        written = False  # tried again from `poll`: the copy is written once, whatever failed

        def action() -> None:
            nonlocal written
            if not written:
                self._put(delivery.queue, message, delay_s=delay_s)
                written = True
            _unlink(delivery.tag)

        self._settle(delivery, "retry", action)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        message = {
            "body": delivery.body,
            "queue": delivery.queue,
            "attempts": delivery.attempt,
            "reason": reason,
            "dead_lettered_at": time.time(),
        }
        written = False

        def action() -> None:
            nonlocal written
            if not written:
                self._write_atomically(self._dead / _message_name(time.time_ns()), message)
                written = True
            _unlink(delivery.tag)

        self._settle(delivery, "dead_letter", action)

    def _settle(self, delivery: Delivery, what: str, action: Callable[[], None]) -> None:
        """Run `action`; if the spool refuses it, keep it to try again from `poll` and raise."""
        try:
            action()
        except OSError:
            if not self._stuck:
                self._stuck_retry_at = time.monotonic() + STUCK_RETRY_S
            self._stuck[Path(delivery.tag)] = (delivery, what, action)
            raise
        self._stuck.pop(Path(delivery.tag), None)

    def poll(self) -> None:
        if not self._stuck or time.monotonic() < self._stuck_retry_at:
            return
        self._stuck_retry_at = time.monotonic() + STUCK_RETRY_S
        for path, (delivery, what, action) in list(self._stuck.items()):
            try:
                action()
            except OSError as exc:
                log_event(log, logging.WARNING, "spool still refuses a queue action",
                          crash_id=delivery.crash_id[:80], queue=delivery.queue, action=what,
                          stuck=len(self._stuck), error=f"{type(exc).__name__}: {exc}"[:200])
                return  # the spool is still broken; the rest would fail alike
            del self._stuck[path]
            log_event(log, logging.INFO, "stuck crash settled", crash_id=delivery.crash_id[:80],
                      queue=delivery.queue, action=what)

    def stuck(self) -> list[str]:
        return [delivery.crash_id for delivery, _, _ in self._stuck.values()]

    def probe(self) -> Health:
        for folder in (*self._ready.values(), *self._inflight.values(), self._dead, self._tmp):
            if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
                return Health.misconfigured(f"PermissionError: {folder} is not writable")
        return Health.healthy()

    # -- maintenance --------------------------------------------------------------------------

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter (body, queue, attempts, reason), oldest first."""
        letters = []
        for path in sorted(self._dead.iterdir()):
            try:
                letters.append(json.loads(path.read_bytes()))
            except (OSError, ValueError):
                continue
        return letters

    def requeue_dead(self) -> int:
        """Requeue every readable dead letter; a damaged one stays where it is (as in
        `dead_letters`), so one bad file never blocks the rest."""
        moved = 0
        for path in sorted(self._dead.iterdir()):
            try:
                letter = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            if not isinstance(letter, dict):
                continue
            queue = letter.get("queue")
            if queue not in self._ready:
                queue = "normal" if "normal" in self._ready else self.queue_names[0]
            self._put(queue, {"body": str(letter.get("body", "")), "attempt": 1}, delay_s=0.0)
            _unlink(path)
            moved += 1
        return moved

    def list_dead(self, limit: int | None = None) -> list[DeadLetter]:
        names = sorted(n for n in os.listdir(self._dead) if _LETTER_ID.fullmatch(n))
        found = (self._read_dead(name) for name in names)
        letters = [letter for letter in found if letter is not None]
        return letters if limit is None else letters[: max(0, limit)]

    def find_dead(self, letter_ids: Collection[str]) -> dict[str, DeadLetter]:
        found = (self._read_dead(i) for i in set(letter_ids) if _LETTER_ID.fullmatch(i))
        return {letter.letter_id: letter for letter in found if letter is not None}

    def requeue_dead_letters(self, letter_ids: Collection[str]) -> set[str]:
        moved = set()
        for letter_id, letter in self.find_dead(letter_ids).items():
            if not letter.body:
                continue  # unreadable: nothing to requeue; `purge` removes it
            queue = letter.queue if letter.queue in self._ready else "normal"
            self._put(queue, {"body": letter.body, "attempt": 1}, delay_s=0.0)
            _unlink(self._dead / letter_id)
            moved.add(letter_id)
        return moved

    def purge_dead(self, letter_ids: Collection[str]) -> set[str]:
        purged = set()
        for letter_id in self.find_dead(letter_ids):
            _unlink(self._dead / letter_id)
            purged.add(letter_id)
        return purged

    def dead_letter_count(self) -> int:
        return len(os.listdir(self._dead))

    def _read_dead(self, name: str) -> DeadLetter | None:
        """The letter in file `name`; a damaged one is still listed (so it can be purged),
        with why it cannot be read as its reason."""
        path = self._dead / name
        try:
            letter = json.loads(path.read_bytes())
            if not isinstance(letter, dict):
                raise ValueError("not a JSON object")
            when = float(letter.get("dead_lettered_at") or 0)
            return DeadLetter(
                letter_id=name,
                body=str(letter.get("body", "")),
                queue=str(letter.get("queue", "")),
                attempts=int(letter.get("attempts", 1)),
                reason=str(letter.get("reason", "")),
                dead_lettered_at=_iso(when),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            return DeadLetter(name, "", "", 0, f"unreadable dead letter: {exc}"[:300], "")

    def recover_in_flight(self) -> int:
        recovered = 0
        for queue, folder in self._inflight.items():
            for name in os.listdir(folder):
                os.rename(folder / name, self._ready[queue] / name)
                recovered += 1
            self._listed_at[queue] = float("-inf")
            self._listed_mtime[queue] = -1
        stale_before = time.time() - 60  # younger ones may belong to a live `submit`
        for path in self._tmp.iterdir():
            try:
                if path.stat().st_mtime < stale_before:
                    _unlink(path)  # half-written by a process that died mid-write
            except FileNotFoundError:
                continue
        return recovered

    def depths(self) -> dict[str, int]:
        return {q: len(os.listdir(folder)) for q, folder in self._ready.items()}

    def queued_crash_ids(self) -> set[str]:
        """Crash ids of every message waiting, in flight or dead-lettered (read as it is now;
        a message moving between folders during the walk may be missed, never invented)."""
        folders = [*self._ready.values(), *self._inflight.values(), self._dead]
        found: set[str] = set()
        for folder in folders:
            for name in os.listdir(folder):
                try:
                    body = json.loads((folder / name).read_bytes()).get("body")
                except (OSError, ValueError, AttributeError):
                    continue
                if isinstance(body, str):
                    found.add(body.split(":", 1)[0])
        return found

    def _folder(self, folders: dict[str, Path], queue: str) -> Path:
        try:
            return folders[queue]
        except KeyError:
            raise ValueError(f"unknown queue {queue!r} (known: {', '.join(self.queue_names)})")


def _message_name(ns: int) -> str:
    """`<ns>-<pid>-<seq>`: sorts by time, unique across processes and within one."""
    return f"{ns:020d}-{os.getpid()}-{next(_SEQUENCE):010d}"


def _iso(epoch_s: float) -> str:
    if epoch_s <= 0:
        return ""
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat(timespec="seconds")


def _checked_body(body: str) -> str:
    if not isinstance(body, str) or not body or len(body) > MAX_BODY_CHARS:
        raise ValueError(f"queue message body must be 1-{MAX_BODY_CHARS} characters")
    return body


def _unlink(path: Any) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
