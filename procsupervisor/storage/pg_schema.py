"""PostgreSQL schema of the `postgres` destination: tables, migrations, weekly partitions.

Tables follow Socorro (docs/processing.md §4): `reports` with Socorro's columns and truncation
lengths, `raw_crashes` and `processed_crashes` holding the JSON as JSONB. Socorro used
inheritance partitions named `<table>_<Monday YYYYMMDD>`; here the parents are declaratively
partitioned by `crash_date` (the date in the crash id, so a crash always lands in the same
week, however often it is reprocessed) and each week's partition keeps Socorro's name. The
primary key (uuid, crash_date) is what upserts conflict on.

Migrations are numbered, applied in order inside one transaction under an advisory lock, and
recorded in `schema_migrations`, so two hosts running `db migrate` at once are safe.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg2 import sql

SCHEMA_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PARTITIONED_TABLES = ("reports", "raw_crashes", "processed_crashes")
# Any fixed number works: it only has to be the same for every process using this schema.
ADVISORY_LOCK_KEY = 0x70726F63  # "proc"


@dataclass(frozen=True)
class ReportColumn:
    """One `reports` column: where its value comes from and how it is stored."""

    name: str
    sql_type: str
    source_key: str  # key in the processed crash
    kind: str  # text / int / bool / timestamp
    max_length: int | None = None


REPORT_COLUMNS: tuple[ReportColumn, ...] = (
    ReportColumn("addons_checked", "boolean", "addons_checked", "bool"),
    ReportColumn("address", "varchar(20)", "address", "text", 20),
    ReportColumn("app_notes", "varchar(1024)", "app_notes", "text", 1024),
    ReportColumn("build", "varchar(30)", "build", "text", 30),
    ReportColumn("client_crash_date", "timestamptz", "client_crash_date", "timestamp"),
    ReportColumn("completed_datetime", "timestamptz", "completed_datetime", "timestamp"),
    ReportColumn("cpu_info", "varchar(100)", "cpu_info", "text", 100),
    ReportColumn("cpu_name", "varchar(100)", "cpu_name", "text", 100),
    ReportColumn("date_processed", "timestamptz", "date_processed", "timestamp"),
    ReportColumn("distributor", "varchar(20)", "distributor", "text", 20),
    ReportColumn("distributor_version", "varchar(20)", "distributor_version", "text", 20),
    ReportColumn("email", "varchar(100)", "email", "text", 100),
    ReportColumn("exploitability", "text", "exploitability", "text"),
    ReportColumn("flash_version", "text", "flash_version", "text"),
    ReportColumn("hangid", "text", "hangid", "text"),
    ReportColumn("install_age", "integer", "install_age", "int"),
    ReportColumn("last_crash", "integer", "last_crash", "int"),
    ReportColumn("os_name", "varchar(100)", "os_name", "text", 100),
    ReportColumn("os_version", "varchar(100)", "os_version", "text", 100),
    ReportColumn("processor_notes", "text", "processor_notes", "text"),
    ReportColumn("process_type", "text", "process_type", "text"),
    ReportColumn("product", "varchar(30)", "product", "text", 30),
    ReportColumn("productid", "text", "productid", "text"),
    ReportColumn("reason", "varchar(255)", "reason", "text", 255),
    ReportColumn("release_channel", "text", "release_channel", "text"),
    ReportColumn("signature", "varchar(255)", "signature", "text", 255),
    ReportColumn("started_datetime", "timestamptz", "started_datetime", "timestamp"),
    ReportColumn("success", "boolean", "success", "bool"),
    ReportColumn("topmost_filenames", "text", "topmost_filenames", "text"),
    ReportColumn("truncated", "boolean", "truncated", "bool"),
    ReportColumn("uptime", "integer", "uptime", "int"),
    ReportColumn("user_comments", "varchar(1024)", "user_comments", "text", 1024),
    ReportColumn("user_id", "varchar(50)", "user_id", "text", 50),
    ReportColumn("url", "varchar(255)", "url", "text", 255),
    ReportColumn("version", "varchar(16)", "version", "text", 16),
)

# Socorro renamed two processed keys on their way into `reports`.
SOURCE_KEY_ALIASES = {
    "completed_datetime": ("completed_datetime", "completeddatetime"),
    "started_datetime": ("started_datetime", "startedDateTime"),
}


def validate_schema_name(schema: str) -> str:
    if not SCHEMA_NAME_RE.match(schema):
        raise ValueError(f"invalid PostgreSQL schema name: {schema!r:.80}")
    return schema


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def partition_name(table: str, day: dt.date) -> str:
    """Socorro's weekly table name: `<table>_<Monday YYYYMMDD>`."""
    return f"{table}_{monday_of(day):%Y%m%d}"


# -- migrations ------------------------------------------------------------------------------


def _create_tables(schema: str) -> list[sql.Composable]:
    report_columns = sql.SQL(",\n").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.sql_type)) for c in REPORT_COLUMNS
    )
    json_tables = [
        sql.SQL(
            "CREATE TABLE {table} ("
            " uuid varchar(50) NOT NULL,"
            " crash_date date NOT NULL,"
            " date_processed timestamptz,"
            " {column} jsonb NOT NULL,"
            " PRIMARY KEY (uuid, crash_date)"
            ") PARTITION BY RANGE (crash_date)"
        ).format(table=sql.Identifier(schema, table), column=sql.Identifier(column))
        for table, column in (
            ("raw_crashes", "raw_crash"),
            ("processed_crashes", "processed_crash"),
        )
    ]
    reports = sql.SQL(
        "CREATE TABLE {table} ("
        " uuid varchar(50) NOT NULL,"
        " crash_date date NOT NULL,"
        " {columns},"
        " PRIMARY KEY (uuid, crash_date)"
        ") PARTITION BY RANGE (crash_date)"
    ).format(table=sql.Identifier(schema, "reports"), columns=report_columns)
    return [reports, *json_tables]


def _index_reports_by_signature(schema: str) -> list[sql.Composable]:
    # Socorro's reports queries filter by signature within a date range; an index on the
    # partitioned parent is created on every partition, present and future.
    return [
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (signature, date_processed)").format(
            sql.Identifier("reports_signature_date_processed"),
            sql.Identifier(schema, "reports"),
        )
    ]


MIGRATIONS: tuple[tuple[int, str, Callable[[str], list[sql.Composable]]], ...] = (
    (1, "reports, raw_crashes, processed_crashes partitioned by week", _create_tables),
    (2, "index reports by signature and date_processed", _index_reports_by_signature),
)
LATEST_VERSION = MIGRATIONS[-1][0]


def _ensure_migrations_table(cursor: Any, schema: str) -> None:
    cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    cursor.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " version integer PRIMARY KEY,"
            " description text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(sql.Identifier(schema, "schema_migrations"))
    )


def current_version(connection: Any, schema: str) -> int:
    """Highest applied migration, 0 when the schema or its migrations table does not exist."""
    validate_schema_name(schema)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", (f'"{schema}".schema_migrations',))
        if cursor.fetchone()[0] is None:
            return 0
        cursor.execute(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(
                sql.Identifier(schema, "schema_migrations")
            )
        )
        return int(cursor.fetchone()[0])


def migrate(connection: Any, schema: str) -> list[int]:
    """Apply every pending migration in one transaction; return the versions applied."""
    validate_schema_name(schema)
    applied: list[int] = []
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        _ensure_migrations_table(cursor, schema)
        cursor.execute(
            sql.SQL("SELECT version FROM {}").format(sql.Identifier(schema, "schema_migrations"))
        )
        done = {row[0] for row in cursor.fetchall()}
        for version, description, statements in MIGRATIONS:
            if version in done:
                continue
            for statement in statements(schema):
                cursor.execute(statement)
            cursor.execute(
                sql.SQL("INSERT INTO {} (version, description) VALUES (%s, %s)").format(
                    sql.Identifier(schema, "schema_migrations")
                ),
                (version, description),
            )
            applied.append(version)
    return applied


def ensure_partition(cursor: Any, schema: str, table: str, day: dt.date) -> str:
    """Create the week's partition of `table` if it is missing; return its name.

    Runs inside the caller's transaction; the advisory lock serializes concurrent creators
    (workers on several hosts reaching a new week at the same moment).
    """
    if table not in PARTITIONED_TABLES:
        raise ValueError(f"not a partitioned table: {table}")
    monday = monday_of(day)
    name = partition_name(table, monday)
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
    cursor.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {partition} PARTITION OF {parent}"
            " FOR VALUES FROM (%s) TO (%s)"
        ).format(partition=sql.Identifier(schema, name), parent=sql.Identifier(schema, table)),
        (monday, monday + dt.timedelta(days=7)),
    )
    return name
