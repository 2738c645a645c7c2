"""The pipeline engine: rule order, failing rules, bookkeeping fields, history, metrics."""

from __future__ import annotations

import datetime as dt

from _rules_helpers import CRASH_ID, RecordingMetrics, assert_valid_fields

from procsupervisor.workers.pipeline import EMPTY_SIGNATURE, Pipeline, history_of
from procsupervisor.workers.rules.base import CrashContext, Rule


class SetField(Rule):
    def __init__(self, field: str, value: object) -> None:
        self.field, self.value = field, value

    def action(self, ctx: CrashContext) -> None:
        ctx.processed[self.field] = self.value
        ctx.processed.setdefault("order", []).append(self.field)


class Explodes(Rule):
    def action(self, ctx: CrashContext) -> None:
        raise KeyError("secret user data that must not reach a public note")


class ExplodingPredicate(Rule):
    def predicate(self, ctx: CrashContext) -> bool:
        raise ZeroDivisionError

    def action(self, ctx: CrashContext) -> None:
        ctx.processed["never"] = True


class MutatesRaw(Rule):
    def action(self, ctx: CrashContext) -> None:
        ctx.raw_crash["ProductName"] = "changed"


def _pipeline(*rules: Rule, metrics: RecordingMetrics | None = None) -> Pipeline:
    return Pipeline(
        {"default": list(rules), "other": [SetField("product", "other")]},
        metrics or RecordingMetrics(),
        hostname="host-1",
    )


def test_rules_run_in_order_and_bookkeeping_is_set() -> None:
    processed = _pipeline(SetField("product", "Firefox"), SetField("version", "1.0")).process_crash(
        "default", CRASH_ID, {}, {}
    )
    assert processed["order"] == ["product", "version"]
    assert processed["success"] is True
    assert processed["crash_id"] == processed["uuid"] == CRASH_ID
    assert processed["signature"] == EMPTY_SIGNATURE
    assert processed["processor_history"] == []
    started = dt.datetime.fromisoformat(processed["started_datetime"])
    completed = dt.datetime.fromisoformat(processed["completed_datetime"])
    assert started.tzinfo is not None and started <= completed
    first_note = processed["processor_notes"].split("\n")[0]
    assert first_note == f">>> Start processing: {processed['started_datetime']} (host-1)"
    processed.pop("order")
    assert_valid_fields(processed)


def test_failing_rule_becomes_a_note_and_the_pipeline_goes_on() -> None:
    metrics = RecordingMetrics()
    processed = _pipeline(
        Explodes(), ExplodingPredicate(), SetField("product", "Firefox"), metrics=metrics
    ).process_crash("default", CRASH_ID, {}, {})
    notes = processed["processor_notes"].split("\n")
    assert "rule Explodes failed: KeyError" in notes
    assert "rule ExplodingPredicate failed: ZeroDivisionError" in notes
    assert "secret" not in processed["processor_notes"]
    assert "never" not in processed
    assert processed["product"] == "Firefox"
    assert processed["success"] is True
    failed = [
        tags["rule"] for kind, name, _, tags in metrics.calls if name == "processor.rule.failed"
    ]
    assert failed == ["Explodes", "ExplodingPredicate"]


def test_metrics_time_every_rule() -> None:
    metrics = RecordingMetrics()
    _pipeline(SetField("a", 1), Explodes(), metrics=metrics).process_crash(
        "default", CRASH_ID, {}, {}
    )
    rule_timings = [
        tags["rule"] for kind, name, _, tags in metrics.calls if name == "processor.rule.act.timing"
    ]
    assert rule_timings == ["SetField", "Explodes"]


def test_unknown_ruleset_is_a_note_and_not_a_success() -> None:
    processed = _pipeline(SetField("a", 1)).process_crash("nope", CRASH_ID, {}, {})
    assert processed["success"] is False
    assert "error: no ruleset named 'nope'" in processed["processor_notes"]
    assert "a" not in processed


def test_raw_crash_given_by_the_caller_is_not_changed() -> None:
    raw = {"ProductName": "Firefox"}
    _pipeline(MutatesRaw()).process_crash("default", CRASH_ID, raw, {})
    assert raw == {"ProductName": "Firefox"}


def test_previous_notes_move_to_history_newest_first() -> None:
    previous = {
        "processor_notes": "second processing",
        "processor_history": ["first processing"],
        "product": "stale",
    }
    processed = _pipeline(SetField("version", "2")).process_crash(
        "default", CRASH_ID, {}, {}, previous
    )
    assert processed["processor_history"] == ["second processing", "first processing"]
    # the default ruleset rebuilds the crash: nothing stale survives
    assert "product" not in processed
    assert "second processing" not in processed["processor_notes"]


def test_non_fresh_ruleset_updates_the_previous_crash() -> None:
    previous = {"processor_notes": "old", "version": "1.0", "signature": "old | sig"}
    processed = _pipeline().process_crash("other", CRASH_ID, {}, {}, previous)
    assert processed["version"] == "1.0"
    assert processed["product"] == "other"
    assert processed["signature"] == "old | sig"
    assert processed["processor_history"] == ["old"]
    assert previous["processor_notes"] == "old"  # the caller's copy is untouched


def test_history_of_ignores_junk() -> None:
    assert history_of(None) == []
    assert history_of({"processor_notes": "", "processor_history": ["a", 3, None]}) == ["a"]
