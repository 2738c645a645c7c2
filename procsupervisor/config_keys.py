"""The type and range of every configuration key that holds a number, a flag or a choice
(docs/architecture.md §10), checked when the configuration is loaded.

Each part of the system still reads its own keys; this table lets `start`, a reload and
`check` refuse a value every worker would die on (`stackwalk_timeout_s = soon`) before any
worker is started, with the file, section and key in the message. Keys not listed here are
free text (URLs, paths, names) or belong to a part that checks them itself: the symbol cache
checks `[symbols]` (config.py asks it), and what only a worker can judge (the processor class,
its options, the cache directory) is tried by starting one worker in a throwaway child
(`procsupervisor.worker_probe`).

`[destinations]` keys carry their backend's prefix (`postgres_attempts`); the `[source]` keys
are the same backend keys without one. The `[supervisor]` numbers (`workers`, `deadline_s`,
`probe_max_interval_s`, ...) are parsed and range-checked where config.py reads them; its other
typed keys are listed here.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Number:
    """An int or a float, `>= minimum` (or `> minimum` when `above`), at most `maximum`; with
    `none_means_no_limit` the word `none` is accepted too."""

    kind: type
    minimum: float
    above: bool = False
    maximum: float | None = None
    none_means_no_limit: bool = False

    def problem(self, text: str) -> str | None:
        if self.none_means_no_limit and text.lower() == "none":
            return None
        try:
            value = self.kind(text)
        except ValueError:
            wanted = "a whole number" if self.kind is int else "a number"
            extra = " or 'none'" if self.none_means_no_limit else ""
            return f"{text!r} is not {wanted}{extra}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{text!r} is not a finite number"
        low_ok = value > self.minimum if self.above else value >= self.minimum
        if not low_ok:
            relation = ">" if self.above else ">="
            return f"must be {relation} {self.minimum:g}, got {text!r}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum:g}, got {text!r}"
        return None


@dataclass(frozen=True)
class Flag:
    def problem(self, text: str) -> str | None:
        if text.lower() in TRUE_WORDS | FALSE_WORDS:
            return None
        return f"{text!r} is not one of {', '.join(sorted(TRUE_WORDS | FALSE_WORDS))}"


@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]

    def problem(self, text: str) -> str | None:
        if text.lower() in self.values:
            return None
        return f"{text!r} is not one of {', '.join(self.values)}"


@dataclass(frozen=True)
class NumberList:
    """Comma-separated numbers, each a Number."""

    each: Number

    def problem(self, text: str) -> str | None:
        for item in (part.strip() for part in text.split(",")):
            if item and (problem := self.each.problem(item)) is not None:
                return problem
        return None


def loopback_listen(text: str) -> tuple[str, int]:
    """`host:port` on a loopback address (the Prometheus endpoint is never exposed beyond the
    host); ValueError saying what is wrong."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise ValueError(f"must be host:port, got {text!r}") from None
    if not sep or not 0 < port < 65536:
        raise ValueError(f"must be host:port, got {text!r}")
    if not loopback:
        raise ValueError(f"must be a loopback address, got {host!r}")
    return host, port


@dataclass(frozen=True)
class LoopbackListen:
    def problem(self, text: str) -> str | None:
        try:
            loopback_listen(text)
        except ValueError as exc:
            return str(exc)
        return None


Kind = Number | Flag | Choice | NumberList | LoopbackListen

SECONDS = Number(float, 0, above=True)
DELAY = Number(float, 0)
COUNT = Number(int, 1)

_S3_KEYS: dict[str, Kind] = {
    "connect_timeout_s": SECONDS,
    "read_timeout_s": SECONDS,
    "max_attempts": COUNT,
    "addressing_style": Choice(("auto", "virtual", "path")),
}

_DESTINATION_KEYS: dict[str, dict[str, Kind]] = {
    "s3": _S3_KEYS,
    "postgres": {
        "attempts": COUNT,
        "retry_delay_s": DELAY,
        "connect_timeout_s": Number(int, 1),
        "statement_timeout_ms": Number(int, 0),
        "save_raw_crash": Flag(),
    },
    "elasticsearch": {
        "attempts": COUNT,
        "backoff_s": DELAY,
        "timeout_s": SECONDS,
        "shards": COUNT,
        "replicas": Number(int, 0),
    },
}

KEYS: dict[str, dict[str, Kind]] = {
    "supervisor": {
        "metrics_listen": LoopbackListen(),
    },
    "queue": {
        "quorum": Flag(),
        "delivery_limit": COUNT,
        "heartbeat_s": Number(int, 0),
        "socket_timeout_s": SECONDS,
        "connection_attempts": COUNT,
        "reconnect_backoff_s": NumberList(DELAY),
        "blocked_timeout_s": SECONDS,
    },
    "source": _S3_KEYS,
    "destinations": {
        f"{backend}_{key}": kind
        for backend, keys in _DESTINATION_KEYS.items()
        for key, kind in keys.items()
    },
    # The default processor's options (workers/processor.py reads them).
    "processor": {
        "stackwalk_max_frames": COUNT,
        "stackwalk_timeout_s": Number(float, 0, above=True, none_means_no_limit=True),
        "stackwalk_max_total_frames": COUNT,
        "stackwalk_max_json_mb": Number(float, 0, above=True),
        "stackwalk_max_rss_mb": COUNT,
    },
    "statsd": {
        "port": Number(int, 1, maximum=65535),
        "tag_format": Choice(("dogstatsd", "none")),
        "gauge_interval_s": SECONDS,
        # One datagram carries a batch; more than a UDP payload can hold is never sent.
        "max_udp_bytes": Number(int, 1, maximum=65507),
    },
}


def problems(sections: Mapping[str, Mapping[str, str]]) -> list[tuple[str, str, str]]:
    """(section, key, what is wrong) for every listed key whose value is set but invalid."""
    found = []
    for section, kinds in KEYS.items():
        values = sections.get(section, {})
        for key, kind in kinds.items():
            text = (values.get(key) or "").strip()
            if text and (problem := kind.problem(text)) is not None:
                found.append((section, key, problem))
    return found
