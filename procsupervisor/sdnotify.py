"""systemd's readiness protocol, spoken directly (docs/operations.md, "Running as a service").

With `Type=notify`, systemd passes `$NOTIFY_SOCKET`: a Unix datagram socket (a path, or an
abstract name written with a leading `@`). Each datagram is newline-separated `KEY=value`
assignments: `READY=1` once the service does its job, `RELOADING=1` (with `MONOTONIC_USEC`)
while a reload runs, `STOPPING=1` when a stop begins, `STATUS=...` free text for `systemctl
status`, and `WATCHDOG=1` at least every `$WATCHDOG_USEC` microseconds when the unit sets
`WatchdogSec=`. Without `$NOTIFY_SOCKET` every call does nothing, so the supervisor calls the
notifier unconditionally. The variables are removed from the environment once read, so no
worker (or anything a worker runs) can speak for the supervisor.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import MutableMapping

log = logging.getLogger("procsupervisor.sdnotify")

NOTIFY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    def __init__(self, address: str | None, watchdog_s: float | None = None) -> None:
        self.address = _socket_address(address) if address else None
        # systemd's advice: ping at half the interval, so one late turn is not fatal.
        self.watchdog_every_s = watchdog_s / 2 if watchdog_s else None
        self._next_ping = 0.0
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """Read (and remove) $NOTIFY_SOCKET and the watchdog settings meant for this process."""
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET") or None
        watchdog_s = None
        pid_text = environ.get("WATCHDOG_PID")
        meant_for_us = not pid_text or pid_text == str(os.getpid())
        try:
            usec = int(environ.get("WATCHDOG_USEC") or 0)
        except ValueError:
            usec = 0
        if usec > 0 and meant_for_us:
            watchdog_s = usec / 1e6
        for name in NOTIFY_ENV:
            environ.pop(name, None)
        return cls(address, watchdog_s)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """One datagram of `KEY=value` lines; False when it could not be sent."""
        if self.address is None:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto(payload, self.address)
            return True
        except OSError as exc:
            if not self._warned:  # once: a missing socket would otherwise log every turn
                log.warning("systemd notification failed: %s", exc)
                self._warned = True
            return False

    def ready(self, status: str = "") -> None:
        fields: dict[str, str | int] = {"READY": 1, "MAINPID": os.getpid()}
        if status:
            fields["STATUS"] = status
        self.send(**fields)

    def reloading(self) -> None:
        # MONOTONIC_USEC lets Type=notify-reload match this reload to its request.
        self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> None:
        self.send(STOPPING=1)

    def status(self, text: str) -> None:
        self.send(STATUS=text)

    def ping_watchdog(self, now: float) -> None:
        """WATCHDOG=1 when due; called every loop turn, so a stuck loop stops the pings."""
        if self.watchdog_every_s is None or now < self._next_ping:
            return
        self._next_ping = now + self.watchdog_every_s
        self.send(WATCHDOG=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _socket_address(address: str) -> str:
    # An abstract socket is written `@name`; on the wire its first byte is NUL.
    return "\0" + address[1:] if address.startswith("@") else address
