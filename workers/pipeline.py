"""Runs a named ruleset over one crash (Socorro's modern `Pipeline`, docs/processing.md §7.5).

Bookkeeping fields: `success`, `started_datetime`, `completed_datetime`, `processor_notes`
(newline-joined, public: notes never carry exception text) and `processor_history` (notes of
earlier processings, newest first).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

from procsupervisor.metrics import Metrics
from procsupervisor.workers.rules.base import CrashContext, Rule

logger = logging.getLogger(__name__)

EMPTY_SIGNATURE = "EMPTY: crash failed to process"


def utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def history_of(previous: Mapping[str, Any] | None) -> list[str]:
    """processor_history for a new processing: the previous notes first, then older ones."""
    if not previous:
        return []
    older = [item for item in previous.get("processor_history") or [] if isinstance(item, str)]
    notes = previous.get("processor_notes")
    if isinstance(notes, str) and notes:
        return [notes, *older]
    return older


class Pipeline:
    """Named rulesets, each an ordered list of rules. Metrics: per rule
    `processor.rule.act.timing` and `processor.rule.failed` (tag rule); the whole crash is timed
    by the worker (`processor.process_crash`)."""

    def __init__(
        self,
        rulesets: Mapping[str, Sequence[Rule]],
        metrics: Metrics,
        *,
        hostname: str | None = None,
        fresh_rulesets: frozenset[str] = frozenset({"default"}),
    ) -> None:
        self.rulesets = {name: list(rules) for name, rules in rulesets.items()}
        self.metrics = metrics
        self.hostname = hostname or socket.gethostname()
        # A "fresh" ruleset rebuilds the processed crash from the raw crash; the others update
        # the previous processed crash in place (each ruleset's `starts_from`, rules/rulesets.py).
        self.fresh_rulesets = fresh_rulesets

    def process_crash(
        self,
        ruleset_name: str,
        crash_id: str,
        raw_crash: Mapping[str, Any],
        dumps: Mapping[str, bytes],
        previous: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if previous and ruleset_name not in self.fresh_rulesets:
            processed: dict[str, Any] = copy.deepcopy(dict(previous))
        else:
            processed = {}
        processed["processor_history"] = history_of(previous)
        processed["crash_id"] = crash_id
        processed["uuid"] = crash_id
        processed["success"] = False
        processed["started_datetime"] = utc_now_iso()
        processed.setdefault("signature", EMPTY_SIGNATURE)

        ctx = CrashContext(
            crash_id=crash_id,
            raw_crash=copy.deepcopy(dict(raw_crash)),
            dumps=dumps,
            processed=processed,
            notes=[f">>> Start processing: {processed['started_datetime']} ({self.hostname})"],
        )

        rules = self.rulesets.get(ruleset_name)
        if rules is None:
            ctx.add_note(f"error: no ruleset named {ruleset_name!r}")
        else:
            for rule in rules:
                self._apply(ruleset_name, rule, ctx)
            processed["success"] = True

        processed["processor_notes"] = "\n".join(ctx.notes)
        processed["completed_datetime"] = utc_now_iso()
        return processed

    def _apply(self, ruleset_name: str, rule: Rule, ctx: CrashContext) -> None:
        started = time.monotonic()
        try:
            if rule.predicate(ctx):
                rule.action(ctx)
        except Exception as exc:
            # The note is public, so it names the exception class only; the log keeps the rest.
            logger.exception(
                "rule failed crash_id=%s ruleset=%s rule=%s", ctx.crash_id, ruleset_name, rule.name
            )
            ctx.add_note(f"rule {rule.name} failed: {type(exc).__name__}")
            self.metrics.incr("processor.rule.failed", tags={"rule": rule.name})
        finally:
            self.metrics.timing(
                "processor.rule.act.timing",
                (time.monotonic() - started) * 1000.0,
                tags={"rule": rule.name},
            )
