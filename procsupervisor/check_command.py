"""`procsupervisor check`: validate the configuration and probe every backend once, like
`nginx -t` (docs/operations.md, "Health, check and status exit codes").

One line per backend, `<backend>: healthy | unreachable: <cause> | misconfigured: <cause>`,
then, only when it fails, one line for the trial start of a worker with this configuration
(the processor class and its options, the symbol cache directory: procsupervisor/worker_probe.py),
which `start` and a reload run too. Unlike the supervisor, this command may import the storage
clients: it is a separate process.
"""

from __future__ import annotations

import sys

import click

from procsupervisor.cli_context import config_options, load_config
from procsupervisor.health import HealthStatus

EXIT_HEALTHY = 0
EXIT_MISCONFIGURED = 1  # also: the configuration itself is invalid
EXIT_UNREACHABLE = 3

CHECK_HELP = f"""Validate the config and probe every backend once (queue, source, destinations,
symbol suppliers); print one line each.

\b
Exit status:
  {EXIT_HEALTHY}  every backend is healthy
  {EXIT_MISCONFIGURED}  the config is invalid, a backend refuses it (credentials, missing
     database, schema, bucket or vhost), or workers cannot start with it
  {EXIT_UNREACHABLE}  no backend is misconfigured, but one does not answer
"""


@click.command("check", help=CHECK_HELP)
@config_options
@click.pass_context
def check(ctx: click.Context) -> None:
    from procsupervisor.probes import probe_all
    from procsupervisor.worker_probe import check_worker_start

    config = load_config(ctx)  # an invalid file ends here: one line, exit 1
    click.echo(f"config {config.path or '(embedded defaults)'}: ok")
    try:
        results = probe_all(config)
    except ValueError as exc:  # a [symbols] value the loader accepted but the cache refuses
        raise click.ClickException(f"config: {exc}")
    for name, health in results:
        click.echo(health.line(name))
    workers_problem = check_worker_start(config)
    if workers_problem:
        click.echo(f"workers: cannot start: {workers_problem}")
    statuses = {health.status for _, health in results}
    if HealthStatus.MISCONFIGURED in statuses or workers_problem:
        sys.exit(EXIT_MISCONFIGURED)
    if HealthStatus.UNREACHABLE in statuses:
        sys.exit(EXIT_UNREACHABLE)
    sys.exit(EXIT_HEALTHY)
