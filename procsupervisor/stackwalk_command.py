"""`procsupervisor stackwalk DUMP...`: walk minidumps and print Breakpad's `-m` text or the
processed `json_dump`, one output per dump.

The command layer over two libraries: the stackwalker walks, with Breakpad's own limits
(docs/formats/breakpad.md §3.2), and symbol providers come from the cache side
(`procsupervisor.cache.provider.build_provider`), plain directories or the shared symbol cache
in front of them. Only what the given options need is imported, so that a call per dump costs
little more than the walk.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from procsupervisor.workers.stackwalker.api import ProcessResult
    from procsupervisor.workers.stackwalker.model import SymbolProvider


def _provider(paths: tuple[Path, ...], cache_dir: Path | None) -> SymbolProvider | None:
    if not paths:
        # Like Breakpad without a symbol path: no supplier at all (docs/formats/breakpad.md §2.1).
        return None
    if cache_dir is None:
        from procsupervisor.workers.stackwalker.symbols.directory import DirectorySymbolProvider

        return DirectorySymbolProvider(list(paths))
    from procsupervisor.cache.errors import SymbolCacheError
    from procsupervisor.cache.provider import build_provider

    try:
        return build_provider(list(paths), cache_dir)
    except SymbolCacheError as exc:
        raise click.ClickException(str(exc)) from exc


def _walk(dump: Path, provider: SymbolProvider | None, deadline_s: float | None) -> ProcessResult:
    from procsupervisor.workers.stackwalker.api import walk_minidump

    try:
        data = dump.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {dump}: {exc.strerror or exc}") from exc
    return walk_minidump(data, provider, deadline_s=deadline_s)


@click.command("stackwalk")
@click.argument(
    "dumps", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--symbols-path",
    "symbols_paths",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Breakpad symbol root (<debug_file>/<debug_id>/<name>.sym); repeatable, first hit wins."
    " Without one, frames are not symbolized.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Use the shared symbol cache in this directory in front of the symbol paths.",
)
@click.option(
    "--json", "as_json", is_flag=True,
    help="Print the processed json_dump: one JSON object per line for several DUMPs.",
)  # fmt: skip
@click.option(
    "--machine-readable", "-m", "machine", is_flag=True,
    help="Print Breakpad's -m text (default); several DUMPs' are separated by an empty line.",
)  # fmt: skip
@click.option("--pretty", is_flag=True, help="Indent the JSON output.")
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Stop walking a dump after this many seconds; unfinished threads are marked truncated.",
)
def stackwalk(
    dumps: tuple[Path, ...],
    symbols_paths: tuple[Path, ...],
    cache_dir: Path | None,
    as_json: bool,
    machine: bool,
    pretty: bool,
    timeout: float | None,
) -> None:
    """Walk the stacks of each DUMP, a minidump file. Exits 1 if any cannot be processed."""
    if as_json and machine:
        raise click.UsageError("--json and --machine-readable are exclusive")
    if cache_dir is not None and not symbols_paths:
        raise click.UsageError("--cache-dir caches symbol files: give a --symbols-path too")
    provider = _provider(symbols_paths, cache_dir)
    failed = False
    for number, dump in enumerate(dumps):
        result = _walk(dump, provider, timeout)
        if as_json:
            import json

            text = json.dumps(result.to_json_dump(), indent=2 if pretty else None, sort_keys=pretty)
            click.echo(text)
        elif result.ok:
            if number:
                sys.stdout.write("\n")
            sys.stdout.write(result.to_machine_readable())
        sys.stdout.flush()
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        if not result.ok:
            click.echo(
                f"error: {dump}: {result.status} (not a minidump Breakpad can process)", err=True
            )
            failed = True
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    stackwalk()
