"""PHC, breadcrumbs, memory measures and the beta version lookup: each rule's fields, its
failures, and what it does without data."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from _rules_helpers import RecordingMetrics, assert_valid_fields, run_rule

from procsupervisor.workers.processor import Processor
from procsupervisor.workers.rules import beta_version, memory_measures, structured_annotations
from procsupervisor.workers.rules.rulesets import build_rulesets


def test_phc_fields() -> None:
    raw = {
        "PHCKind": "FreedPage",
        "PHCBaseAddress": "139815095189504",
        "PHCUsableSize": "32",
        "PHCAllocStack": "100,200,300",
        "PHCFreeStack": "400,500",
    }
    ctx = run_rule(structured_annotations.PHCRule(), raw_crash=raw)
    assert ctx.processed == {
        "phc_kind": "FreedPage",
        "phc_base_address": "0x7f293d154000",
        "phc_usable_size": 32,
        "phc_alloc_stack": "100,200,300",
        "phc_free_stack": "400,500",
    }
    assert_valid_fields(ctx.processed)
    partial = {"PHCKind": "GuardPage", "PHCBaseAddress": "junk", "PHCUsableSize": "?"}
    assert run_rule(structured_annotations.PHCRule(), raw_crash=partial).processed == {
        "phc_kind": "GuardPage"
    }
    assert (
        run_rule(structured_annotations.PHCRule(), raw_crash={"PHCBaseAddress": "1"}).processed
        == {}
    )


BREADCRUMBS = [
    {
        "timestamp": "2021-01-07T13:40:00",
        "message": "Navigated",
        "category": "navigation",
        "level": "Info",
        "type": "Default",
        "data": {"to": "https://example.com/"},
    }
]


@pytest.mark.parametrize("text", [json.dumps(BREADCRUMBS), json.dumps({"values": BREADCRUMBS})])
def test_breadcrumbs_bare_or_sentry_wrapped(text: str) -> None:
    ctx = run_rule(structured_annotations.BreadcrumbsRule(), raw_crash={"Breadcrumbs": text})
    assert ctx.processed == {"breadcrumbs": BREADCRUMBS}
    assert ctx.notes == []
    assert_valid_fields(ctx.processed)


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("[{broken", "Breadcrumbs: malformed: not valid json"),
        (json.dumps([{"message": 5}]), "Breadcrumbs: malformed: type check failed"),
        (json.dumps({"message": "not a list"}), "Breadcrumbs: malformed: type check failed"),
    ],
)
def test_malformed_breadcrumbs_are_a_note(text: str, note: str) -> None:
    ctx = run_rule(structured_annotations.BreadcrumbsRule(), raw_crash={"Breadcrumbs": text})
    assert ctx.processed == {}
    assert ctx.notes == [note]


def test_no_breadcrumbs_nothing_to_do() -> None:
    for raw in ({}, {"Breadcrumbs": ""}):
        ctx = run_rule(structured_annotations.BreadcrumbsRule(), raw_crash=raw)
        assert ctx.processed == {} and ctx.notes == []


def _report(pid: int = 1234) -> dict[str, Any]:
    def entry(process: str, path: str, amount: int, kind: int = 1) -> dict[str, Any]:
        return {
            "process": process,
            "path": path,
            "kind": kind,
            "units": 0,
            "amount": amount,
            "description": "",
        }

    main = f"Main Process (pid {pid})"
    return {
        "version": 1,
        "hasMozMallocUsableSize": True,
        "reports": [
            entry(main, "explicit/images/content/used", 100),
            entry(main, "explicit/window-objects/top(none)/detached/x", 20),
            entry(main, "explicit/heap-overhead/bin-unused", 30),
            entry(main, "explicit/nonheap", 7, kind=0),
            entry(main, "js-main-runtime/gc-heap", 40),
            entry(main, "heap-allocated", 1000),
            entry(main, "resident", 5000),
            entry(main, "ghost-windows", 2),
            entry("Web Content (pid 99)", "resident", 77),
        ],
    }


def test_memory_measures_of_the_crashed_process() -> None:
    processed = {"json_dump": {"pid": 1234}, "memory_report": _report()}
    ctx = run_rule(memory_measures.MemoryReportExtraction(), processed=processed)
    measures = ctx.processed["memory_measures"]
    assert measures["images"] == 100
    assert measures["top_none_detached"] == 20
    assert measures["heap_overhead"] == 30
    assert measures["js_main_runtime"] == 40
    assert measures["resident"] == 5000  # the content process's 77 not counted
    assert measures["ghost_windows"] == 2
    assert measures["heap_unclassified"] == 1000 - (100 + 20 + 30)
    assert measures["explicit"] == 1000 + 7
    assert measures["vsize"] == 0
    ctx.processed.pop("json_dump")
    assert_valid_fields(ctx.processed)


def test_memory_measures_unusable_or_absent() -> None:
    rule = memory_measures.MemoryReportExtraction()
    bad_units = _report()
    bad_units["reports"][0]["units"] = 1
    for processed in (
        {"json_dump": {"pid": 55}, "memory_report": _report()},  # no report of that pid
        {"json_dump": {"pid": 1234}, "memory_report": bad_units},
        {"json_dump": {"pid": 1234}, "memory_report": {"version": 1, "reports": "x"}},
        {"json_dump": {}, "memory_report": _report()},
        {"json_dump": {"pid": 1234}},
    ):
        assert "memory_measures" not in run_rule(rule, processed=processed).processed


BETA = {"product": "Firefox", "release_channel": "beta", "version": "86.0", "build": "20210118"}


def _versions_file(tmp_path: Path) -> Path:
    path = tmp_path / "versions.json"
    rows = [
        {"product": product, "channel": channel, "build_id": "20210118", "version_string": "86.0b3"}
        for product, channel in (("Firefox", "beta"), ("DevEdition", "aurora"))
    ]
    path.write_text(json.dumps(rows))
    return path


def test_beta_version_from_a_file(tmp_path: Path) -> None:
    rule = beta_version.BetaVersionRule(
        beta_version.FileVersionSource(_versions_file(tmp_path)), RecordingMetrics()
    )
    assert run_rule(rule, processed=BETA).processed["version"] == "86.0b3"
    aurora = {**BETA, "release_channel": "aurora"}  # filed as DevEdition since 2017
    assert run_rule(rule, processed=aurora).processed["version"] == "86.0b3"
    ctx = run_rule(rule, processed={**BETA, "build": "20990101"})
    assert ctx.processed["version"] == "86.0b0"
    assert ctx.notes == [
        'release channel is beta but no version data was found - added "b0" suffix to version '
        "number"
    ]
    # not a beta: nothing to look up
    release = {**BETA, "release_channel": "release"}
    assert run_rule(rule, processed=release).processed == release


def test_beta_version_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="expected a JSON list"):
        beta_version.FileVersionSource(path)
    with pytest.raises(ValueError, match="beta version file"):
        beta_version.FileVersionSource(tmp_path / "missing.json")


class _VersionService(BaseHTTPRequestHandler):
    calls: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        query = parse_qs(urlsplit(self.path).query)
        type(self).calls.append(query)
        if query.get("build_id") == ["500"]:
            self.send_response(500)
            self.end_headers()
            return
        hits = [{"version_string": "86.0b3"}] if query.get("build_id") == ["20210118"] else []
        body = json.dumps({"hits": hits, "total": len(hits)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def version_service() -> Iterator[str]:
    _VersionService.calls = []
    server = HTTPServer(("127.0.0.1", 0), _VersionService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/VersionString"
    server.shutdown()
    server.server_close()


def test_beta_version_from_the_http_service_is_cached(version_service: str) -> None:
    metrics = RecordingMetrics()
    rule = beta_version.BetaVersionRule(beta_version.HttpVersionSource(version_service), metrics)
    for _ in range(2):
        assert run_rule(rule, processed=BETA).processed["version"] == "86.0b3"
    assert _VersionService.calls == [
        {"product": ["Firefox"], "channel": ["beta"], "build_id": ["20210118"]}
    ]
    results = [tags["result"] for _, name, _, tags in metrics.calls if name.endswith(".cache")]
    assert results == ["miss", "hit"]
    # an error answer is "unknown": the b0 suffix
    assert run_rule(rule, processed={**BETA, "build": "500"}).processed["version"] == "86.0b0"


def test_beta_version_service_down_fails_the_rule() -> None:
    source = beta_version.HttpVersionSource("http://127.0.0.1:9/api/VersionString")
    rule = beta_version.BetaVersionRule(source, RecordingMetrics())
    with pytest.raises(requests.ConnectionError):
        run_rule(rule, processed=BETA)


def test_expiring_cache() -> None:
    now = [0.0]
    cache = beta_version.ExpiringCache(2, clock=lambda: now[0])
    cache.set("a", "1", ttl_s=10)
    cache.set("b", None, ttl_s=10)
    assert cache.get("b") == (True, None)
    cache.set("c", "3", ttl_s=10)  # "a" is the oldest: out
    assert cache.get("a") == (False, None)
    now[0] = 11
    assert cache.get("c") == (False, None)


def test_beta_version_is_off_by_default_and_configurable(tmp_path: Path) -> None:
    def rule_names(options: dict[str, str]) -> list[str]:
        source = beta_version.version_source(options)
        named = build_rulesets(symbols=None, metrics=RecordingMetrics(), beta_versions=source)
        return [rule.name for rule in named["default"]]

    assert "BetaVersionRule" not in rule_names({})
    assert "BetaVersionRule" in rule_names({"beta_version_file": str(_versions_file(tmp_path))})
    assert "BetaVersionRule" in rule_names({"beta_version_api": "https://crash-stats.example/api"})
    # the processor options reach it; bad ones stop the processor from starting
    with pytest.raises(ValueError, match="exclude each other"):
        Processor(
            symbols=None,
            metrics=RecordingMetrics(),
            options={"beta_version_api": "https://x", "beta_version_file": "y"},
        )
    with pytest.raises(ValueError, match="not an http"):
        Processor(symbols=None, metrics=RecordingMetrics(), options={"beta_version_api": "ftp://x"})
