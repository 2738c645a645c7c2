"""Our processed crash against Socorro's own, on the 8 real Firefox crashes of
testdata/socorro-processed/ (scripts/socorro_agreement.py does the work and prints figures)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from procsupervisor.metrics import NullMetrics
from procsupervisor.storage import es_mapping
from procsupervisor.workers.processor import Processor

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "socorro_agreement.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("socorro_agreement", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


agreement = load_script()


@pytest.fixture(scope="module")
def results(testdata: Path) -> dict[str, Any]:
    return {result.name: result for result in agreement.compare_all(testdata)}


@pytest.mark.parametrize("name", agreement.NAMES)
def test_every_key_and_value_of_socorro_is_ours(results: dict[str, Any], name: str) -> None:
    result = results[name]
    assert result.missing == []
    undocumented = [
        (key, ours, theirs)
        for key, ours, theirs in result.different
        if key not in agreement.DOCUMENTED_DIFFERENCES
    ]
    assert undocumented == []
    # Nothing beyond Socorro's file either, except what the data set removed from it.
    assert result.extra == []
    assert result.keys_found == result.keys > 40


def test_documented_differences_say_why() -> None:
    for field, reason in agreement.DOCUMENTED_DIFFERENCES.items():
        assert field and len(reason) > 20


def test_script_reports_full_agreement(testdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert agreement.main(["--testdata", str(testdata)]) == 0
    total = capsys.readouterr().out.splitlines()[-1]
    assert total == "TOTAL: keys 399/399 (100.0 %), values 399/399 (100.0 %)"


def test_comparison_counts_missing_and_different_keys() -> None:
    result = agreement.compare(
        "x", {"a": 1, "b": 2, "json_dump": {}, "new": 0}, {"a": 1, "b": 3, "c": 4}
    )
    assert (result.keys, result.keys_found, result.values_equal) == (3, 2, 1)
    assert result.missing == ["c"]
    assert result.different == [("b", 2, 3)]
    assert result.extra == ["new"]
    assert "b (undocumented): ours 2 | Socorro 3" in agreement.report([result])


def test_script_refuses_a_folder_without_the_data(tmp_path: Path) -> None:
    assert agreement.main(["--testdata", str(tmp_path)]) == 2


def test_search_document_carries_the_new_fields(testdata: Path) -> None:
    processor = Processor(symbols=None, metrics=NullMetrics())
    processed = agreement.process(processor, testdata, "windows-x86_64")
    document = es_mapping.build_document(processed["crash_id"], processed)["processed_crash"]
    assert document["accessibility"] is False
    assert document["dom_ipc_enabled"] is True
    assert document["install_time"] == 1610026773
    assert document["uptime_ts"] == 412.090519999
    assert document["distribution_id"] == "mozilla"
    assert document["submitted_from"] == "Unknown"
    assert document["mdsw_return_code"] == 0
    assert "telemetry_environment" not in document  # JSON documents are stored, not searched
    mapped = {field.name for field in es_mapping.PROCESSED_CRASH_FIELDS}
    for key, value in processed.items():
        if key in mapped and value not in (None, []):  # ES has no empty value
            assert key in document, key
