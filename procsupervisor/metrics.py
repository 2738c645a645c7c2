"""Metrics facade used everywhere (DESIGN.md section 12).

Code calls `metrics.incr(...)`, `metrics.timing(...)`, `metrics.gauge(...)`,
`metrics.histogram(...)` with Socorro's metric names (SOCORRO.md section 10) without the prefix;
the configured backend adds the prefix. `NullMetrics` is the default when statsd is not
configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


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
