"""`procsupervisor cache stats|prune`: look at and tidy the shared symbol cache."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from procsupervisor.cache.download import TEMP_DIR_NAME, TEMP_SUFFIX
from procsupervisor.cache.errors import CacheDirectoryError
from procsupervisor.cache.locks import KeyLocks
from procsupervisor.cache.settings import MIB, SymbolCacheSettings, SymbolSettingsError
from procsupervisor.cache.shared_counters import SharedCounters
from procsupervisor.cache.store import SymbolStore
from procsupervisor.cli_context import config_options, config_path, load_config

# A temp download older than this belongs to a worker that died mid-download.
STALE_TEMP_S = 3600.0


def _settings(ctx: click.Context) -> SymbolCacheSettings:
    loaded = load_config(ctx)
    try:
        return SymbolCacheSettings.from_section(loaded.symbols, loaded.data_dir)
    except SymbolSettingsError as exc:
        raise click.ClickException(str(exc))


def _open_store(cache_dir: Path, size_limit_bytes: int | None) -> SymbolStore:
    if not cache_dir.is_dir():
        raise click.ClickException(f"no symbol cache at {cache_dir}")
    try:
        # vets the directory (owner, mode) before diskcache touches it
        return SymbolStore(cache_dir, size_limit_bytes)
    except CacheDirectoryError as exc:
        raise click.ClickException(str(exc))


@click.group("cache")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Symbol cache directory (default: [symbols] cache_dir of the config).",
)
@config_options
@click.pass_context
def cache(ctx: click.Context, cache_dir: Path | None) -> None:
    """Inspect or tidy the shared symbol cache."""
    settings = None
    config_given = config_path(ctx) is not None
    if cache_dir is None or config_given:
        settings = _settings(ctx)
    ctx.obj = {
        "cache_dir": cache_dir if cache_dir is not None else settings.cache_dir,
        # Only a config sets the limit; a bare --cache-dir keeps the one the workers recorded.
        "size_limit": settings.cache_size_bytes if config_given and settings else None,
    }


@cache.command("stats")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def stats(obj: dict, as_json: bool) -> None:
    """Entries, sizes and limit of the disk cache, and the counters of every worker so far."""
    store = _open_store(obj["cache_dir"], None)
    try:
        figures: dict[str, object] = {
            "directory": str(store.directory),
            "entries": len(store),
            "size_bytes": store.volume(),
            "size_limit_bytes": store.size_limit,
            **store.count_by_kind(),
            "lock_files": sum(1 for _ in KeyLocks(store.directory).directory.glob("*.lock")),
            "totals": SharedCounters(store.directory).read(),
            "temp_files": sum(1 for _ in (store.directory / TEMP_DIR_NAME).glob(f"*{TEMP_SUFFIX}")),
        }
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(figures, sort_keys=True))
        return
    for name, value in figures.items():
        if isinstance(value, dict):
            if not value:
                click.echo(f"{name}: none recorded")
            for counter, total in value.items():
                click.echo(f"{name}.{counter}: {total:g}")
        else:
            click.echo(f"{name}: {value}")


@cache.command("prune")
@click.option(
    "--max-size-mb",
    type=click.FloatRange(min=0),
    default=None,
    help="Shrink to this size (and keep it as the limit).",
)
@click.option("--negative", is_flag=True, help="Also drop every negative entry.")
@click.option("--all", "drop_all", is_flag=True, help="Empty the cache.")
@click.pass_obj
def prune(obj: dict, max_size_mb: float | None, negative: bool, drop_all: bool) -> None:
    """Drop expired entries, evict down to the size limit, remove stale temp and lock files."""
    size_limit = int(max_size_mb * MIB) if max_size_mb is not None else obj["size_limit"]
    store = _open_store(obj["cache_dir"], size_limit)
    try:
        if drop_all:
            removed = {"cleared": store.clear()}
        else:
            removed = {"expired": store.expire(), "evicted": store.cull()}
            if negative:
                removed["negative"] = store.drop_negative()
        removed["temp_files"] = _remove_stale_temp_files(store.directory / TEMP_DIR_NAME)
        removed["lock_files"] = KeyLocks(store.directory).remove_idle()
        removed["size_bytes"] = store.volume()
    finally:
        store.close()
    click.echo(json.dumps(removed, sort_keys=True))


def _remove_stale_temp_files(directory: Path) -> int:
    cutoff = time.time() - STALE_TEMP_S
    removed = 0
    for path in directory.glob(f"*{TEMP_SUFFIX}"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            pass
    return removed
