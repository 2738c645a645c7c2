"""The annotation table (workers/rules/annotations.json) and the rules that read it: every
type's conversion, defaults, and that the schema and the ES mapping know every field."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from _rules_helpers import assert_valid_fields, run_rule

from procsupervisor.storage import es_mapping
from procsupervisor.workers.processed_schema import processed_crash_schema
from procsupervisor.workers.rules import annotations

TABLE = annotations.copied_annotations()
ES_TYPES = {"string": "keyword", "integer": "long", "number": "double", "boolean": "boolean"}


def test_table_is_packaged_and_covers_socorros_copied_fields() -> None:
    text = resources.files("procsupervisor.workers").joinpath("rules/annotations.json").read_text()
    assert annotations.parse_table(text) == TABLE
    by_field = {row.field: row for row in TABLE}
    # 90 annotations Socorro's processed-crash schema names as a field's source
    assert len(TABLE) == 90
    assert by_field["telemetry_environment"].type == "object"
    assert by_field["uptime_ts"].type == "number"
    assert by_field["install_time"].type == "integer"
    assert by_field["dom_ipc_enabled"].type == "boolean"
    assert (by_field["marionette"].default, by_field["remote_agent"].default) == (False, False)
    assert by_field["app_notes"].annotation == "Notes"


def test_schema_types_every_table_field() -> None:
    properties = processed_crash_schema()["properties"]
    for row in TABLE:
        assert properties[row.field]["type"] == row.type, row.field


def test_es_mapping_has_every_searchable_table_field() -> None:
    mapped = {field.name: field.type for field in es_mapping.PROCESSED_CRASH_FIELDS}
    for row in TABLE:
        if row.type == "object":
            assert row.field not in mapped  # whole JSON documents are not searched
        elif row.field not in ("app_notes", "user_comments"):  # free text, analyzed
            assert mapped[row.field] == ES_TYPES[row.type], row.field


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("boolean", "1", True),
        ("boolean", "true", True),
        ("boolean", "TRUE", True),
        ("boolean", "0", False),
        ("boolean", "false", False),
        ("boolean", True, True),
        ("boolean", "yes", annotations.INVALID),
        ("boolean", " 1", annotations.INVALID),
        ("integer", "412", 412),
        ("integer", "-3", -3),
        ("integer", 7, 7),
        ("integer", 7.9, 7),
        ("integer", "1.5", annotations.INVALID),
        ("integer", "9" * 41, annotations.INVALID),
        ("integer", True, annotations.INVALID),
        ("number", "19.83569293", 19.83569293),
        ("number", "3", 3.0),
        ("number", "nan", annotations.INVALID),
        ("number", "inf", annotations.INVALID),
        ("number", [1], annotations.INVALID),
        ("string", "\nFP(D00) WR+ ", "\nFP(D00) WR+"),
        ("string", 5, annotations.INVALID),
        ("object", '{"a": {"b": 1}}', {"a": {"b": 1}}),
        ("object", {"a": 1}, {"a": 1}),
        ("object", "[1, 2]", annotations.INVALID),
        ("object", "{not json", annotations.INVALID),
        ("object", "[" * 100_000, annotations.INVALID),
    ],
)
def test_conversions(kind: str, value: object, expected: object) -> None:
    result = annotations.CopiedAnnotation("f", "F", kind).convert(value)
    if expected is annotations.INVALID:
        assert result is annotations.INVALID
    else:
        assert result == expected and type(result) is type(expected)


def test_copy_converts_and_notes_bad_values() -> None:
    raw = {
        "SafeMode": "0",
        "InstallTime": "1609962885",
        "UptimeTS": "19.83569293",
        "URL": "https://example.com/ ",
        "TelemetryEnvironment": json.dumps({"partner": {"distributionId": None}}),
        "DOMIPCEnabled": "maybe",
        "SomethingNew": "stays in the raw crash",
    }
    ctx = run_rule(annotations.CopyFromRawCrashRule(), raw_crash=raw)
    assert ctx.processed == {
        "safe_mode": False,
        "install_time": 1609962885,
        "uptime_ts": 19.83569293,
        "url": "https://example.com/",
        "telemetry_environment": {"partner": {"distributionId": None}},
    }
    assert ctx.notes == ["CopyFromRawCrashRule: invalid value of 'DOMIPCEnabled'"]
    assert ctx.raw_crash["SomethingNew"] == "stays in the raw crash"
    assert_valid_fields(ctx.processed)


def test_copy_without_annotations_copies_nothing() -> None:
    ctx = run_rule(annotations.CopyFromRawCrashRule(), raw_crash={"Unrelated": "1"})
    assert ctx.processed == {} and ctx.notes == []


def test_defaults_only_for_absent_annotations() -> None:
    ctx = run_rule(annotations.AnnotationDefaultsRule(), raw_crash={})
    assert ctx.processed == {"marionette": False, "remote_agent": False}
    raw = {"Marionette": "1", "RemoteAgent": "junk"}
    ctx = run_rule(annotations.AnnotationDefaultsRule(), raw_crash=raw, processed={"x": 1})
    # present annotations are the copy rule's business, even when unreadable
    assert ctx.processed == {"x": 1}


def test_table_errors_are_caught() -> None:
    row = {"field": "a", "annotation": "A", "type": "string"}
    with pytest.raises(ValueError, match="listed twice"):
        annotations.parse_table(json.dumps({"copied": [row, row]}))
    with pytest.raises(ValueError, match="unknown type"):
        annotations.parse_table(json.dumps({"copied": [{**row, "type": "date"}]}))
