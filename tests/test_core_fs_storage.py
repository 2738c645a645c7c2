"""The fs crash storage: Socorro's key layout, round trips, hostile ids and names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from procsupervisor import crashid
from procsupervisor.metrics import NullMetrics
from procsupervisor.storage.base import CrashNotFound, TransientStorageError
from procsupervisor.storage.fs import FSCrashStorage
from procsupervisor.storage.keys import InvalidDumpName

CRASH_ID = "de1bb258-cbbf-4589-a673-34f802160918"


@pytest.fixture
def storage(tmp_path: Path) -> FSCrashStorage:
    return FSCrashStorage.from_options({}, data_dir=tmp_path, metrics=NullMetrics())


def test_socorro_key_layout(storage: FSCrashStorage, tmp_path: Path) -> None:
    storage.save_raw_crash(
        {"ProductName": "Firefox"},
        {"upload_file_minidump": b"MAIN", "memory_report": b"MEM"},
        CRASH_ID,
    )
    storage.save_processed({}, {"uuid": CRASH_ID, "success": True})
    root = tmp_path / "crashes"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        f"v1/dump/{CRASH_ID}",
        f"v1/dump_names/{CRASH_ID}",
        f"v1/memory_report/{CRASH_ID}",
        f"v1/processed_crash/{CRASH_ID}",
        f"v2/raw_crash/de1/20160918/{CRASH_ID}",
    ]
    assert json.loads((root / "v1" / "dump_names" / CRASH_ID).read_text()) == [
        "upload_file_minidump",
        "memory_report",
    ]


def test_round_trip(storage: FSCrashStorage) -> None:
    dumps = {"upload_file_minidump": b"\x00MAIN", "upload_file_minidump_browser": b"B"}
    storage.save_raw_crash({"ProductName": "Firefox", "uuid": CRASH_ID}, dumps, CRASH_ID)
    assert storage.get_raw_crash(CRASH_ID) == {"ProductName": "Firefox", "uuid": CRASH_ID}
    assert storage.get_dumps(CRASH_ID) == dumps
    storage.save_processed({}, {"crash_id": CRASH_ID, "signature": "a"})
    storage.save_processed({}, {"crash_id": CRASH_ID, "signature": "b"})  # upsert
    assert storage.get_processed(CRASH_ID)["signature"] == "b"


def test_missing_parts_are_not_found(storage: FSCrashStorage) -> None:
    with pytest.raises(CrashNotFound):
        storage.get_raw_crash(CRASH_ID)
    with pytest.raises(CrashNotFound):
        storage.get_processed(CRASH_ID)
    assert storage.get_dumps(CRASH_ID) == {}


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "",
        "DE1BB258-CBBF-4589-A673-34F802160918",
        "de1bb258-cbbf-4589-a673-34f802169999",
        None,
    ],
)
def test_invalid_crash_ids_never_reach_a_path(storage: FSCrashStorage, bad: object) -> None:
    with pytest.raises(crashid.InvalidCrashId):
        storage.get_raw_crash(bad)  # type: ignore[arg-type]
    with pytest.raises(crashid.InvalidCrashId):
        storage.save_processed({}, {"uuid": bad})


@pytest.mark.parametrize(
    "name", ["../x", ".hidden", "a/b", "raw_crash", "dump_names", "processed_crash", "x" * 200]
)
def test_hostile_dump_names_are_refused(storage: FSCrashStorage, name: str) -> None:
    with pytest.raises(InvalidDumpName):
        storage.save_raw_crash({}, {name: b"x"}, CRASH_ID)


def test_unwritable_root_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    storage = FSCrashStorage(blocker)
    with pytest.raises(TransientStorageError):
        storage.save_processed({}, {"uuid": CRASH_ID})


def test_corrupt_raw_crash_is_a_value_error(storage: FSCrashStorage) -> None:
    path = storage.raw_crash_path(CRASH_ID)
    path.parent.mkdir(parents=True)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError):
        storage.get_raw_crash(CRASH_ID)
