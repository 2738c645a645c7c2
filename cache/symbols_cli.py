"""`procsupervisor symbols warm SOURCE...`: index symbol stores into the shared cache ahead of
the crashes that need them (docs/architecture.md §9, warm.py)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from procsupervisor.cache.errors import CacheDirectoryError
from procsupervisor.cache.settings import MIB, SymbolCacheSettings, SymbolSettingsError
from procsupervisor.cache.warm import SourceError, default_jobs, open_source, warm
from procsupervisor.cli_context import config_options, load_config

MAX_LISTED_FAILURES = 20


@click.group("symbols")
@config_options
def symbols() -> None:
    """Work on the shared symbol cache's contents."""


@symbols.command("warm")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Symbol cache directory (default: [symbols] cache_dir of the config).",
)
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 256), default=None,
    help="Indexing processes (default: one per CPU).",
)  # fmt: skip
@click.option(
    "--memory-mb", type=click.FloatRange(min=1), default=None,
    help="Refuse .sym files whose indexing would take more (default: [symbols] index_memory_mb,"
    " else no limit).",
)  # fmt: skip
@config_options
@click.pass_context
def warm_command(
    ctx: click.Context,
    sources: tuple[str, ...],
    cache_dir: Path | None,
    jobs: int | None,
    memory_mb: float | None,
) -> None:
    """Index every .sym file of each SOURCE that the cache does not hold yet.

    SOURCE is a symbol directory in Breakpad's layout, an http(s):// URL of a listing file (one
    <debug_file>/<debug_id>/<name>.sym per line, the files next to it) or s3://bucket/prefix.
    Indexes are also uploaded to the shared index store when [symbols] index_s3_bucket is set.
    Exits 1 when any file could not be indexed."""
    loaded = load_config(ctx)
    try:
        settings = SymbolCacheSettings.from_section(loaded.symbols, loaded.data_dir)
    except SymbolSettingsError as exc:
        raise click.ClickException(str(exc))
    changes: dict[str, object] = {}
    if cache_dir is not None:
        changes["cache_dir"] = cache_dir
    if memory_mb is not None:
        changes["index_memory_bytes"] = int(memory_mb * MIB)
    settings = dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
    jobs = jobs or default_jobs()
    failed = 0
    for text in sources:
        try:
            source = open_source(text, settings)
        except SourceError as exc:
            raise click.ClickException(str(exc))
        with click.progressbar(
            length=len(source.relpaths), label=f"indexing {text}", file=sys.stderr
        ) as bar:
            try:
                report = warm(source, settings, jobs, progress=lambda _relpath: bar.update(1))
            except CacheDirectoryError as exc:
                raise click.ClickException(str(exc))
        counts = report.outcomes
        click.echo(
            f"{text}: {report.files} files, {report.sym_bytes / 1e6:.1f} MB of .sym indexed in"
            f" {report.seconds:.1f} s with {jobs} processes: {counts['built']} built,"
            f" {counts['shared']} from the shared store, {counts['cached']} already cached,"
            f" {report.errors} errors"
        )
        for relpath, reason in report.failures[:MAX_LISTED_FAILURES]:
            click.echo(f"error: {relpath}: {reason}", err=True)
        if len(report.failures) > MAX_LISTED_FAILURES:
            click.echo(f"... and {len(report.failures) - MAX_LISTED_FAILURES} more", err=True)
        failed += report.errors
    if failed:
        sys.exit(1)
