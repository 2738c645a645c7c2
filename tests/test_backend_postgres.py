"""PostgreSQL destination and `db init|migrate` against the real server, in a unique schema."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from _backend_helpers import (
    TcpProxy,
    new_crash_id,
    synthetic_processed_crash,
    synthetic_raw_crash,
    unique_name,
)
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procsupervisor.crashid import InvalidCrashId
from procsupervisor.metrics import NullMetrics
from procsupervisor.storage import pg_schema
from procsupervisor.storage.base import TransientStorageError
from procsupervisor.storage.db_cli import db
from procsupervisor.storage.postgres import PostgresCrashStorage


@pytest.fixture
def schema(postgres_dsn: str) -> Iterator[str]:
    name = unique_name("pstest")
    yield name
    with psycopg2.connect(postgres_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    connection.close()


@pytest.fixture
def initialized(postgres_dsn: str, schema: str) -> str:
    result = CliRunner().invoke(db, ["init", "--dsn", postgres_dsn, "--schema", schema])
    assert result.exit_code == 0, result.output
    return schema


def make_store(dsn: str, schema: str, tmp_path: Path, **extra: str) -> PostgresCrashStorage:
    options = {"dsn": dsn, "schema": schema, **extra}
    return PostgresCrashStorage.from_options(options, data_dir=tmp_path, metrics=NullMetrics())


def query(dsn: str, statement: str, *params: object) -> list[tuple]:
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()
    finally:
        connection.close()


def test_init_then_migrate_is_idempotent(postgres_dsn: str, schema: str) -> None:
    runner = CliRunner()
    first = runner.invoke(db, ["migrate", "--dsn", postgres_dsn, "--schema", schema])
    assert first.exit_code != 0 and "db init" in first.output
    init = runner.invoke(db, ["init", "--dsn", postgres_dsn, "--schema", schema])
    assert init.exit_code == 0, init.output
    assert "applied migrations 1, 2" in init.output
    again = runner.invoke(db, ["migrate", "--dsn", postgres_dsn, "--schema", schema])
    assert again.exit_code == 0 and "applied" not in again.output
    versions = query(postgres_dsn, f'SELECT version FROM "{schema}".schema_migrations ORDER BY 1')
    assert versions == [(1,), (2,)]


def test_dsn_from_config_file(postgres_dsn: str, schema: str, tmp_path: Path) -> None:
    config = tmp_path / "procsupervisor.ini"
    config.write_text(
        f"[destinations]\npostgres_dsn = {postgres_dsn}\npostgres_schema = {schema}\n"
    )
    result = CliRunner().invoke(db, ["init", "--config", str(config)])
    assert result.exit_code == 0, result.output
    # the same through the main command, with --config before the group
    from procsupervisor.cli import main

    again = CliRunner().invoke(main, ["--config", str(config), "db", "migrate"])
    assert again.exit_code == 0, again.output
    assert int(result.output.split("version ")[-1]) == pg_schema.LATEST_VERSION


def test_bad_schema_name_is_refused(postgres_dsn: str) -> None:
    result = CliRunner().invoke(db, ["init", "--dsn", postgres_dsn, "--schema", 'x"; drop'])
    assert result.exit_code != 0 and "invalid PostgreSQL schema name" in result.output


def test_save_creates_weekly_partitions_and_upserts(
    postgres_dsn: str, initialized: str, tmp_path: Path
) -> None:
    store = make_store(postgres_dsn, initialized, tmp_path)
    crash_id = new_crash_id(dt.date(2026, 11, 26))  # a Thursday; its Monday is 2026-11-23
    raw = synthetic_raw_crash(crash_id)
    store.save_processed(raw, synthetic_processed_crash(crash_id, signature="first"))
    store.save_processed(raw, synthetic_processed_crash(crash_id, signature="second"))
    store.close()
    tables = query(
        postgres_dsn,
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1",
        initialized,
    )
    assert {"reports_20261123", "raw_crashes_20261123", "processed_crashes_20261123"} <= {
        t for (t,) in tables
    }
    rows = query(postgres_dsn, f'SELECT uuid, signature FROM "{initialized}".reports_20261123')
    assert rows == [(crash_id, "second")]
    payload = query(
        postgres_dsn,
        f"SELECT processed_crash->>'signature', raw_crash->>'ProductName'"
        f' FROM "{initialized}".processed_crashes p'
        f' JOIN "{initialized}".raw_crashes r USING (uuid)',
    )
    assert payload == [("second", "Firefox")]


def test_columns_are_converted_and_truncated(
    postgres_dsn: str, initialized: str, tmp_path: Path
) -> None:
    store = make_store(postgres_dsn, initialized, tmp_path)
    crash_id = new_crash_id()
    processed = synthetic_processed_crash(
        crash_id,
        signature="S" * 400,
        version="1234567890.1234567890",
        uptime="not a number",
        install_age=2**40,
        last_crash="17",
        success="true",
        startedDateTime="2026-11-25T12:00:01",
        completeddatetime="garbage",
        address="0x\x00" + "f" * 30,
        user_comments="nul\u0000inside",
        app_notes="lone \ud800 surrogate",
    )
    del processed["started_datetime"]
    del processed["completed_datetime"]
    processed["nested"] = {"text": "a\u0000b", "nan": float("nan"), "odd": "\udc00\U0001f600"}
    store.save_processed(synthetic_raw_crash(crash_id), processed)
    store.close()
    (row,) = query(
        postgres_dsn,
        "SELECT signature, version, uptime, install_age, last_crash, success, started_datetime,"
        f' completed_datetime, address, user_comments, app_notes FROM "{initialized}".reports',
    )
    signature, version, uptime, install_age, last_crash, success, started, completed = row[:8]
    addr, com, notes = row[8:]
    assert signature == "S" * 255
    assert version == "1234567890.12345"
    assert (uptime, install_age, last_crash, success) == (None, None, 17, True)
    assert started == dt.datetime(2026, 11, 25, 12, 0, 1, tzinfo=dt.UTC)
    assert completed is None
    assert addr == "0x" + "f" * 18
    assert com == "nulinside"
    assert notes == "lone ? surrogate"
    (stored,) = query(
        postgres_dsn, f'SELECT processed_crash FROM "{initialized}".processed_crashes'
    )
    assert stored[0]["nested"] == {"text": "ab", "nan": None, "odd": "\ufffd\U0001f600"}


def test_unmigrated_schema_is_a_transient_error(
    postgres_dsn: str, schema: str, tmp_path: Path
) -> None:
    store = make_store(postgres_dsn, schema, tmp_path, attempts="1")
    for _ in range(2):  # every save names the fix, not only the first
        with pytest.raises(TransientStorageError, match="db migrate"):
            store.save_processed({}, synthetic_processed_crash(new_crash_id()))
    store.close()


def test_invalid_crash_id_never_reaches_sql(
    postgres_dsn: str, initialized: str, tmp_path: Path
) -> None:
    store = make_store(postgres_dsn, initialized, tmp_path)
    with pytest.raises(InvalidCrashId):
        store.save_processed({}, {"uuid": "'; DROP TABLE reports; --"})


def test_outage_is_bounded_then_recovers(
    postgres_dsn: str, initialized: str, tmp_path: Path
) -> None:
    params = dict(p.split("=", 1) for p in postgres_dsn.split())
    proxy = TcpProxy(int(params.get("port", "5432"))).start()
    params.update(host="127.0.0.1", port=str(proxy.port))
    proxied_dsn = " ".join(f"{k}={v}" for k, v in params.items())
    store = make_store(
        proxied_dsn,
        initialized,
        tmp_path,
        attempts="2",
        retry_delay_s="0.05",
        connect_timeout_s="2",
    )
    first, second, third = (new_crash_id() for _ in range(3))
    store.save_processed({}, synthetic_processed_crash(first))

    proxy.stop()  # the open connection is cut and new ones are refused
    with pytest.raises(TransientStorageError, match="unavailable after 2 attempts"):
        store.save_processed({}, synthetic_processed_crash(second))

    # the service comes back while a save is retrying: that save succeeds
    restart = threading.Timer(0.02, proxy.start)
    restart.start()
    store.retry_delay_s = 0.3
    store.save_processed({}, synthetic_processed_crash(third))
    restart.join()
    store.close()
    proxy.stop()
    rows = query(postgres_dsn, f'SELECT uuid FROM "{initialized}".reports ORDER BY uuid')
    assert sorted([first, third]) == [r for (r,) in rows]


scalar_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=300)
    | st.lists(st.text(max_size=5), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)
)
report_keys = sorted(
    {c.source_key for c in pg_schema.REPORT_COLUMNS} | {"startedDateTime", "completeddatetime"}
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.dictionaries(st.sampled_from(report_keys), scalar_values))
def test_any_processed_values_are_stored(
    postgres_dsn: str, initialized: str, tmp_path: Path, values: dict[str, object]
) -> None:
    store = make_store(postgres_dsn, initialized, tmp_path, attempts="1")
    crash_id = new_crash_id()
    try:
        store.save_processed({"uuid": crash_id, **values}, {"uuid": crash_id, **values})
    finally:
        store.close()
    rows = query(
        postgres_dsn, f'SELECT uuid FROM "{initialized}".reports WHERE uuid = %s', crash_id
    )
    assert rows == [(crash_id,)]
