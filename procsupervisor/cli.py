"""The `procsupervisor` command line (DESIGN.md section 10).

Every command, in every group, finds the data directory from `--data-dir`, the config file
(`--config` or $PROCSUPERVISOR_CONFIG, key [supervisor] data_dir), $PROCSUPERVISOR_HOME, else
`./procsupervisor-data` (cli_context.py). Commands that talk to a running supervisor use its
control socket.
Groups owned by other parts of the project (`stackwalk`, `cache`, `db`) are imported only when
used, so a broken or missing one never stops the others from working.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from procsupervisor import crashid
from procsupervisor.cli_context import config_options, control_socket_path, load_config
from procsupervisor.logs import configure as configure_logging
from procsupervisor.storage.base import MAIN_DUMP_NAME

LAZY_COMMANDS = {
    "stackwalk": "procsupervisor.stackwalk_command:stackwalk",
    "cache": "procsupervisor.cache.cli:cache",
    "symbols": "procsupervisor.cache.symbols_cli:symbols",
    "db": "procsupervisor.storage.db_cli:db",
}


class LazyGroup(click.Group):
    """Adds the commands of other packages on first use; an import failure affects only them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in LAZY_COMMANDS:
            return command
        module_name, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except Exception as exc:  # broken or not yet written: say so only when it is used
            return _unavailable(cmd_name, f"{type(exc).__name__}: {exc}")
        if not isinstance(found, click.Command):
            return _unavailable(cmd_name, "not a click command")
        return found


def _unavailable(name: str, error: str) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True},
                   help=f"(unavailable: {error})")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise click.ClickException(f"command {name!r} is unavailable: {error}")

    return command


def _control(ctx: click.Context, command: str, **args: Any) -> dict[str, Any]:
    from procsupervisor.supervisor.control import ControlError, request

    try:
        socket_path = load_config(ctx).supervisor.socket
    except click.ClickException as exc:
        # A config file broken since the supervisor started must not lock the operator out:
        # find the socket leniently, and let the supervisor judge the file on `reload`.
        socket_path = control_socket_path(ctx)
        click.echo(f"warning: {exc.message}", err=True)
    try:
        reply = request(socket_path, command, **args)
    except ControlError as exc:
        raise click.ClickException(str(exc))
    if not reply.get("ok"):
        raise click.ClickException(str(reply.get("error", "request failed")))
    return reply


@click.group(cls=LazyGroup)
@config_options
@click.version_option(package_name="procsupervisor")
def main() -> None:
    """procsupervisor: a supervised crash-report processor."""


_queue_option = click.option(
    "--queue", "-q", "queue_name", default="normal", show_default=True,
    help="Logical queue: priority, normal or reprocessing.",
)


@main.command()
@config_options
@click.option("--workers", "-w", type=click.IntRange(0, 1024), default=None,
              help="Worker count (overrides [supervisor] workers, also across reloads).")
@click.pass_context
def start(ctx: click.Context, workers: int | None) -> None:
    """Run the supervisor in the foreground until TERM/INT (graceful) or QUIT (fast)."""
    from procsupervisor.supervisor.arbiter import Supervisor, SupervisorError
    from procsupervisor.supervisor.control import AlreadyRunning, ControlError

    overrides = {"workers": str(workers)} if workers is not None else None
    config = load_config(ctx, overrides)
    configure_logging(config.log_level)
    try:
        code = Supervisor(config).run()
    except (SupervisorError, AlreadyRunning, ControlError, OSError, ValueError) as exc:
        raise click.ClickException(f"cannot start: {exc}")
    sys.exit(code)


@main.command()
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON status.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the running supervisor's workers, queues and throughput."""
    from procsupervisor.supervisor.status import render

    reply = _control(ctx, "status")
    if as_json:
        click.echo(json.dumps(reply["status"], indent=2, sort_keys=True))
    else:
        click.echo(render(reply["status"]))


@main.command()
@config_options
@click.pass_context
def reload(ctx: click.Context) -> None:
    """Re-read the config; an invalid file is reported and the old config keeps running."""
    reply = _control(ctx, "reload")
    click.echo(f"reloaded (generation {reply.get('generation')})")


@main.command()
@config_options
@click.option("--fast", is_flag=True, help="Kill workers now; in-flight crashes are redone later.")
@click.pass_context
def stop(ctx: click.Context, fast: bool) -> None:
    """Stop the supervisor (gracefully unless --fast)."""
    reply = _control(ctx, "stop", fast=fast)
    click.echo(f"stopping supervisor {reply.get('pid')}" + (" (fast)" if fast else ""))


@main.command()
@config_options
@click.argument("count", type=click.IntRange(0, 1024))
@click.pass_context
def scale(ctx: click.Context, count: int) -> None:
    """Set the number of workers."""
    reply = _control(ctx, "scale", workers=count)
    click.echo(f"target workers: {reply.get('target_workers')}")


@main.command()
@config_options
@click.argument("raw_json", type=click.Path(exists=True, dir_okay=False))
@click.argument("dumps", nargs=-1)
@_queue_option
@click.pass_context
def submit(ctx: click.Context, raw_json: str, dumps: tuple[str, ...], queue_name: str) -> None:
    """Store a raw crash and its dumps, queue it, print its crash id.

    DUMPS are files: one plain PATH is the main dump (upload_file_minidump); name every other
    dump as NAME=PATH.
    """
    from procsupervisor.intake import submit_crash

    config = load_config(ctx)
    try:
        raw_crash = json.loads(Path(raw_json).read_text(encoding="utf-8"))
        dump_files = _parse_dump_args(dumps)
        crash_id = submit_crash(config, raw_crash, dump_files, queue_name)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc))
    click.echo(crash_id)


def _parse_dump_args(args: tuple[str, ...]) -> dict[str, bytes]:
    dumps: dict[str, bytes] = {}
    for arg in args:
        name, sep, path = arg.partition("=")
        if not sep:
            name, path = MAIN_DUMP_NAME, arg
        if name in dumps:
            raise ValueError(f"dump {name!r} given twice (name extra dumps as NAME=PATH)")
        dumps[name] = Path(path).read_bytes()
    return dumps


@main.command()
@config_options
@click.argument("crash_ids", nargs=-1, required=True)
@_queue_option
@click.pass_context
def enqueue(ctx: click.Context, crash_ids: tuple[str, ...], queue_name: str) -> None:
    """Queue crash ids (`ID` or `ID:ruleset`) that are already stored."""
    from procsupervisor.intake import enqueue_ids

    try:
        count = enqueue_ids(load_config(ctx), crash_ids, queue_name)
    except (ValueError, OSError) as exc:  # OSError: the queue (e.g. the broker) is unreachable
        raise click.ClickException(str(exc))
    click.echo(f"queued {count} on {queue_name}")


@main.command()
@config_options
@click.argument("crash_id")
@click.option("--ruleset", default=None, help="Ruleset to run (default: default).")
@click.option("--no-save", is_flag=True, help="Print the processed crash without saving it.")
@click.pass_context
def process(ctx: click.Context, crash_id: str, ruleset: str | None, no_save: bool) -> None:
    """Process one crash inline (for debugging) and print the processed crash."""
    from procsupervisor.workers.worker import CrashHandler

    config = load_config(ctx)
    configure_logging(config.log_level)
    if not crashid.is_valid(crash_id):
        raise click.ClickException(f"invalid crash id: {crash_id!r}")
    handler = CrashHandler(config)
    try:
        if no_save:
            unused, handler.destinations = handler.destinations, []
            for destination in unused:  # their clients (database, index) were opened already
                destination.close()
        result = handler.handle(crash_id, ruleset=ruleset)
    finally:
        handler.close()
    if result.processed is not None:
        click.echo(json.dumps(result.processed, indent=2, sort_keys=True, default=str))
    click.echo(f"outcome: {result.outcome}" + (f" ({result.reason})" if result.reason else ""),
               err=True)
    sys.exit(0 if result.outcome == "ok" else 1)


@main.command("requeue-dead")
@config_options
@click.pass_context
def requeue_dead(ctx: click.Context) -> None:
    """Move every dead-lettered crash back to the queue it came from."""
    from procsupervisor.backends import make_queue
    from procsupervisor.metrics import NullMetrics

    try:
        queue = make_queue(load_config(ctx), NullMetrics())
        try:
            moved = queue.requeue_dead()
        finally:
            queue.close()
    except OSError as exc:  # the queue (e.g. the broker) is unreachable
        raise click.ClickException(f"cannot requeue dead letters: {exc}")
    click.echo(f"requeued {moved} dead-lettered crash(es)")


if __name__ == "__main__":
    main()
