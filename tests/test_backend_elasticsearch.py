"""Elasticsearch destination against the ES-protocol server in tests/es_server.py.

No Elasticsearch server installs on this machine, so the official client talks HTTP to a local
server that enforces ES's mapping types, term-size and total-fields limits (see es_server.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _backend_helpers import StatsdListener, new_crash_id, synthetic_processed_crash
from elasticsearch import Elasticsearch
from es_server import ESServer
from hypothesis import given, settings
from hypothesis import strategies as st

from procsupervisor.metrics import NullMetrics, StatsdMetrics
from procsupervisor.storage import es_mapping
from procsupervisor.storage.base import TransientStorageError
from procsupervisor.storage.elasticsearch import ESCrashStorage


class RecordingMetrics(NullMetrics):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any, dict[str, str]]] = []

    def incr(self, name: str, value: int = 1, tags: Any = None) -> None:
        self.calls.append(("incr", name, value, dict(tags or {})))

    def timing(self, name: str, ms: float, tags: Any = None) -> None:
        self.calls.append(("timing", name, ms, dict(tags or {})))

    def histogram(self, name: str, value: float, tags: Any = None) -> None:
        self.calls.append(("histogram", name, value, dict(tags or {})))

    def named(self, name: str) -> list[tuple[str, str, Any, dict[str, str]]]:
        return [c for c in self.calls if c[1] == name]


@pytest.fixture
def server() -> Iterator[ESServer]:
    with ESServer() as running:
        yield running


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
def store(server: ESServer, metrics: RecordingMetrics, tmp_path: Path) -> Iterator[ESCrashStorage]:
    options = {"url": server.url, "backoff_s": "0.01", "timeout_s": "5"}
    destination = ESCrashStorage.from_options(options, data_dir=tmp_path, metrics=metrics)
    yield destination
    destination.close()


def stored(server: ESServer, crash_id: str) -> dict[str, Any]:
    client = Elasticsearch(server.url)
    found = client.search(index="socorro*", query={"ids": {"values": [crash_id]}})
    client.close()
    (hit,) = found["hits"]["hits"]
    return hit


def test_weekly_index_created_once_with_owned_mapping(
    server: ESServer, store: ESCrashStorage
) -> None:
    ids = [new_crash_id(dt.date(2026, 11, 25)) for _ in range(3)]
    for crash_id in ids:
        store.save_processed({}, synthetic_processed_crash(crash_id))
    index = dt.date(2026, 11, 25).strftime("socorro%Y%W")
    assert list(server.es.indices) == [index]
    creates = [r for r in server.es.requests if r == ("PUT", f"/{index}")]
    assert len(creates) == 1
    mapping = server.es.indices[index].mappings
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["processed_crash"]["properties"]["signature"] == {
        "type": "keyword"
    }
    assert len(server.es.indices[index].docs) == 3


def test_document_has_only_mapped_fields(server: ESServer, store: ESCrashStorage) -> None:
    crash_id = new_crash_id()
    processed = synthetic_processed_crash(crash_id)
    processed.update({f"Odd-Key {n}": n for n in range(2000)})  # would explode a dynamic mapping
    processed["json_dump"]["threads"] = [{"frames": [{"function": "f"}]}]
    store.save_processed({"uuid": crash_id, "secret": "x"}, processed)
    hit = stored(server, crash_id)
    assert hit["_id"] == crash_id
    source = hit["_source"]
    assert set(source) == {"crash_id", "processed_crash"}
    assert source["crash_id"] == crash_id
    doc = source["processed_crash"]
    assert doc["signature"] == "OOM | small"
    assert doc["json_dump"] == {"system_info": {"os": "Windows NT"}}
    assert not any(k.startswith("Odd-Key") for k in doc)


def test_values_are_converted_truncated_or_dropped(server: ESServer, store: ESCrashStorage) -> None:
    crash_id = new_crash_id()
    processed = synthetic_processed_crash(
        crash_id,
        signature="\U0001f600" * 12_000,  # 12,000 chars, 48,000 UTF-8 bytes
        user_comments="é" * 40_000,
        uptime="12x",
        install_age="3600",
        crashing_thread=float("inf"),
        last_crash=2**70,
        success="1",
        addons_checked="yes",
        client_crash_date="yesterday",
        topmost_filenames=["a.cpp", {"bad": 1}, 7],
        reason="lone \ud800 surrogate",
    )
    store.save_processed({}, processed)
    doc = stored(server, crash_id)["_source"]["processed_crash"]
    assert len(doc["signature"]) <= 10_000
    assert len(doc["signature"].encode()) <= 32_766
    assert len(doc["user_comments"].encode()) <= 32_766
    assert "uptime" not in doc and "crashing_thread" not in doc and "last_crash" not in doc
    assert doc["install_age"] == 3600
    assert doc["success"] is True and doc["addons_checked"] is False
    assert "client_crash_date" not in doc
    assert doc["topmost_filenames"] == ["a.cpp", "7"]
    assert doc["reason"] == "lone ? surrogate"


def test_rejected_field_is_removed_and_recorded(
    server: ESServer, store: ESCrashStorage, metrics: RecordingMetrics
) -> None:
    crash_id = new_crash_id(dt.date(2026, 11, 25))
    index = dt.date(2026, 11, 25).strftime("socorro%Y%W")
    # An index created by an older field list that typed two fields differently.
    mapping = es_mapping.build_mapping()
    props = mapping["properties"]["processed_crash"]["properties"]
    props["reason"] = {"type": "long"}
    props["os_version"] = {"type": "date"}
    server.es.create_index(index, {"mappings": mapping})
    store.save_processed({}, synthetic_processed_crash(crash_id))
    source = stored(server, crash_id)["_source"]
    assert source["removed_fields"] == "processed_crash.os_version processed_crash.reason"
    assert (
        "reason" not in source["processed_crash"] and "os_version" not in source["processed_crash"]
    )
    assert source["processed_crash"]["signature"] == "OOM | small"
    errors = metrics.named("processor.es.indexerror")
    assert [c[3]["error"] for c in errors] == ["mapperparsing", "numberformatexception"]
    outcomes = [c[3]["outcome"] for c in metrics.named("processor.es.index")]
    assert outcomes == ["failed", "failed", "successful"]
    assert metrics.named("processor.es.crash_document_size")[0][2] > 100


def test_immense_term_error_names_its_field(server: ESServer) -> None:
    # The document builder keeps every string under the term limit, so an immense term can
    # only come from a cluster we do not control; check the error is understood when it does.
    from elasticsearch import BadRequestError

    from procsupervisor.storage.elasticsearch import _error_tag, field_from_error

    client = Elasticsearch(server.url)
    client.indices.create(index="old", mappings=es_mapping.build_mapping())
    document = {"crash_id": "x", "processed_crash": {"signature": "é" * 20_000}}
    with pytest.raises(BadRequestError) as caught:
        client.index(index="old", id="x", document=document)
    client.close()
    assert field_from_error(caught.value) == "processed_crash.signature"
    assert _error_tag(caught.value) == "maxbyteslengthexceeded"


def test_weekly_index_follows_date_processed_in_utc() -> None:
    fallback = dt.date(2026, 1, 7)
    sunday = dt.date(2026, 11, 29)  # %W weeks start on Monday: still the week of the 23rd
    assert es_mapping.index_name("socorro%Y%W", {"date_processed": sunday}, fallback) == (
        "socorro202647"
    )
    # Monday 01:00 at UTC+5 is still Sunday in UTC.
    shifted = {"date_processed": "2026-11-30T01:00:00+05:00"}
    assert es_mapping.index_name("socorro%Y%W", shifted, fallback) == "socorro202647"
    for unusable in ({}, {"date_processed": "yesterday"}, {"date_processed": None}):
        assert es_mapping.index_name("socorro%Y%W", unusable, fallback) == "socorro202601"


def test_fields_missing_from_an_older_index_are_left_out(
    server: ESServer, store: ESCrashStorage
) -> None:
    crash_id = new_crash_id(dt.date(2026, 11, 25))
    index = dt.date(2026, 11, 25).strftime("socorro%Y%W")
    mapping = es_mapping.build_mapping()
    del mapping["properties"]["processed_crash"]["properties"]["cpu_arch"]
    server.es.create_index(index, {"mappings": mapping})
    store.save_processed({}, synthetic_processed_crash(crash_id))
    source = stored(server, crash_id)["_source"]
    assert "removed_fields" not in source and "cpu_arch" not in source["processed_crash"]


def test_connection_errors_and_overload_are_retried(
    server: ESServer, store: ESCrashStorage, metrics: RecordingMetrics
) -> None:
    server.es.fail_next(2, "drop")
    server.es.fail_next(1, "status")
    crash_id = new_crash_id()
    store.save_processed({}, synthetic_processed_crash(crash_id))
    assert stored(server, crash_id)["_id"] == crash_id
    tags = [c[3]["error"] for c in metrics.named("processor.es.indexerror")]
    assert tags == ["connection", "connection", "status503"]


def test_request_timeouts_are_retried_like_connection_errors(
    server: ESServer, metrics: RecordingMetrics, tmp_path: Path
) -> None:
    server.es.slow_s = 5.0  # ten times the client's timeout: it gives up first
    server.es.fail_next(1, "slow")
    options = {"url": server.url, "backoff_s": "0.01", "timeout_s": "0.5"}
    store = ESCrashStorage.from_options(options, data_dir=tmp_path, metrics=metrics)
    crash_id = new_crash_id()
    store.save_processed({}, synthetic_processed_crash(crash_id))
    store.close()
    assert stored(server, crash_id)["_id"] == crash_id
    assert [c[3]["error"] for c in metrics.named("processor.es.indexerror")] == ["timeout"]
    outcomes = [c[3]["outcome"] for c in metrics.named("processor.es.index")]
    assert outcomes == ["failed", "successful"]


def test_unfixable_rejection_counts_one_unhandled_error(
    server: ESServer, store: ESCrashStorage, metrics: RecordingMetrics
) -> None:
    crash_id = new_crash_id(dt.date(2026, 11, 25))
    index = dt.date(2026, 11, 25).strftime("socorro%Y%W")
    mapping = es_mapping.build_mapping()
    mapping["properties"]["crash_id"] = {"type": "long"}  # never stripped from a document
    server.es.create_index(index, {"mappings": mapping})
    with pytest.raises(TransientStorageError, match="rejected"):
        store.save_processed({}, synthetic_processed_crash(crash_id))
    errors = metrics.named("processor.es.indexerror")
    assert [c[3]["error"] for c in errors] == ["unhandled"]
    assert server.es.indices[index].docs == {}


def test_gives_up_after_attempts_with_transient_error(
    server: ESServer, store: ESCrashStorage
) -> None:
    server.es.fail_next(5, "status")
    with pytest.raises(TransientStorageError, match="after 5 attempts"):
        store.save_processed({}, synthetic_processed_crash(new_crash_id()))


def test_unreachable_cluster_is_transient(tmp_path: Path) -> None:
    from _backend_helpers import free_port

    options = {"url": f"http://127.0.0.1:{free_port()}", "backoff_s": "0.01", "attempts": "2"}
    store = ESCrashStorage.from_options(options, data_dir=tmp_path, metrics=NullMetrics())
    with pytest.raises(TransientStorageError, match="connection error"):
        store.save_processed({}, synthetic_processed_crash(new_crash_id()))


def test_reprocessing_overwrites_the_same_document(server: ESServer, store: ESCrashStorage) -> None:
    crash_id = new_crash_id()
    store.save_processed({}, synthetic_processed_crash(crash_id, signature="old"))
    store.save_processed({}, synthetic_processed_crash(crash_id, signature="new"))
    client = Elasticsearch(server.url)
    assert client.count(index="socorro*")["count"] == 1
    client.close()
    assert stored(server, crash_id)["_source"]["processed_crash"]["signature"] == "new"


def test_fake_server_enforces_total_fields_limit(server: ESServer) -> None:
    client = Elasticsearch(server.url)
    too_many = {"properties": {f"f{n}": {"type": "keyword"} for n in range(1001)}}
    with pytest.raises(Exception, match="Limit of total fields"):
        client.indices.create(index="toomany", mappings=too_many)
    # and through dynamic mapping of documents
    with pytest.raises(Exception, match="Limit of total fields"):
        client.index(index="dynamic", id="1", document={f"k{n}": "v" for n in range(600)})
    assert len(es_mapping.PROCESSED_CRASH_FIELDS) < 1000
    client.close()


def test_es_metrics_reach_statsd_over_udp(server: ESServer, tmp_path: Path) -> None:
    listener = StatsdListener()
    metrics = StatsdMetrics("127.0.0.1", listener.port, prefix="socorro")
    store = ESCrashStorage.from_options({"url": server.url}, data_dir=tmp_path, metrics=metrics)
    store.save_processed({}, synthetic_processed_crash(new_crash_id()))
    lines = listener.wait_for(2)
    listener.close()
    metrics.close()
    assert any(
        line.startswith("socorro.processor.es.crash_document_size:") and line.endswith("|h")
        for line in lines
    )
    assert any(
        line.startswith("socorro.processor.es.index:") and line.endswith("|ms|#outcome:successful")
        for line in lines
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from([f.name for f in es_mapping.PROCESSED_CRASH_FIELDS]), json_values
    )
)
def test_any_processed_crash_gives_a_document_es_accepts(values: dict[str, Any]) -> None:
    from es_server import FakeElasticsearch

    processed: dict[str, Any] = {}
    for dotted, value in values.items():
        node = processed
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    crash_id = new_crash_id()
    document = es_mapping.build_document(crash_id, processed)
    fake = FakeElasticsearch()
    fake.create_index("socorro202647", {"mappings": es_mapping.build_mapping()})
    status, _ = fake.index_document("socorro202647", crash_id, document)  # raises on a 400
    assert status == 201


def test_fake_server_refuses_what_es_refuses(server: ESServer) -> None:
    from elasticsearch import BadRequestError

    from procsupervisor.storage.elasticsearch import _error_tag, field_from_error

    client = Elasticsearch(server.url)
    bad_analyzer = {"properties": {"t": {"type": "text", "analyzer": "nonesuch"}}}
    with pytest.raises(BadRequestError, match="analyzer \\[nonesuch\\] has not been configured"):
        client.indices.create(index="a1", mappings=bad_analyzer)
    with pytest.raises(BadRequestError, match="No handler for type"):
        client.indices.create(index="a2", mappings={"properties": {"t": {"type": "blob"}}})
    client.indices.create(index="strict", mappings=es_mapping.build_mapping())
    with pytest.raises(BadRequestError) as strict:
        client.index(index="strict", id="1", document={"processed_crash": {"new_field": 1}})
    assert field_from_error(strict.value) == "processed_crash.new_field"
    assert _error_tag(strict.value) == "strictdynamicmapping"
    with pytest.raises(BadRequestError) as clash:
        client.index(index="strict", id="2", document={"processed_crash": {"json_dump": "flat"}})
    assert field_from_error(clash.value) == "processed_crash.json_dump"
    with pytest.raises(
        BadRequestError, match="failed to parse field \\[processed_crash.success\\]"
    ):
        client.index(index="strict", id="3", document={"processed_crash": {"success": "maybe"}})
    assert server.es.indices["strict"].docs == {}
    client.close()
