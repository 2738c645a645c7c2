"""Structured log lines: one `key=value` line per event that machines can split reliably."""

from __future__ import annotations

import logging
import shlex

from procsupervisor.logs import KeyValueFormatter


def format_event(msg: str, **fields: object) -> str:
    record = logging.LogRecord("procsupervisor.test", logging.INFO, __file__, 1, msg, None, None)
    record.kv = fields
    return KeyValueFormatter().format(record)


def parse(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(line))


def test_fields_follow_the_standard_ones_in_order() -> None:
    line = format_event("crash done", crash_id="abc", outcome="ok", total_ms=12.5)
    keys = [item.split("=", 1)[0] for item in shlex.split(line)]
    assert keys == ["ts", "level", "logger", "pid", "msg", "crash_id", "outcome", "total_ms"]
    fields = parse(line)
    assert fields["level"] == "info" and fields["msg"] == "crash done"
    assert fields["total_ms"] == "12.5" and fields["outcome"] == "ok"


def test_awkward_values_stay_on_one_line_and_round_trip() -> None:
    reason = 'worker died: "boom"\r\nkey=value\tand more'
    line = format_event("crash retried", reason=reason, empty="")
    assert "\n" not in line and "\r" not in line
    fields = parse(line)
    assert fields["empty"] == ""
    assert fields["reason"] == reason.replace("\r", "\\r").replace("\n", "\\n")


def test_floats_are_short_and_zero_is_zero() -> None:
    fields = parse(format_event("retry", delay_s=0.0, busy_s=1.25000001, rate=100.0))
    assert fields["delay_s"] == "0" and fields["busy_s"] == "1.25" and fields["rate"] == "100"


def test_json_format_has_the_same_fields_one_object_per_line() -> None:
    import json
    from pathlib import Path

    from procsupervisor.logs import JsonFormatter

    record = logging.LogRecord("procsupervisor.test", logging.WARNING, __file__, 1,
                               "crash dead-lettered", None, None)
    record.kv = {"crash_id": "abc", "reason": "line one\nline two", "path": Path("/x"),
                 "attempt": 3}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    event = json.loads(line)
    assert list(event)[:5] == ["ts", "level", "logger", "pid", "msg"]
    assert event["level"] == "warning" and event["msg"] == "crash dead-lettered"
    assert event["reason"] == "line one\nline two" and event["path"] == "/x"
    assert event["attempt"] == 3
