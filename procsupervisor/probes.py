"""Probe every backend a configuration names, once (docs/operations.md, "Health, check and
status exit codes").

`procsupervisor check` calls `probe_all` in its own process. The supervisor never imports a
storage client: it forks a throwaway child (supervisor/prober.py) that reaches
`probe_in_child` by name and writes the results to a pipe. The probes run side by side, so
the slowest backend bounds the time taken.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

from procsupervisor.backends import make_destinations, make_queue, make_source
from procsupervisor.health import Health, backend_name, describe_cause
from procsupervisor.metrics import NullMetrics

if TYPE_CHECKING:
    from procsupervisor.config import Config

Probe = Callable[[], Health]


def backend_probes(config: Config, *, include_queue: bool = True) -> list[tuple[str, Probe]]:
    """(name, probe) for the queue, the source, every destination and symbol supplier. A
    backend that cannot even be built from its options is misconfigured."""
    found: list[tuple[str, Probe]] = []
    metrics = NullMetrics()
    if include_queue:
        probe = _built(lambda: make_queue(config, metrics))
        found.append((backend_name("queue", config.queue_backend), probe))
    probe = _built(lambda: make_source(config, metrics))
    found.append((backend_name("source", config.source_backend), probe))
    for name in config.destination_order:
        # Built one by one, so one with bad options does not hide the others.
        only_this = replace(config, destination_order=(name,))
        probe = _built(lambda only_this=only_this: make_destinations(only_this, metrics)[0])
        found.append((backend_name("destination", name), probe))
    found.extend(_symbol_supplier_probes(config))
    return found


def probe_all(
    config: Config, *, include_queue: bool = True, only: Collection[str] | None = None
) -> list[tuple[str, Health]]:
    """Every backend's health in `backend_probes` order (only those named in `only`)."""
    every = backend_probes(config, include_queue=include_queue)
    chosen = [(name, probe) for name, probe in every if only is None or name in only]
    if not chosen:
        return []
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        results = list(pool.map(_safely, (probe for _, probe in chosen)))
    return [(name, health) for (name, _), health in zip(chosen, results, strict=True)]


def probe_in_child(config: Config, only: list[str] | None, write_fd: int) -> NoReturn:
    """Entry point in the supervisor's probe child: results as one JSON object
    `{name: {status, cause}}` on `write_fd`, then exit."""
    code = 0
    try:
        results = probe_all(config, include_queue=False, only=only)
        payload = json.dumps({name: health.to_json() for name, health in results}).encode()
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(payload)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _built(make: Callable[[], Any]) -> Probe:
    def probe() -> Health:
        try:
            backend = make()
        except Exception as exc:  # bad options, missing client library, unusable folder
            return Health.misconfigured(describe_cause(exc))
        try:
            return backend.probe()
        finally:
            close = getattr(backend, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass

    return probe


def _safely(probe: Probe) -> Health:
    try:
        return probe()
    except Exception as exc:  # a probe promises not to raise; a bug must not hide the rest
        return Health.unreachable(describe_cause(exc))


def _symbol_supplier_probes(config: Config) -> list[tuple[str, Probe]]:
    from procsupervisor.cache.settings import SymbolCacheSettings

    settings = SymbolCacheSettings.from_section(config.symbols, config.data_dir)
    found: list[tuple[str, Probe]] = []
    for path in settings.paths:
        probe = _built(lambda path=path: _local(path))
        found.append((backend_name("symbols", f"dir {path}"), probe))
    for url in settings.urls:
        probe = _built(lambda url=url: _http(url, settings))
        found.append((backend_name("symbols", f"http {url}"), probe))
    if settings.s3_bucket:
        where = f"s3://{settings.s3_bucket}/{settings.s3_prefix}".rstrip("/")
        found.append((backend_name("symbols", f"s3 {where}"), _built(lambda: _s3(settings))))
    return found


def _local(path: Any) -> Any:
    from procsupervisor.cache.supplier_local import LocalDirectorySupplier

    return LocalDirectorySupplier(path)


def _http(url: str, settings: Any) -> Any:
    from procsupervisor.cache.supplier_http import HttpSymbolServer

    return HttpSymbolServer(url, timeout_s=settings.http_timeout_s, retries=0)


def _s3(settings: Any) -> Any:
    from procsupervisor.cache.supplier_s3 import S3SymbolSupplier, make_s3_client

    client = make_s3_client(endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                            timeout_s=settings.http_timeout_s, retries=0)
    return S3SymbolSupplier(client, settings.s3_bucket, settings.s3_prefix)
