"""Supervisor <-> worker messages (docs/architecture.md §6): 4-byte big-endian length + JSON object.

Two layers. Framing: `encode` / `FrameDecoder` / `BlockingChannel` move JSON objects with a
`type` field. Messages: one dataclass per message, `to_json()` to send it and
`decode_worker_message` / `decode_supervisor_message` to read it back, so neither side handles
raw dicts. Supervisor to worker: `ProcessRequest`, `StopRequest`. Worker to supervisor:
`Ready`, `Progress`, `Result` (with its `Outcome`). The worker side blocks; the supervisor side
is non-blocking and feeds bytes into a `FrameDecoder` as they arrive. This module belongs to
neither side: both import it, and it imports nothing of theirs.
"""

from __future__ import annotations

import abc
import json
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

HEADER = struct.Struct(">I")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_STAGE_CHARS = 40
MAX_REASON_CHARS = 500
MAX_BACKEND_CHARS = 200


class ProtocolError(Exception):
    """A malformed frame or message; the peer that sent it is restarted."""


class Outcome(StrEnum):
    """How a crash ended in the worker; the supervisor acts on it (docs/architecture.md §5)."""

    OK = "ok"  # processed and saved everywhere: ack
    TRANSIENT = "transient"  # a source read or a destination failed: retry later
    NOT_FOUND = "not_found"  # no raw crash (yet): retried, then dead-lettered
    INVALID = "invalid"  # retrying cannot help: dead-letter now
    UNAVAILABLE = "unavailable"  # a backend failed, not the crash: requeue, open the breaker


# -- messages -------------------------------------------------------------------------------


class Message(abc.ABC):
    """A typed message; `type` is its name on the pipe."""

    type: ClassVar[str]

    @abc.abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The JSON object sent on the pipe."""


@dataclass(frozen=True)
class ProcessRequest(Message):
    """Supervisor to worker: process one crash (or save its poison record)."""

    type: ClassVar[str] = "process"
    crash_id: str
    ruleset: str | None
    queue: str
    attempt: int
    poison: str | None = None  # why the crash is a poison crash, when saving its record

    def to_json(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": self.type,
            "crash_id": self.crash_id,
            "ruleset": self.ruleset,
            "queue": self.queue,
            "attempt": self.attempt,
        }
        if self.poison is not None:
            message["poison"] = self.poison
        return message

    @classmethod
    def from_json(cls, message: Mapping[str, Any]) -> ProcessRequest:
        return cls(
            crash_id=_text(message, "crash_id"),
            ruleset=_optional_text(message, "ruleset") or None,
            queue=_text(message, "queue", "normal"),
            attempt=_integer(message, "attempt", 1),
            poison=_optional_text(message, "poison"),
        )


@dataclass(frozen=True)
class StopRequest(Message):
    """Supervisor to worker: exit once idle."""

    type: ClassVar[str] = "stop"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type}

    @classmethod
    def from_json(cls, message: Mapping[str, Any]) -> StopRequest:
        return cls()


@dataclass(frozen=True)
class Ready(Message):
    """Worker to supervisor: clients open, waiting for work."""

    type: ClassVar[str] = "ready"
    pid: int
    version: str = ""
    cache_stats: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "pid": self.pid,
            "version": self.version,
            "cache_stats": self.cache_stats,
        }

    @classmethod
    def from_json(cls, message: Mapping[str, Any]) -> Ready:
        return cls(
            pid=_integer(message, "pid"),
            version=_text(message, "version", ""),
            cache_stats=_cache_stats(message),
        )


@dataclass(frozen=True)
class Progress(Message):
    """Worker to supervisor: the crash it holds entered a stage (fetch, process, save)."""

    type: ClassVar[str] = "progress"
    crash_id: str
    stage: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "crash_id": self.crash_id, "stage": self.stage}

    @classmethod
    def from_json(cls, message: Mapping[str, Any]) -> Progress:
        return cls(
            crash_id=_crash_id(message),
            stage=str(message.get("stage", ""))[:MAX_STAGE_CHARS],
        )


@dataclass(frozen=True)
class Result(Message):
    """Worker to supervisor: the crash it held is done."""

    type: ClassVar[str] = "result"
    crash_id: str
    outcome: Outcome
    reason: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    cache_stats: dict[str, Any] | None = None
    backend: str | None = None  # with `unavailable`: the backend that failed, e.g. "source s3"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "crash_id": self.crash_id,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "timings_ms": self.timings_ms,
            "cache_stats": self.cache_stats,
            "backend": self.backend,
        }

    @classmethod
    def from_json(cls, message: Mapping[str, Any]) -> Result:
        outcome = message.get("outcome")
        try:
            known = Outcome(outcome)
        except ValueError:
            raise ProtocolError(f"unknown outcome {outcome!r}")
        timings = message.get("timings_ms")
        return cls(
            crash_id=_crash_id(message),
            outcome=known,
            reason=str(message.get("reason") or "")[:MAX_REASON_CHARS],
            # Timings only feed the log: anything that is not a number is left out.
            timings_ms={
                str(k): v
                for k, v in (timings.items() if isinstance(timings, dict) else ())
                if isinstance(v, int | float)
            },
            cache_stats=_cache_stats(message),
            backend=(_optional_text(message, "backend") or "")[:MAX_BACKEND_CHARS] or None,
        )


SupervisorMessage = ProcessRequest | StopRequest
WorkerMessage = Ready | Progress | Result

SUPERVISOR_MESSAGES: dict[str, type[ProcessRequest] | type[StopRequest]] = {
    ProcessRequest.type: ProcessRequest,
    StopRequest.type: StopRequest,
}
WORKER_MESSAGES: dict[str, type[Ready] | type[Progress] | type[Result]] = {
    Ready.type: Ready,
    Progress.type: Progress,
    Result.type: Result,
}
SUPERVISOR_MESSAGE_TYPES = frozenset(SUPERVISOR_MESSAGES)
WORKER_MESSAGE_TYPES = frozenset(WORKER_MESSAGES)


def decode_worker_message(message: Mapping[str, Any]) -> WorkerMessage:
    """The typed message for a decoded frame from a worker; ProtocolError if it is not one."""
    kind = WORKER_MESSAGES.get(message.get("type"))
    if kind is None:
        raise ProtocolError(f"unexpected message: {str(message)[:120]}")
    return kind.from_json(message)


def decode_supervisor_message(message: Mapping[str, Any]) -> SupervisorMessage:
    """The typed message for a decoded frame from the supervisor; ProtocolError if not one."""
    kind = SUPERVISOR_MESSAGES.get(message.get("type"))
    if kind is None:
        raise ProtocolError(f"unexpected message: {str(message)[:120]}")
    return kind.from_json(message)


def _crash_id(message: Mapping[str, Any]) -> str:
    # A crash id of the wrong type cannot match the crash the worker holds; the supervisor
    # reports that mismatch, so it is kept as text here rather than rejected separately.
    return str(message.get("crash_id"))


def _text(message: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = message.get(key, default)
    if not isinstance(value, str):
        raise ProtocolError(f"{message.get('type')}: {key} must be text, got {value!r:.80}")
    return value


def _optional_text(message: Mapping[str, Any], key: str) -> str | None:
    return None if message.get(key) is None else _text(message, key)


def _integer(message: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = message.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{message.get('type')}: {key} must be an integer, got {value!r:.80}")
    return value


def _cache_stats(message: Mapping[str, Any]) -> dict[str, Any] | None:
    stats = message.get("cache_stats")
    return stats if isinstance(stats, dict) else None


# -- framing --------------------------------------------------------------------------------


def encode(message: Message | Mapping[str, Any]) -> bytes:
    """One frame: a typed message, or a JSON object already shaped as one."""
    body = message.to_json() if isinstance(message, Message) else message
    payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return HEADER.pack(len(payload)) + payload


def decode_payload(payload: bytes, allowed_types: frozenset[str]) -> dict[str, Any]:
    try:
        message = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"message is not JSON: {exc}")
    if not isinstance(message, dict) or message.get("type") not in allowed_types:
        raise ProtocolError(f"unexpected message: {str(message)[:120]}")
    return message


class FrameDecoder:
    """Accumulates bytes and yields complete messages as JSON objects."""

    def __init__(self, allowed_types: frozenset[str]) -> None:
        self._buffer = bytearray()
        self._allowed = allowed_types

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > MAX_MESSAGE_BYTES:
                raise ProtocolError(f"frame of {length} bytes exceeds {MAX_MESSAGE_BYTES}")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[HEADER.size : end])
            del self._buffer[:end]
            messages.append(decode_payload(payload, self._allowed))
        return messages


class BlockingChannel:
    """The worker's end of its pipe: send a message, wait for the next one."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.setblocking(True)

    def send(self, message: Message | Mapping[str, Any]) -> None:
        self.sock.sendall(encode(message))

    def receive(self) -> dict[str, Any] | None:
        """The next message from the supervisor, or None when the pipe is closed (EOF)."""
        header = self._read_exactly(HEADER.size)
        if header is None:
            return None
        (length,) = HEADER.unpack(header)
        if length > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"frame of {length} bytes exceeds {MAX_MESSAGE_BYTES}")
        payload = self._read_exactly(length)
        if payload is None:
            return None
        return decode_payload(payload, SUPERVISOR_MESSAGE_TYPES)

    def receive_request(self) -> SupervisorMessage | None:
        """`receive`, typed."""
        message = self.receive()
        return None if message is None else decode_supervisor_message(message)

    def _read_exactly(self, size: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < size:
            chunk = self.sock.recv(size - len(chunks))
            if not chunk:
                return None
            chunks += chunk
        return bytes(chunks)
