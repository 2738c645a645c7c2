"""Putting crashes in front of the supervisor: store a raw crash and queue its id.

Used by the `submit` and `enqueue` commands, the demo and the tests; the collector's job in
Socorro's pipeline, reduced to what an operator needs by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from procsupervisor import bounded_json, collector, crashid
from procsupervisor.backends import load_class, make_queue, make_source
from procsupervisor.cli_errors import describe
from procsupervisor.config import Config
from procsupervisor.metrics import NullMetrics

RULESET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class StoreFailed(Exception):
    """The raw crash could not be stored; nothing was queued."""


class NotQueued(Exception):
    """The raw crash is stored but its id could not be queued: without `enqueue` it would be
    an orphan nobody processes."""

    def __init__(self, crash_id: str, queue_name: str, cause: str) -> None:
        super().__init__(f"crash {crash_id} is stored but could not be queued: {cause}")
        self.crash_id = crash_id
        self.queue_name = queue_name
        self.cause = cause


def submit_crash(
    config: Config,
    raw_crash: Mapping[str, Any],
    dumps: Mapping[str, bytes],
    queue_name: str = "normal",
    *,
    payload_size: int | None = None,
) -> str:
    """Store the raw crash (with a Socorro crash id as `uuid`) and its dumps, queue it.

    Annotations are stored as a collector stores them (procsupervisor/collector.py); a raw
    crash already in the collector's layout is stored as it is. `payload_size` is the size of
    what was submitted (default: the annotations as JSON plus the dumps)."""
    if not isinstance(raw_crash, Mapping):
        raise ValueError("the raw crash must be a JSON object")
    bounded_json.check_depth(raw_crash, "the raw crash")
    existing = raw_crash.get("uuid")
    if existing is not None and not crashid.is_valid(existing):
        raise ValueError(f"raw crash has an invalid uuid: {existing!r:.80}")
    crash_id = existing or crashid.create()
    metrics = NullMetrics()
    source = make_source(config, metrics)
    queue = make_queue(config, metrics)
    try:
        _check_queue(queue.queue_names, queue_name)
        if collector.is_collector_layout(raw_crash):
            stored = {**raw_crash, "uuid": crash_id}
        else:
            if payload_size is None:
                payload_size = len(json.dumps(raw_crash).encode()) + sum(map(len, dumps.values()))
            # The processor's dates and ingestion timing start from submitted_timestamp.
            stored = collector.collector_record(raw_crash, dumps, payload_size=payload_size)
            stored["uuid"] = crash_id
        try:
            source.save_raw_crash(stored, dumps, crash_id)
        except Exception as exc:  # whatever the backend raises, the user gets one line
            raise StoreFailed(f"cannot store crash {crash_id}: {describe(exc)[:300]}") from exc
        try:
            queue.publish(queue_name, crash_id)
        except Exception as exc:
            raise NotQueued(crash_id, queue_name, describe(exc)[:300]) from exc
    finally:
        source.close()
        queue.close()
    return crash_id


def enqueue_ids(config: Config, bodies: Iterable[str], queue_name: str = "normal") -> int:
    """Queue crash ids (`id` or `id:ruleset`); all are checked before any is queued, the
    rulesets against the ones the configured processor runs."""
    checked = [_checked_body(body) for body in bodies]
    asked = {body.partition(":")[2] for body in checked} - {""}
    if asked:
        known = known_rulesets(config)
        unknown = sorted(asked - set(known)) if known is not None else []
        if unknown:
            raise ValueError(
                f"unknown ruleset {unknown[0]!r:.40} (known: {', '.join(known or ())})"
            )
    queue = make_queue(config, NullMetrics())
    try:
        _check_queue(queue.queue_names, queue_name)
        for body in checked:
            queue.publish(queue_name, body)
    finally:
        queue.close()
    return len(checked)


def known_rulesets(config: Config) -> tuple[str, ...] | None:
    """The ruleset names the configured processor accepts in a queue message (its
    `ruleset_names()`), or None when it does not say."""
    try:
        factory = load_class(config.supervisor.processor)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load the processor {config.supervisor.processor!r}: {exc}")
    names = getattr(factory, "ruleset_names", None)
    return tuple(names()) if callable(names) else None


def _checked_body(body: str) -> str:
    crash_id, _, ruleset = body.partition(":")
    if not crashid.is_valid(crash_id):
        raise ValueError(f"invalid crash id: {crash_id!r:.80}")
    if ruleset and not set(ruleset) <= RULESET_CHARS:
        raise ValueError(f"invalid ruleset name: {ruleset!r:.40}")
    return body


def _check_queue(names: tuple[str, ...], queue_name: str) -> None:
    if queue_name not in names:
        raise ValueError(f"unknown queue {queue_name!r} (known: {', '.join(names)})")
