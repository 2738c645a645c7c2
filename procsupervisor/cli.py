"""The `procsupervisor` command line (docs/architecture.md §10).

Every command, in every group, finds the data directory from `--data-dir`, the config file
(`--config` or $PROCSUPERVISOR_CONFIG, key [supervisor] data_dir), $PROCSUPERVISOR_HOME, else
`./procsupervisor-data` (cli_context.py). Commands that talk to a running supervisor use its
control socket.
Groups owned by other parts of the project (`stackwalk`, `cache`, `db`) are imported only when
used, so a broken or missing one never stops the others from working.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from procsupervisor import crashid
from procsupervisor.cli_context import (
    DATA_DIR_FLAG,
    config_options,
    control_socket_path,
    load_config,
    one_line,
)
from procsupervisor.cli_errors import describe
from procsupervisor.logs import LOG_FORMATS
from procsupervisor.logs import configure as configure_logging
from procsupervisor.storage.base import MAIN_DUMP_NAME, TransientStorageError

STATUS_DEGRADED = 3  # `status` exit code of a running supervisor with a backend down

LAZY_COMMANDS = {
    "check": "procsupervisor.check_command:check",
    "stackwalk": "procsupervisor.stackwalk_command:stackwalk",
    "cache": "procsupervisor.cache.cli:cache",
    "symbols": "procsupervisor.cache.symbols_cli:symbols",
    "db": "procsupervisor.storage.db_cli:db",
    "dead": "procsupervisor.dead_letters_cli:dead",
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
@click.option("--pidfile", type=click.Path(dir_okay=False), default=None,
              help="Write the supervisor's pid here (removed on exit).")
@click.option("--log-file", type=click.Path(dir_okay=False), default=None,
              help="Append logs (the workers' too) to this file instead of stderr.")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="kv", show_default=True,
              help="key=value lines, or one JSON object per line.")
@click.option("--user", default=None, help="Run as this user once the socket and logs are open.")
@click.option("--group", default=None, help="Run as this group (default: the user's).")
@click.pass_context
def start(ctx: click.Context, workers: int | None, pidfile: str | None, log_file: str | None,
          log_format: str, user: str | None, group: str | None) -> None:
    """Run the supervisor in the foreground until TERM/INT (graceful) or QUIT (fast).

    A misconfigured backend (credentials, missing database, schema, bucket or vhost) refuses
    the start with one line and exit status 1; an unreachable one starts the supervisor
    degraded, with pulling stopped until a probe finds it back.
    """
    from procsupervisor.service import Service, ServiceError, ServiceOptions
    from procsupervisor.supervisor.arbiter import Supervisor, SupervisorError
    from procsupervisor.supervisor.control import AlreadyRunning, ControlError
    from procsupervisor.worker_probe import check_worker_start

    overrides = {"workers": str(workers)} if workers is not None else None
    config = load_config(ctx, overrides)
    service = Service(ServiceOptions(
        pidfile=Path(pidfile).absolute() if pidfile else None,
        log_file=Path(log_file).absolute() if log_file else None,
        user=user, group=group,
    ))
    try:
        try:
            service.open_log()
            configure_logging(config.log_level, log_format)
            service.write_pidfile()
            service.lock_and_bind(config.data_dir, config.supervisor.socket,
                                  config.supervisor.data_access)
            service.drop_privileges(config.data_dir)
            # A value only a worker can judge (the processor, the symbol cache directory) is
            # tried now, as the user the workers run as: a pool of workers dying at start for
            # ever would look like a running service. The backends are probed next, by `run`.
            problem = check_worker_start(config)
            if problem:
                raise click.ClickException(f"cannot start: workers cannot start: {problem}")
            code = Supervisor(config, service).run()
        finally:
            service.close()
    except (SupervisorError, ServiceError, AlreadyRunning, ControlError, OSError,
            ValueError) as exc:
        raise click.ClickException(f"cannot start: {one_line(str(exc))}")
    sys.exit(code)


@main.command()
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON status.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the running supervisor's workers, queues, throughput and backend health.

    \b
    Exit status:
      0  running, every backend healthy
      1  no supervisor answers (or the request failed)
      3  running but degraded: a backend is unreachable or misconfigured, or a breaker is open
    """
    from procsupervisor.supervisor.status import render

    reply = _control(ctx, "status")
    if as_json:
        click.echo(json.dumps(reply["status"], indent=2, sort_keys=True))
    else:
        click.echo(render(reply["status"]))
    health = reply["status"].get("health") or {}
    sys.exit(STATUS_DEGRADED if health.get("state") == "degraded" else 0)


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
@click.option("--wait", is_flag=True, help="Return only once the supervisor has exited.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0, min_open=True), default=None,
              help="With --wait: give up after this many seconds (exit 1).")
@click.pass_context
def stop(ctx: click.Context, fast: bool, wait: bool, timeout_s: float | None) -> None:
    """Stop the supervisor (gracefully unless --fast)."""
    from procsupervisor.service import wait_for_exit

    reply = _control(ctx, "stop", fast=fast)
    pid = int(reply.get("pid") or 0)
    click.echo(f"stopping supervisor {pid}" + (" (fast)" if fast else ""))
    if not wait:
        return
    if not wait_for_exit(pid, timeout_s):
        raise click.ClickException(f"supervisor {pid} is still running after {timeout_s:g}s")
    click.echo(f"supervisor {pid} stopped")


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
    from procsupervisor import bounded_json
    from procsupervisor.intake import NotQueued, StoreFailed, submit_crash

    config = load_config(ctx)
    try:
        raw_text = Path(raw_json).read_bytes()
        raw_crash = bounded_json.loads(raw_text, f"raw crash {raw_json}")
        dump_files = _parse_dump_args(dumps)
    except (ValueError, OSError) as exc:
        raise click.ClickException(describe(exc))
    size = len(raw_text) + sum(map(len, dump_files.values()))
    try:
        crash_id = submit_crash(config, raw_crash, dump_files, queue_name, payload_size=size)
    except NotQueued as exc:
        click.echo(exc.crash_id)  # stored: the id is what finishes the job
        finish = _enqueue_command(ctx, config.path, exc.crash_id, exc.queue_name)
        raise click.ClickException(f"{one_line(str(exc))}; queue it with: {finish}")
    except StoreFailed as exc:
        raise click.ClickException(one_line(str(exc)))
    except (ValueError, OSError, TransientStorageError) as exc:
        raise click.ClickException(f"cannot submit: {describe(exc)}")
    click.echo(crash_id)


def _enqueue_command(ctx: click.Context, config_path: Path | None, crash_id: str,
                     queue_name: str) -> str:
    """The command line that queues a stored crash, with the same config and data dir."""
    import shlex

    args = ["procsupervisor"]
    if config_path is not None:
        args += ["--config", str(config_path)]
    if ctx.meta.get(DATA_DIR_FLAG):
        args += ["--data-dir", str(Path(ctx.meta[DATA_DIR_FLAG]).absolute())]
    args += ["enqueue", crash_id, "--queue", queue_name]
    return shlex.join(args)


def _parse_dump_args(args: tuple[str, ...]) -> dict[str, bytes]:
    dumps: dict[str, bytes] = {}
    for arg in args:
        name, sep, path = arg.partition("=")
        if not sep:
            name, path = MAIN_DUMP_NAME, arg
        if name in dumps:
            raise ValueError(f"dump {name!r} given twice (name extra dumps as NAME=PATH)")
        try:
            dumps[name] = Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read dump {path}: {exc.strerror or exc}") from None
    return dumps


@main.command()
@config_options
@click.argument("crash_ids", nargs=-1, required=True)
@_queue_option
@click.pass_context
def enqueue(ctx: click.Context, crash_ids: tuple[str, ...], queue_name: str) -> None:
    """Queue crash ids (`ID` or `ID:ruleset`) that are already stored; `-` reads them from
    stdin (whitespace separated, `#` starts a comment)."""
    from procsupervisor.intake import enqueue_ids

    config = load_config(ctx)
    if "-" in crash_ids:
        crash_ids = _with_stdin_ids(crash_ids)
    try:
        count = enqueue_ids(config, crash_ids, queue_name)
    except ValueError as exc:
        raise click.ClickException(describe(exc))
    except OSError as exc:  # the queue (the spool, the broker) is unusable
        raise click.ClickException(f"cannot queue: {describe(exc)}")
    click.echo(f"queued {count} on {queue_name}")


def _with_stdin_ids(args: tuple[str, ...]) -> tuple[str, ...]:
    from_stdin = [
        word
        for line in sys.stdin
        for word in line.split("#", 1)[0].split()
    ]
    ids: list[str] = []
    for arg in args:
        ids.extend(from_stdin if arg == "-" else [arg])
    return tuple(ids)


@main.command()
@config_options
@click.argument("crash_id")
@click.option("--ruleset", default=None, help="Ruleset to run (default: default).")
@click.option("--no-save", is_flag=True, help="Print the processed crash without saving it.")
@click.pass_context
def process(ctx: click.Context, crash_id: str, ruleset: str | None, no_save: bool) -> None:
    """Process one crash inline (for debugging) and print the processed crash."""
    from procsupervisor.workers.crash_handler import CrashHandler

    config = load_config(ctx)
    configure_logging(config.log_level)
    if not crashid.is_valid(crash_id):
        raise click.ClickException(f"invalid crash id: {crash_id!r}")
    try:
        # What a worker opens at start: the symbol cache directory, the processor, clients.
        handler = CrashHandler(config)
    except Exception as exc:
        raise click.ClickException(f"cannot process {crash_id}: {describe(exc)}")
    try:
        if no_save:
            unused, handler.destinations = handler.destinations, []
            for destination in unused:  # their clients (database, index) were opened already
                destination.close()
        result = handler.handle(crash_id, ruleset=ruleset)
    except Exception as exc:  # handle() reports outcomes; anything else is a bug, said once
        raise click.ClickException(f"cannot process {crash_id}: {describe(exc)}")
    finally:
        handler.close()
    if result.processed is not None:
        click.echo(json.dumps(result.processed, indent=2, sort_keys=True, default=str))
    click.echo(f"outcome: {result.outcome}" + (f" ({result.reason})" if result.reason else ""),
               err=True)
    sys.exit(0 if result.outcome == "ok" else 1)


@main.command()
@config_options
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day to check (UTC, YYYY-MM-DD; default: the day before --until).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day to check (UTC, YYYY-MM-DD; default: today).")
@click.option("--requeue", is_flag=True, help="Queue every missing crash.")
@_queue_option
@click.pass_context
def verify(ctx: click.Context, since: dt.datetime | None, until: dt.datetime | None,
           requeue: bool, queue_name: str) -> None:
    """List stored raw crashes that have no processed crash and are in no queue.

    Prints each missing crash id, then `checked N, missing M, queued Q`; exits 1 when
    something is missing (for a timer)."""
    from procsupervisor.verify import verify as verify_crashes

    last = until.date() if until else dt.datetime.now(dt.UTC).date()
    first = since.date() if since else last - dt.timedelta(days=1)
    config = load_config(ctx)
    try:
        report = verify_crashes(config, first, last, requeue=requeue, queue_name=queue_name,
                                on_missing=click.echo)
    except ValueError as exc:
        raise click.ClickException(describe(exc))
    except (OSError, TransientStorageError) as exc:
        raise click.ClickException(f"cannot verify: {describe(exc)}")
    click.echo(report.summary())
    sys.exit(1 if report.missing else 0)


@main.command("requeue-dead")
@config_options
@click.pass_context
def requeue_dead(ctx: click.Context) -> None:
    """Move every dead-lettered crash back to the queue it came from (`dead requeue --all`)."""
    from procsupervisor.dead_letters_cli import requeue

    ctx.invoke(requeue, letter_ids=(), every=True)


if __name__ == "__main__":
    main()
