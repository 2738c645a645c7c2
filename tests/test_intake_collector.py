"""`submit` stores a raw crash as a collector does (procsupervisor/collector.py): dump
checksums, payload, collector notes, stripped fields, timestamp; the collector's own layout is
accepted as it is; the processor reads the checksum back as `minidump_sha256_hash`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from procsupervisor import cli, collector

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_collector_record() -> None:
    annotations = {
        "ProductName": "Firefox",
        "Email": "someone@example.com",
        "TelemetrySessionId": "681dcbf3",
        "metadata": "an annotation of that name is replaced",
    }
    stored = collector.collector_record(
        annotations,
        {"upload_file_minidump": b"MDMP", "memory_report": b""},
        payload_size=99,
        now=NOW,
    )
    assert stored == {
        "ProductName": "Firefox",
        "submitted_timestamp": "2026-12-01T00:00:00+00:00",
        "version": 2,
        "metadata": {
            "collector_notes": [
                "Removed Email from raw crash.",
                "Removed TelemetrySessionId from raw crash.",
            ],
            "dump_checksums": {
                "upload_file_minidump": hashlib.sha256(b"MDMP").hexdigest(),
                "memory_report": hashlib.sha256(b"").hexdigest(),
            },
            "payload": "json",
            "payload_compressed": "0",
            "payload_size": 99,
        },
    }
    assert "Email" in annotations  # the caller's copy is untouched


def test_a_given_submitted_timestamp_is_kept() -> None:
    stored = collector.collector_record(
        {"submitted_timestamp": "2021-01-07T13:41:00+00:00"}, {}, payload_size=2, now=NOW
    )
    assert stored["submitted_timestamp"] == "2021-01-07T13:41:00+00:00"
    assert (
        stored["metadata"]["dump_checksums"] == {} and stored["metadata"]["collector_notes"] == []
    )


def test_collector_layout_is_recognised(testdata: Path) -> None:
    raw = json.loads((testdata / "socorro-processed/linux-x86_64.raw_crash.json").read_text())
    assert collector.is_collector_layout(raw)
    assert not collector.is_collector_layout({"ProductName": "Firefox"})
    assert not collector.is_collector_layout({"metadata": {"dump_checksums": {}}})


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith("PROCSUPERVISOR_"):
            monkeypatch.delenv(name)
    runner = CliRunner()

    def invoke(*args: str) -> str:
        result = runner.invoke(cli.main, ["--data-dir", str(tmp_path / "data"), *args])
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output

    return invoke


def _stored_raw(tmp_path: Path, crash_id: str) -> dict[str, object]:
    folder = tmp_path / "data" / "crashes" / "v2" / "raw_crash" / crash_id[:3]
    path = next(folder.glob(f"*/{crash_id}"))
    stored: dict[str, object] = json.loads(path.read_text())
    return stored


def test_submit_records_what_a_collector_records(run, tmp_path: Path) -> None:
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps({"ProductName": "Firefox", "TelemetryClientId": "x"}))
    dump = tmp_path / "a.dmp"
    dump.write_bytes(b"MDMP-not-really")
    crash_id = run("submit", str(raw), str(dump)).strip()
    stored = _stored_raw(tmp_path, crash_id)
    checksum = hashlib.sha256(b"MDMP-not-really").hexdigest()
    assert stored["metadata"] == {
        "collector_notes": ["Removed TelemetryClientId from raw crash."],
        "dump_checksums": {"upload_file_minidump": checksum},
        "payload": "json",
        "payload_compressed": "0",
        "payload_size": raw.stat().st_size + dump.stat().st_size,
    }
    assert "TelemetryClientId" not in stored and stored["uuid"] == crash_id
    dt.datetime.fromisoformat(str(stored["submitted_timestamp"]))
    out = run("process", crash_id, "--no-save")
    processed = json.loads(out[: out.rindex("}") + 1])
    assert processed["minidump_sha256_hash"] == checksum
    assert processed["collector_metadata"] == stored["metadata"]


def test_a_collector_layout_raw_crash_is_stored_as_it_is(
    run, tmp_path: Path, testdata: Path
) -> None:
    source = testdata / "socorro-processed/windows-x86_64.raw_crash.json"
    raw = json.loads(source.read_text())
    copy = tmp_path / "raw.json"
    copy.write_text(json.dumps(raw))
    crash_id = run("submit", str(copy)).strip()
    assert crash_id == raw["uuid"]
    assert _stored_raw(tmp_path, crash_id) == raw
