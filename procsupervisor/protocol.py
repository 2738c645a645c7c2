"""Supervisor <-> worker messages (DESIGN.md section 6): 4-byte big-endian length + JSON object.

Supervisor to worker: `process {crash_id, ruleset, queue, attempt[, poison]}`, `stop`.
Worker to supervisor: `ready {pid, version, cache_stats}`, `progress {crash_id, stage}`,
`result {crash_id, outcome, reason, timings_ms, cache_stats}`.
Every message is a JSON object with a `type` field. The worker side blocks; the supervisor side
is non-blocking and feeds bytes into a `FrameDecoder` as they arrive.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

WORKER_MESSAGE_TYPES = frozenset({"ready", "progress", "result"})
SUPERVISOR_MESSAGE_TYPES = frozenset({"process", "stop"})
OUTCOMES = frozenset({"ok", "transient", "not_found", "invalid"})


class ProtocolError(Exception):
    """A malformed frame or message; the peer that sent it is restarted."""


def encode(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode("utf-8")
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
    """Accumulates bytes and yields complete messages."""

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

    def send(self, message: dict[str, Any]) -> None:
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

    def _read_exactly(self, size: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < size:
            chunk = self.sock.recv(size - len(chunks))
            if not chunk:
                return None
            chunks += chunk
        return bytes(chunks)
