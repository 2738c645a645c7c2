"""Conformance with Breakpad's `minidump_stackwalk -m` on every row of testdata/RUNS.tsv
(scripts/conformance.py does the comparing; run it by hand to see the differing lines)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "conformance.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(testdata: Path) -> Any:
    return _load_script().run_conformance(testdata)


def test_every_run_was_processed(report: Any, testdata: Path) -> None:
    rows = len((testdata / "RUNS.tsv").read_text().strip().splitlines()) - 1
    assert len(report.dumps) == rows
    assert all(dump.status == "OK" for dump in report.dumps)


def test_header_lines_identical(report: Any) -> None:
    wrong = [d.name for d in report.dumps if not d.headers.complete]
    assert not wrong, f"header lines differ for {wrong}"


def test_module_lines_identical(report: Any) -> None:
    wrong = [d.name for d in report.dumps if not d.modules.complete]
    assert not wrong, f"module lines differ for {wrong}"


def test_frame_lines_at_least_99_percent(report: Any) -> None:
    frames = report.total("frames")
    assert frames.total > 1000
    assert frames.ratio() >= 0.99, f"only {frames} frame lines identical"


def test_crashing_thread_identical_where_the_crashing_module_has_symbols(report: Any) -> None:
    wrong = [
        f"{d.name} {d.crashing}"
        for d in report.dumps
        if d.crashing_module_has_symbols and not d.crashing.complete
    ]
    assert not wrong, f"crashing-thread frames differ: {wrong}"
    assert report.crashing_with_symbols().total > 0


def test_dumps_breakpad_rejects_get_an_error_status(report: Any) -> None:
    assert len(report.rejects) >= 2
    assert all(reject.ok for reject in report.rejects), report.rejects
