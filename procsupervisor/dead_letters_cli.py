"""`procsupervisor dead ...`: the dead-letter queue one letter at a time
(docs/operations.md, "Dead letters").

Works on the configured queue backend directly (fs spool or RabbitMQ), with or without a
running supervisor, which never consumes dead letters. Ids are the ones `dead list` prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import click

from procsupervisor.cli_context import config_options, load_config, one_line
from procsupervisor.queues.base import CrashQueue, DeadLetter

T = TypeVar("T")

DEFAULT_LIMIT = 50
REASON_COLUMN_CHARS = 70


@contextmanager
def _queue(ctx: click.Context) -> Iterator[CrashQueue]:
    from procsupervisor.backends import make_queue
    from procsupervisor.metrics import NullMetrics

    config = load_config(ctx)
    try:
        queue = make_queue(config, NullMetrics())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot open the queue: {one_line(str(exc))}")
    try:
        yield queue
    finally:
        queue.close()


def _run(what: str, call: Callable[[], T]) -> T:
    """Run one queue operation; an unreachable broker or an unreadable spool is one line."""
    try:
        return call()
    except (OSError, ValueError) as exc:  # ConnectionError is an OSError
        raise click.ClickException(f"cannot {what}: {one_line(str(exc))}")


@click.group()
@config_options
def dead() -> None:
    """List, inspect, requeue or purge dead-lettered crashes."""


@dead.command("list")
@config_options
@click.option("--limit", "-n", type=click.IntRange(1), default=DEFAULT_LIMIT, show_default=True,
              help="Show at most this many (oldest first).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of letters.")
@click.pass_context
def list_letters(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Dead letters, oldest first: id, crash id, origin queue, attempts, when, reason."""
    with _queue(ctx) as queue:
        letters = _run("list dead letters", lambda: queue.list_dead(limit))
        total = _run("count dead letters", queue.dead_letter_count)
    if as_json:
        click.echo(json.dumps([letter.as_dict() for letter in letters], indent=2))
        return
    if not letters:
        click.echo("no dead letters")
        return
    click.echo(_table(letters))
    shown = f"{len(letters)} of {total}" if total is not None and total > len(letters) else ""
    click.echo(f"\n{shown or len(letters)} dead letter(s); `procsupervisor dead show ID` for one")


@dead.command("show")
@config_options
@click.argument("letter_id")
@click.option("--json", "as_json", is_flag=True, help="The letter as a JSON object.")
@click.pass_context
def show(ctx: click.Context, letter_id: str, as_json: bool) -> None:
    """Everything known about one dead letter, with its full reason."""
    with _queue(ctx) as queue:
        found = _run("read the dead letter", lambda: queue.find_dead([letter_id]))
    letter = found.get(letter_id)
    if letter is None:
        raise click.ClickException(f"no dead letter {letter_id!r} (see `procsupervisor dead list`)")
    if as_json:
        click.echo(json.dumps(letter.as_dict(), indent=2))
        return
    for key, value in letter.as_dict().items():
        click.echo(f"{key + ':':18}{value}")


@dead.command("requeue")
@config_options
@click.argument("letter_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Requeue every dead letter.")
@click.pass_context
def requeue(ctx: click.Context, letter_ids: tuple[str, ...], every: bool) -> None:
    """Move dead letters back to their origin queues with a fresh attempt count."""
    if every == bool(letter_ids):
        raise click.UsageError("give dead-letter ids or --all (not both)")
    with _queue(ctx) as queue:
        if every:
            moved = _run("requeue dead letters", queue.requeue_dead)
        else:
            done = _run("requeue dead letters", lambda: queue.requeue_dead_letters(letter_ids))
            moved = len(done)
    click.echo(f"requeued {moved} dead-lettered crash(es)")
    if not every:
        _fail_on_missing(letter_ids, done, "requeued")


@dead.command("purge")
@config_options
@click.argument("letter_ids", nargs=-1, required=True)
@click.pass_context
def purge(ctx: click.Context, letter_ids: tuple[str, ...]) -> None:
    """Delete dead letters for good (the stored raw crashes stay where they are)."""
    with _queue(ctx) as queue:
        done = _run("purge dead letters", lambda: queue.purge_dead(letter_ids))
    click.echo(f"purged {len(done)} dead letter(s)")
    _fail_on_missing(letter_ids, done, "purged")


def _fail_on_missing(wanted: tuple[str, ...], done: set[str], verb: str) -> None:
    missing = [letter_id for letter_id in dict.fromkeys(wanted) if letter_id not in done]
    if missing:
        raise click.ClickException(
            f"not {verb} (no such dead letter, or unreadable): {', '.join(missing)}"
        )


def _table(letters: list[DeadLetter]) -> str:
    headers = ["id", "crash", "queue", "attempts", "dead-lettered at", "reason"]
    rows = [
        [letter.letter_id, letter.body or "-", letter.queue or "-", str(letter.attempts),
         letter.dead_lettered_at or "-", _short(letter.reason)]
        for letter in letters
    ]
    cells = [headers, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells
    )


def _short(reason: str) -> str:
    flat = one_line(reason)
    return flat if len(flat) <= REASON_COLUMN_CHARS else flat[: REASON_COLUMN_CHARS - 3] + "..."
