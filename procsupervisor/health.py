"""Backend health: what one cheap probe of a backend found (docs/operations.md, "Health, check
and status exit codes"; the breaker that acts on it is docs/architecture.md §5).

Every backend (the queue, the source, each destination, each symbol supplier) has
`probe() -> Health`. A probe answers one of three things:

- `healthy`: the backend answered as configured;
- `unreachable`: it did not answer (refused, timed out, overloaded); waiting may fix it;
- `misconfigured`: it answered and refused our configuration (credentials, missing database,
  schema, bucket or vhost); only an operator can fix it.

The cause is one line naming the root exception, e.g. `ConnectionRefusedError: 127.0.0.1:5999`.
This module imports nothing of the service, so queues, storage, the symbol cache, the
supervisor and the CLI can all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

MAX_CAUSE_CHARS = 240


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    UNREACHABLE = "unreachable"
    MISCONFIGURED = "misconfigured"


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    cause: str = ""  # one line; empty when healthy

    @classmethod
    def healthy(cls) -> Health:
        return cls(HealthStatus.HEALTHY)

    @classmethod
    def unreachable(cls, cause: str) -> Health:
        return cls(HealthStatus.UNREACHABLE, bounded_line(cause))

    @classmethod
    def misconfigured(cls, cause: str) -> Health:
        return cls(HealthStatus.MISCONFIGURED, bounded_line(cause))

    @property
    def ok(self) -> bool:
        return self.status is HealthStatus.HEALTHY

    def line(self, name: str) -> str:
        """`<backend>: <status>[: <cause>]`, as `check` prints it."""
        return f"{name}: {self.status}" + (f": {self.cause}" if self.cause else "")

    def to_json(self) -> dict[str, str]:
        return {"status": self.status.value, "cause": self.cause}

    @classmethod
    def from_json(cls, value: object) -> Health:
        """Read back `to_json`; anything malformed reads as unreachable (never as healthy)."""
        if isinstance(value, dict):
            try:
                return cls(HealthStatus(value.get("status")), bounded_line(str(value.get("cause"))))
            except ValueError:
                pass
        return cls.unreachable(f"unreadable probe result: {str(value)[:80]}")


class Probeable(Protocol):
    def probe(self) -> Health:
        """One cheap, bounded check of the backend; never raises."""
        ...


def backend_name(role: str, backend: str) -> str:
    """How a backend is named in logs, status, `check` and crash results:
    `queue rabbitmq`, `source s3`, `destination postgres`, `symbols http https://...`."""
    return f"{role} {backend}"


def bounded_line(text: str, limit: int = MAX_CAUSE_CHARS) -> str:
    """The first non-empty line of `text`, whitespace collapsed, cut to `limit` characters.
    Client libraries put hints on later lines (psycopg2's "Is the server running...")."""
    first = next((line for line in str(text).splitlines() if line.strip()), "")
    line = " ".join(first.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def root_cause(exc: BaseException) -> BaseException:
    """The innermost explicitly chained cause (`raise ... from exc`)."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def describe_cause(exc: BaseException, limit: int = MAX_CAUSE_CHARS) -> str:
    """`<Type>: <message>` of the root cause, on one bounded line."""
    cause = root_cause(exc)
    message = bounded_line(str(cause), limit)
    text = f"{type(cause).__name__}: {message}" if message else type(cause).__name__
    return bounded_line(text, limit)


def innermost_os_error(exc: BaseException) -> OSError | None:
    """The socket error at the bottom of a client library's wrappers, found through args,
    causes, contexts and the attributes pika, urllib3 and requests keep it in."""
    found: OSError | None = None
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError):
            found = current
        pending.extend(getattr(current, "args", ()))
        pending.extend(getattr(current, "exceptions", None) or ())
        pending.append(getattr(current, "exception", None))  # pika's connector errors
        pending.append(getattr(current, "reason", None))  # urllib3's MaxRetryError
        pending.extend((current.__cause__, current.__context__))
    return found


def describe_network_error(exc: BaseException, address: str) -> str:
    """`ConnectionRefusedError: 127.0.0.1:5999` when a socket error is at the bottom of `exc`,
    else `describe_cause(exc)`."""
    os_error = innermost_os_error(exc)
    if os_error is None:
        return describe_cause(exc)
    if isinstance(os_error, ConnectionRefusedError | TimeoutError):
        return f"{type(os_error).__name__}: {address}"
    detail = os_error.strerror or str(os_error)
    return bounded_line(f"{type(os_error).__name__}: {address}: {detail}")
