"""Metrics facade used everywhere (docs/architecture.md §12).

Code calls `metrics.incr(...)`, `metrics.timing(...)`, `metrics.gauge(...)`,
`metrics.histogram(...)` with Socorro's metric names (docs/processing.md §10) without the prefix;
the configured backend adds the prefix. `NullMetrics` is the default when statsd is not
configured.

`with batched(metrics):` gathers what is sent inside it and sends it at the end in as few
datagrams as fit (the `statsd` package's pipeline, at most `max_udp_bytes` each): a worker
batches each crash, the supervisor each loop turn (docs/operations.md, "Metrics").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol


class Metrics(Protocol):
    def incr(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None: ...
    def timing(self, name: str, ms: float, tags: Mapping[str, str] | None = None) -> None: ...
    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None: ...
    def histogram(
        self, name: str, value: float, tags: Mapping[str, str] | None = None
    ) -> None: ...
    def close(self) -> None: ...


class NullMetrics:
    """Discards everything."""

    def incr(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        pass

    def timing(self, name: str, ms: float, tags: Mapping[str, str] | None = None) -> None:
        pass

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        pass

    def histogram(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        pass

    def close(self) -> None:
        pass


# The statsd package's own default: fits any path's MTU. On loopback or a LAN, 1432 packs
# about three times as many lines per datagram.
DEFAULT_MAX_UDP_BYTES = 512


class StatsdMetrics:
    """Sends to a statsd daemon over UDP through the `statsd` package.

    Tags are sent in DogStatsD form (`name:1|c|#key:value`) when `tag_format` is `dogstatsd`,
    which Socorro's Datadog agent understood; plain statsd daemons reject that suffix, so with
    `tag_format = none` tags are dropped. Histograms use `|h` with DogStatsD and fall back to
    timers (`|ms`, aggregated the same way) for plain statsd.
    """

    def __init__(
        self,
        host: str,
        port: int = 8125,
        prefix: str = "",
        tag_format: str = "dogstatsd",
        max_udp_bytes: int = DEFAULT_MAX_UDP_BYTES,
    ) -> None:
        import statsd  # imported here so processes without statsd configured never load it

        if tag_format not in TAG_FORMATS:
            raise ValueError(f"statsd tag_format must be one of {TAG_FORMATS}, not {tag_format!r}")
        self._client = statsd.StatsClient(host, port, prefix=prefix or None,
                                          maxudpsize=max_udp_bytes)
        self._dogstatsd = tag_format == "dogstatsd"
        self._pipeline: Any = None  # set while a batch is open

    def _tag_suffix(self, tags: Mapping[str, str] | None) -> str:
        if not tags or not self._dogstatsd:
            return ""
        return "|#" + ",".join(f"{_clean(k)}:{_clean(str(v))}" for k, v in tags.items())

    def _send(self, name: str, value: str, tags: Mapping[str, str] | None) -> None:
        # The package has no tag support; its `_send_stat` adds the prefix and sends one
        # datagram (or, in a pipeline, queues one line), so the suffix rides after the type,
        # where DogStatsD expects it.
        target = self._pipeline if self._pipeline is not None else self._client
        target._send_stat(_clean(name), value + self._tag_suffix(tags), 1)

    @contextmanager
    def batched(self) -> Iterator[None]:
        if self._pipeline is not None:
            yield  # already in a batch: the outer one sends
            return
        pipeline = self._pipeline = self._client.pipeline()
        try:
            yield
        finally:
            if self._pipeline is pipeline:  # not flushed by `close` meanwhile
                self._flush()

    def _flush(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None and self._client._sock is not None:
            pipeline.send()

    def incr(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        self._send(name, f"{value}|c", tags)

    def timing(self, name: str, ms: float, tags: Mapping[str, str] | None = None) -> None:
        self._send(name, f"{ms:0.6f}|ms", tags)

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        if value < 0:
            # "-5|g" means "decrease by 5" in the statsd protocol: reset to 0 first, as the
            # package itself does.
            self._send(name, "0|g", tags)
        self._send(name, f"{value}|g", tags)

    def histogram(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self._send(name, f"{value}|h" if self._dogstatsd else f"{value:0.6f}|ms", tags)

    def close(self) -> None:
        self._flush()
        self._client.close()


TAG_FORMATS = ("dogstatsd", "none")


def batched(metrics: Metrics) -> AbstractContextManager[Any]:
    """Batch what `metrics` sends inside the block, where the backend can."""
    batch = getattr(metrics, "batched", None)
    return batch() if batch is not None else nullcontext()


def _clean(text: str) -> str:
    """Characters that delimit the statsd line protocol cannot appear in names or tags."""
    return text.translate(_STATSD_RESERVED)


_STATSD_RESERVED = str.maketrans({":": "_", "|": "_", "@": "_", "#": "_", ",": "_", "\n": "_"})


def metrics_from_options(options: Mapping[str, str]) -> Metrics:
    """Build the metrics backend from the [statsd] section; NullMetrics when no host is set."""
    host = (options.get("host") or "").strip()
    if not host:
        return NullMetrics()
    return StatsdMetrics(
        host,
        port=int(options.get("port") or 8125),
        prefix=(options.get("prefix") or "").strip(),
        tag_format=(options.get("tag_format") or "dogstatsd").strip().lower(),
        max_udp_bytes=int(options.get("max_udp_bytes") or DEFAULT_MAX_UDP_BYTES),
    )
