"""The worker's fetch / transform / save step (CrashHandler), with the real Processor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _core_helpers import make_raw_crash

from procsupervisor import config as config_module
from procsupervisor import crashid
from procsupervisor.storage.base import TransientStorageError
from procsupervisor.storage.fs import FSCrashStorage
from procsupervisor.workers.crash_handler import CrashHandler
from procsupervisor.workers.processor import validate_processed_crash


@pytest.fixture
def handler(tmp_path: Path) -> CrashHandler:
    cfg = config_module.load(None, data_dir=tmp_path, environ={})
    made = CrashHandler(cfg)
    yield made
    made.close()


def store(handler: CrashHandler, **extra: Any) -> str:
    cid = crashid.create()
    handler.source.save_raw_crash(make_raw_crash(**extra), {"upload_file_minidump": b"MDMP"}, cid)
    return cid


def test_ok_crash_is_processed_saved_and_schema_valid(handler: CrashHandler) -> None:
    cid = store(handler)
    stages: list[str] = []
    result = handler.handle(cid, on_stage=stages.append)
    assert result.outcome == "ok", result.reason
    assert stages == ["fetch", "process", "save"]
    assert set(result.timings_ms) == {"fetch", "process", "save", "total"}
    saved = handler.source.get_processed(cid)
    validate_processed_crash(saved)
    assert saved["uuid"] == cid
    for key in ("success", "started_datetime", "completed_datetime", "processor_notes"):
        assert key in saved
    assert saved["product"] == "Firefox" and saved["version"] == "120.0"


def test_missing_crash_is_not_found(handler: CrashHandler) -> None:
    result = handler.handle(crashid.create())
    assert result.outcome == "not_found"


def test_invalid_id_is_invalid_without_touching_storage(handler: CrashHandler) -> None:
    result = handler.handle("../../etc/passwd")
    assert result.outcome == "invalid" and result.reason == "invalid crash id"


def test_every_destination_is_tried_and_failures_are_transient(
    handler: CrashHandler, tmp_path: Path
) -> None:
    class Broken(FSCrashStorage):
        name = "broken"

        def save_processed(self, raw_crash: Any, processed_crash: Any) -> None:
            raise TransientStorageError("down")

    second = FSCrashStorage(tmp_path / "second")
    handler.destinations = [Broken(tmp_path / "x"), second]
    cid = store(handler)
    result = handler.handle(cid)
    assert result.outcome == "transient"
    assert "broken: TransientStorageError" in result.reason
    assert second.get_processed(cid)["uuid"] == cid  # the later destination still saved it


def test_poison_record_says_why(handler: CrashHandler) -> None:
    cid = store(handler)
    result = handler.handle(cid, poison_reason="worker killed on attempt 3 of 3: deadline")
    assert result.outcome == "ok"
    saved = handler.source.get_processed(cid)
    validate_processed_crash(saved)
    assert saved["success"] is False
    assert "deadline" in saved["processor_notes"]


def test_reprocessing_reads_the_previous_processed_crash(handler: CrashHandler) -> None:
    cid = store(handler)
    assert handler.handle(cid).outcome == "ok"
    first = handler.source.get_processed(cid)
    assert handler.handle(cid, queue="reprocessing").outcome == "ok"
    second = handler.source.get_processed(cid)
    assert first["processor_notes"] in second["processor_history"]


def test_regenerate_signature_reads_the_stored_crash_on_any_queue(handler: CrashHandler) -> None:
    cid = store(handler)
    assert handler.handle(cid).outcome == "ok"
    first = handler.source.get_processed(cid)
    handler.source.save_processed(make_raw_crash(), dict(first, product="kept from before"))
    result = handler.handle(cid, ruleset="regenerate_signature", queue="normal")
    assert result.outcome == "ok", result.reason
    second = handler.source.get_processed(cid)
    assert second["product"] == "kept from before"  # started from the stored processed crash
    assert first["processor_notes"] in second["processor_history"]


def test_a_message_naming_the_poison_ruleset_gets_no_poison_leniency(
    handler: CrashHandler,
) -> None:
    # A poison record is saved even without a raw crash; asked for by name, it is not.
    result = handler.handle(crashid.create(), ruleset="poison")
    assert result.outcome == "not_found"


def test_a_processor_that_raises_gives_a_transient_outcome(handler: CrashHandler,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("bug")

    monkeypatch.setattr(handler.processor, "process", explode)
    result = handler.handle(store(handler))
    assert result.outcome == "transient" and "RuntimeError: bug" in result.reason
