"""`procsupervisor db init|migrate`: create and migrate the PostgreSQL destination's schema.

The DSN and schema come from `--dsn` / `--schema`, else from the configuration the destination
reads: [destinations] `postgres_dsn` / `postgres_schema` in the file given by `--config` (here or
before `db`) or $PROCSUPERVISOR_CONFIG, overridable as `PROCSUPERVISOR_DESTINATIONS_POSTGRES_DSN`.
"""

from __future__ import annotations

from typing import Any

import click

from procsupervisor.cli_context import config_options, load_config
from procsupervisor.storage import pg_schema


def _settings(ctx: click.Context, dsn: str | None, schema: str | None) -> tuple[str, str]:
    """DSN and schema: flags first, then the configuration (file and environment)."""
    loaded = load_config(ctx)
    options = loaded.destination_options("postgres")
    dsn = dsn or (options.get("dsn") or "").strip()
    schema = schema or (options.get("schema") or "").strip() or "public"
    if not dsn:
        where = f"{loaded.path} [destinations] postgres_dsn" if loaded.path else "--dsn"
        raise click.ClickException(f"no PostgreSQL DSN: set {where}")
    try:
        pg_schema.validate_schema_name(schema)
    except ValueError as exc:
        raise click.ClickException(str(exc))
    return dsn, schema


def _connect(dsn: str) -> Any:
    import psycopg2

    try:
        return psycopg2.connect(dsn, connect_timeout=10, application_name="procsupervisor-db")
    except psycopg2.Error as exc:
        raise click.ClickException(f"cannot connect to PostgreSQL: {str(exc).strip()}")


def _run_migrations(dsn: str, schema: str, *, require_initialized: bool) -> None:
    import psycopg2

    connection = _connect(dsn)
    try:
        before = pg_schema.current_version(connection, schema)
        connection.rollback()
        if require_initialized and before == 0:
            raise click.ClickException(
                f"schema {schema!r} is not initialized: run `procsupervisor db init` first"
            )
        applied = pg_schema.migrate(connection, schema)
    except psycopg2.Error as exc:  # e.g. no permission to create the schema or read it
        raise click.ClickException(f"migration failed: {str(exc).strip()}")
    finally:
        connection.close()
    if applied:
        click.echo(f"schema {schema}: applied migrations {', '.join(map(str, applied))}")
    click.echo(f"schema {schema}: at version {pg_schema.LATEST_VERSION}")


config_option = config_options(
    config_help="INI file with [destinations] postgres_dsn (and postgres_schema)."
)
dsn_option = click.option("--dsn", default=None, help="libpq DSN; overrides the config file.")
schema_option = click.option("--schema", default=None, help="Schema name (default public).")


@click.group("db")
def db() -> None:
    """Create or migrate the PostgreSQL destination's tables.

    The DSN and schema come from --dsn / --schema, else from [destinations] postgres_dsn /
    postgres_schema in the --config file (or $PROCSUPERVISOR_CONFIG); the environment
    variable PROCSUPERVISOR_DESTINATIONS_POSTGRES_DSN overrides the file's DSN.
    """


@db.command("init")
@config_option
@dsn_option
@schema_option
@click.pass_context
def init_command(ctx: click.Context, dsn: str | None, schema: str | None) -> None:
    """Create the schema and its tables (safe to run again)."""
    dsn, schema = _settings(ctx, dsn, schema)
    _run_migrations(dsn, schema, require_initialized=False)


@db.command("migrate")
@config_option
@dsn_option
@schema_option
@click.pass_context
def migrate_command(ctx: click.Context, dsn: str | None, schema: str | None) -> None:
    """Apply pending migrations to an initialized schema."""
    dsn, schema = _settings(ctx, dsn, schema)
    _run_migrations(dsn, schema, require_initialized=True)
