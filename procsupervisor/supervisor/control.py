"""The control socket (docs/architecture.md §10): a Unix socket, mode 0600, peers of the same
uid (or root) only.

One JSON request line in, one JSON reply line out, then the connection closes. The server side
is non-blocking and served from the supervisor's event loop; `request` is the client side used by
the CLI.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("procsupervisor.control")

MAX_REQUEST_BYTES = 64 * 1024
CONNECTION_TIMEOUT_S = 5.0
COMMANDS = ("status", "reload", "scale", "stop")
MAX_SOCKET_PATH_BYTES = 107  # sun_path is 108 bytes on Linux, including the terminating NUL


class PendingReply:
    """Returned by the handler for a request it answers later (a reload whose new workers are
    still being tried): the connection stays open, exempt from the idle timeout, until
    `send` is called; the handler bounds that wait itself."""

    def __init__(self) -> None:
        self._deliver: Callable[[dict[str, Any]], None] | None = None

    def bind(self, deliver: Callable[[dict[str, Any]], None]) -> None:
        self._deliver = deliver

    def send(self, reply: dict[str, Any]) -> None:
        if self._deliver is not None:
            self._deliver(reply)
            self._deliver = None


Handler = Callable[[dict[str, Any]], "dict[str, Any] | PendingReply"]


class ControlError(Exception):
    """The supervisor could not be reached or refused the request."""


class AlreadyRunning(Exception):
    pass


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.opened = time.monotonic()
        self.answer_pending = False


class ControlServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = Path(path)
        self.handler = handler
        self.connections: dict[int, _Connection] = {}
        self.listener = self._bind()

    def _bind(self) -> socket.socket:
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH_BYTES:
            raise ControlError(
                f"control socket path is longer than {MAX_SOCKET_PATH_BYTES} bytes: {self.path}"
                " (set [supervisor] socket to a shorter path)"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise AlreadyRunning(f"a supervisor already answers on {self.path}")
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is created 0600: no window where it is wider
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        listener.listen(16)
        listener.setblocking(False)
        return listener

    def fileno(self) -> int:
        return self.listener.fileno()

    def accept(self) -> socket.socket | None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return None
        if not _peer_is_us(sock):
            log.warning("control connection refused: peer uid differs")
            sock.close()
            return None
        sock.setblocking(False)
        self.connections[sock.fileno()] = _Connection(sock)
        return sock

    def readable(self, fd: int) -> bool:
        """Read from a connection; return True when it is finished (reply sent or dropped)."""
        conn = self.connections.get(fd)
        if conn is None:
            return True
        try:
            data = conn.sock.recv(MAX_REQUEST_BYTES)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._close(fd)
            return True
        conn.buffer += data
        if b"\n" not in conn.buffer:
            if len(conn.buffer) > MAX_REQUEST_BYTES:
                self._reply(fd, {"ok": False, "error": "request too large"})
                return True
            return False
        line = bytes(conn.buffer.split(b"\n", 1)[0])
        reply = self._dispatch(line)
        if isinstance(reply, PendingReply):
            conn.answer_pending = True
            reply.bind(lambda answer: self._reply(fd, answer) if fd in self.connections else None)
            return True
        self._reply(fd, reply)
        return True

    def _dispatch(self, line: bytes) -> dict[str, Any] | PendingReply:
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "request is not JSON"}
        if not isinstance(request, dict) or request.get("command") not in COMMANDS:
            return {"ok": False, "error": f"unknown command; known: {', '.join(COMMANDS)}"}
        try:
            return self.handler(request)
        except Exception as exc:
            log.exception("control command failed")
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def _reply(self, fd: int, reply: dict[str, Any]) -> None:
        conn = self.connections[fd]
        try:
            # Replies are small; a short blocking send keeps the code simple and bounded.
            conn.sock.settimeout(1.0)
            conn.sock.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass
        self._close(fd)

    def expire(self) -> list[int]:
        """Drop connections idle past the timeout; return their descriptors."""
        now = time.monotonic()
        stale = [
            fd for fd, c in self.connections.items()
            if now - c.opened > CONNECTION_TIMEOUT_S and not c.answer_pending
        ]
        for fd in stale:
            self._close(fd)
        return stale

    def _close(self, fd: int) -> None:
        conn = self.connections.pop(fd, None)
        if conn is not None:
            conn.sock.close()

    def close(self) -> None:
        if self.listener.fileno() == -1:
            return  # closed already: never unlink a path another supervisor may own by now
        for fd in list(self.connections):
            self._close(fd)
        self.listener.close()
        try:
            self.path.unlink()
        except OSError:
            pass  # gone already, or in a directory that only root (before a privilege drop) owns


def _peer_is_us(sock: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED"):
        return True  # not Linux: the 0600 mode of the socket file is the only guard
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    # root too: after `start --user` drops privileges, root still operates the service (and
    # could take over the process anyway).
    return uid in (os.getuid(), 0)


def _answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            probe.connect(str(path))
            return True
    except OSError:
        return False


def request(path: Path, command: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
    """Send one command to a running supervisor and return its reply."""
    payload = json.dumps({"command": command, **args}).encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(payload)
            data = bytearray()
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError(f"no supervisor is running (nothing answers on {path})")
    except OSError as exc:
        raise ControlError(f"control socket {path}: {exc}")
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError(f"control socket {path}: unreadable reply")
    if not isinstance(reply, dict):
        raise ControlError(f"control socket {path}: unexpected reply")
    return reply
