"""PostgreSQL destination: `reports`, `raw_crashes` and `processed_crashes`, upserted per crash.

One transaction writes all three rows (Socorro used one per table, so a failure could leave a
crash half saved). Rows conflict on (uuid, crash_date), so saving a crash again replaces it.
Operational errors are retried a bounded number of times with a fresh connection, then raised:
as BackendUnavailable when the server itself is unreachable or refuses our configuration (the
crash then waits out the outage in its queue without losing an attempt, docs/architecture.md
§5), else as TransientStorageError. Either way the worker is never blocked forever (Socorro's
infinite backoff stalled every worker thread).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from psycopg2 import sql

from procsupervisor import crashid
from procsupervisor.health import Health, HealthStatus, describe_cause
from procsupervisor.metrics import Metrics, NullMetrics
from procsupervisor.storage import crashjson, pg_schema
from procsupervisor.storage.base import (
    BackendUnavailable,
    CrashDestination,
    TransientStorageError,
)

log = logging.getLogger(__name__)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# PostgreSQL text and jsonb cannot hold NUL; "\u0000" escapes not preceded by another backslash.
JSON_NUL_ESCAPE_RE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
# jsonb also refuses a surrogate escape that is not half of a pair; json.dumps writes one for
# every lone surrogate in a string (hostile raw crashes can hold them).
JSON_LONE_SURROGATE_RE = re.compile(
    r"(?<!\\)((?:\\\\)*)"
    r"(\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})"
    r"|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2})"
)
PSEUDO_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
PSEUDO_FALSE = frozenset({"0", "false", "f", "no", "n", "off", ""})
# SQLSTATEs of a server refusing our configuration: invalid authorization (class 28), missing
# database, schema or table, no privilege.
MISCONFIGURED_SQLSTATES = frozenset({"3D000", "3F000", "42P01", "42501"})
# A server that cannot serve anyone now: shutting down, starting, out of connections or disk.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53000", "53100", "53200", "53300"})
# A refused connection carries no SQLSTATE, only the server's words.
MISCONFIGURED_CONNECT_MARKERS = (
    "does not exist", "authentication failed", "no pg_hba.conf entry", "no password supplied",
    "permission denied", "not permitted to log in", "invalid port", "invalid dsn",
)


class PostgresCrashStorage(CrashDestination):
    name = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        attempts: int = 3,
        retry_delay_s: float = 0.5,
        connect_timeout_s: int = 5,
        statement_timeout_ms: int = 30_000,
        save_raw_crash: bool = True,
        metrics: Metrics | None = None,
    ) -> None:
        if not dsn:
            raise ValueError("postgres destination needs a dsn")
        self.dsn = dsn
        self.schema = pg_schema.validate_schema_name(schema)
        self.attempts = max(1, attempts)
        self.retry_delay_s = retry_delay_s
        self.connect_timeout_s = connect_timeout_s
        self.statement_timeout_ms = statement_timeout_ms
        self.save_raw = save_raw_crash
        self.metrics = metrics or NullMetrics()
        self._connection: Any = None
        self._connection_pid: int | None = None
        self._known_partitions: set[str] = set()
        self._schema_checked = False
        self._upsert_reports = self._reports_statement()

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], *, data_dir: Path, metrics: Metrics
    ) -> PostgresCrashStorage:
        def get(key: str, default: str) -> str:
            return (options.get(key) or "").strip() or default

        return cls(
            get("dsn", ""),
            schema=get("schema", "public"),
            attempts=int(get("attempts", "3")),
            retry_delay_s=float(get("retry_delay_s", "0.5")),
            connect_timeout_s=int(get("connect_timeout_s", "5")),
            statement_timeout_ms=int(get("statement_timeout_ms", "30000")),
            save_raw_crash=get("save_raw_crash", "true").lower() in PSEUDO_TRUE,
            metrics=metrics,
        )

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> Any:
        connection = self._connection
        if connection is not None and self._connection_pid == os.getpid() and not connection.closed:
            return connection
        import psycopg2

        self._connection = psycopg2.connect(
            self.dsn,
            connect_timeout=self.connect_timeout_s,
            options=f"-c statement_timeout={int(self.statement_timeout_ms)}",
            application_name="procsupervisor",
            # A server that vanished without closing the socket is noticed in about 25 s,
            # instead of a save hanging until the worker's deadline kills it.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        self._connection_pid = os.getpid()
        if not self._schema_checked:
            version = pg_schema.current_version(self._connection, self.schema)
            self._connection.rollback()
            if version < pg_schema.LATEST_VERSION:
                # Dropped so that the next save checks again (and keeps naming the fix)
                # instead of reusing this connection and failing on a missing table.
                self._drop_connection()
                # Not retryable by waiting, but it is an operator fix: keep the crash queued.
                raise BackendUnavailable(
                    f"PostgreSQL schema {self.schema!r} is at version {version}, needs "
                    f"{pg_schema.LATEST_VERSION}: run `procsupervisor db migrate`"
                )
            self._schema_checked = True
        return self._connection

    def probe(self) -> Health:
        """Connect once and read the schema version."""
        import psycopg2

        try:
            connection = psycopg2.connect(
                self.dsn, connect_timeout=self.connect_timeout_s, application_name="procsupervisor"
            )
        except psycopg2.Error as exc:
            health = postgres_health(exc)
            return health if not health.ok else Health.unreachable(describe_cause(exc))
        try:
            version = pg_schema.current_version(connection, self.schema)
        except psycopg2.Error as exc:
            return postgres_health(exc)
        finally:
            connection.close()
        if version == 0:
            return Health.misconfigured(
                f"schema {self.schema!r} is not initialised: run `procsupervisor db init`"
            )
        if version < pg_schema.LATEST_VERSION:
            return Health.misconfigured(
                f"schema {self.schema!r} is at version {version}, needs"
                f" {pg_schema.LATEST_VERSION}: run `procsupervisor db migrate`"
            )
        return Health.healthy()

    def _drop_connection(self) -> None:
        if self._connection is not None and self._connection_pid == os.getpid():
            try:
                self._connection.close()
            except Exception:
                pass
        self._connection = None
        self._known_partitions.clear()

    def close(self) -> None:
        self._drop_connection()

    # -- save --------------------------------------------------------------------------------

    def save_processed(
        self, raw_crash: Mapping[str, Any], processed_crash: Mapping[str, Any]
    ) -> None:
        import psycopg2

        crash_id = crashjson.crash_id_of(raw_crash, processed_crash)
        crash_date = crashid.date_of(crash_id)
        report = report_values(processed_crash)
        processed_json = jsonb_text(processed_crash)
        raw_json = jsonb_text(raw_crash) if self.save_raw else None
        last_error: Exception | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                connection = self._connect()
                self._ensure_partitions(connection, crash_date)
                with connection, connection.cursor() as cursor:
                    self._write(cursor, crash_id, crash_date, report, processed_json, raw_json)
                return
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                last_error = exc
                log.warning(
                    "postgres save failed crash_id=%s attempt=%d/%d error=%s",
                    crash_id,
                    attempt,
                    self.attempts,
                    str(exc).strip()[:200],
                )
                self._drop_connection()
                if postgres_health(exc).status is HealthStatus.MISCONFIGURED:
                    break  # waiting within one save cannot fix a configuration
                if attempt < self.attempts:
                    time.sleep(self.retry_delay_s * 2 ** (attempt - 1))
            except psycopg2.Error as exc:
                # Data or programming errors do not heal on a retry within this save; the
                # queue's retry and dead-letter path records them.
                self._drop_connection()
                error = BackendUnavailable if not postgres_health(exc).ok else TransientStorageError
                raise error(f"postgres error: {type(exc).__name__}: {exc}") from exc
        assert last_error is not None
        error = BackendUnavailable if not postgres_health(last_error).ok else TransientStorageError
        raise error(f"postgres unavailable after {attempt} attempts: {last_error}") from last_error

    def _ensure_partitions(self, connection: Any, crash_date: dt.date) -> None:
        week = pg_schema.monday_of(crash_date)
        for table in pg_schema.PARTITIONED_TABLES:
            name = pg_schema.partition_name(table, week)
            if name in self._known_partitions:
                continue
            # Its own short transaction: creating a partition locks the parent table, which
            # must not stay locked for the length of a save.
            with connection, connection.cursor() as cursor:
                pg_schema.ensure_partition(cursor, self.schema, table, week)
            self._known_partitions.add(name)

    def _write(
        self,
        cursor: Any,
        crash_id: str,
        crash_date: dt.date,
        report: dict[str, Any],
        processed_json: str,
        raw_json: str | None,
    ) -> None:
        date_processed = report.get("date_processed")
        cursor.execute(self._upsert_reports, {"uuid": crash_id, "crash_date": crash_date, **report})
        cursor.execute(
            self._json_statement("processed_crashes", "processed_crash"),
            (crash_id, crash_date, date_processed, processed_json),
        )
        if raw_json is not None:
            cursor.execute(
                self._json_statement("raw_crashes", "raw_crash"),
                (crash_id, crash_date, date_processed, raw_json),
            )

    def _reports_statement(self) -> sql.Composed:
        names = ["uuid", "crash_date", *(c.name for c in pg_schema.REPORT_COLUMNS)]
        return sql.SQL(
            "INSERT INTO {table} ({columns}) VALUES ({values})"
            " ON CONFLICT (uuid, crash_date) DO UPDATE SET {updates}"
        ).format(
            table=sql.Identifier(self.schema, "reports"),
            columns=sql.SQL(", ").join(map(sql.Identifier, names)),
            values=sql.SQL(", ").join(map(sql.Placeholder, names)),
            updates=sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name))
                for c in pg_schema.REPORT_COLUMNS
            ),
        )

    def _json_statement(self, table: str, column: str) -> sql.Composed:
        return sql.SQL(
            "INSERT INTO {table} (uuid, crash_date, date_processed, {column})"
            " VALUES (%s, %s, %s, %s::jsonb)"
            " ON CONFLICT (uuid, crash_date) DO UPDATE"
            " SET date_processed = EXCLUDED.date_processed, {column} = EXCLUDED.{column}"
        ).format(table=sql.Identifier(self.schema, table), column=sql.Identifier(column))


def postgres_health(exc: BaseException) -> Health:
    """What a psycopg2 error says about the server: healthy when the failure is the crash's
    own (a statement timeout, a value the table refuses)."""
    import psycopg2

    code = getattr(exc, "pgcode", None)
    if code is None:
        if not isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
            return Health.healthy()
        # No SQLSTATE: the connection failed or broke; the server's words say whether it
        # refused us (wrong database, role, password) or was not there.
        text = str(exc).lower()
        if any(marker in text for marker in MISCONFIGURED_CONNECT_MARKERS):
            return Health.misconfigured(describe_cause(exc))
        return Health.unreachable(describe_cause(exc))
    if code.startswith("28") or code in MISCONFIGURED_SQLSTATES:
        return Health.misconfigured(describe_cause(exc))
    if code.startswith("08") or code in UNAVAILABLE_SQLSTATES:
        return Health.unreachable(describe_cause(exc))
    return Health.healthy()


# -- value conversion ---------------------------------------------------------------------------


def report_values(processed_crash: Mapping[str, Any]) -> dict[str, Any]:
    """`reports` column -> value, converted and truncated; unusable values become NULL."""
    values: dict[str, Any] = {}
    for column in pg_schema.REPORT_COLUMNS:
        raw_value = None
        for key in pg_schema.SOURCE_KEY_ALIASES.get(column.name, (column.source_key,)):
            if processed_crash.get(key) is not None:
                raw_value = processed_crash[key]
                break
        values[column.name] = convert(raw_value, column)
    return values


def convert(value: Any, column: pg_schema.ReportColumn) -> Any:
    if value is None:
        return None
    if column.kind == "text":
        if isinstance(value, list | dict):
            text = crashjson.dumps(value)
        elif isinstance(value, bool):
            text = "1" if value else "0"
        else:
            text = str(value)
        # NUL and lone surrogates cannot be stored in PostgreSQL text.
        text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
        return text[: column.max_length] if column.max_length else text
    if column.kind == "int":
        return to_int32(value)
    if column.kind == "bool":
        return to_bool(value)
    if column.kind == "timestamp":
        return crashjson.to_datetime(value)
    raise ValueError(f"unknown column kind {column.kind}")


def to_int32(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(as_float):
            return None
        number = int(as_float)
    return number if INT32_MIN <= number <= INT32_MAX else None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in PSEUDO_TRUE:
        return True
    if text in PSEUDO_FALSE:
        return False
    return None


def jsonb_text(value: Mapping[str, Any]) -> str:
    text = crashjson.dumps(value)
    if "\\u0000" in text:
        text = JSON_NUL_ESCAPE_RE.sub(r"\1", text)
    if "\\ud" in text:
        text = JSON_LONE_SURROGATE_RE.sub(r"\1\\ufffd", text)
    return text
