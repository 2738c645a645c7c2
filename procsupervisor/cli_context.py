"""How every command finds its configuration (docs/architecture.md §10).

`--config` / `--data-dir` are accepted on the main group, on a command group (`cache`, `db`)
and after a command's name; the one given closest to the command wins. Without `--config`,
$PROCSUPERVISOR_CONFIG names the file, else the embedded defaults apply; the data directory
then comes from the file, $PROCSUPERVISOR_HOME or `./procsupervisor-data` (config.py).
A bad configuration ends the command with one line naming the file, section and key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from procsupervisor import config as config_module
from procsupervisor import data_access
from procsupervisor.config import Config, ConfigError

F = TypeVar("F", bound=Callable[..., Any])

# Keys in click's `ctx.meta`, which every context of one command line shares: an option given
# on an inner command is seen after (and so replaces) the same option given on the main group.
CONFIG_FLAG = "procsupervisor.config_flag"
DATA_DIR_FLAG = "procsupervisor.data_dir_flag"

CONFIG_HELP = "INI config file (default: $PROCSUPERVISOR_CONFIG, else embedded defaults)."
DATA_DIR_HELP = "Data directory (default: config, $PROCSUPERVISOR_HOME, ./procsupervisor-data)."


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.meta[key] = str(value)
        return value

    return callback


def config_options(func: F | None = None, *, config_help: str = CONFIG_HELP) -> Any:
    """Decorator: add `--config/-c` and `--data-dir/-d` to a command or group."""

    def decorate(command: F) -> F:
        command = click.option(
            "--data-dir", "-d", type=click.Path(file_okay=False), default=None,
            expose_value=False, callback=_remember(DATA_DIR_FLAG), help=DATA_DIR_HELP,
        )(command)
        return click.option(
            "--config", "-c", type=click.Path(dir_okay=False), default=None,
            expose_value=False, callback=_remember(CONFIG_FLAG), help=config_help,
        )(command)

    return decorate(func) if func is not None else decorate


def config_path(ctx: click.Context, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file the command line names (flag, else $PROCSUPERVISOR_CONFIG), or None."""
    environ = os.environ if environ is None else environ
    return config_module.find_config_path(ctx.meta.get(CONFIG_FLAG), environ)


def load_config(ctx: click.Context, overrides: Mapping[str, str] | None = None) -> Config:
    """The validated configuration for this command line; a bad one ends the command. From
    here on, whatever the command creates is as private as `[supervisor] data_access` says."""
    try:
        config = config_module.load(
            ctx.meta.get(CONFIG_FLAG), data_dir=ctx.meta.get(DATA_DIR_FLAG), overrides=overrides
        )
    except ConfigError as exc:
        raise click.ClickException(one_line(str(exc)))
    data_access.apply(config.supervisor.data_access)
    return config


def control_socket_path(ctx: click.Context) -> Path:
    """The control socket, found even when the config file no longer loads (config.py)."""
    return config_module.control_socket_path(
        ctx.meta.get(CONFIG_FLAG), data_dir=ctx.meta.get(DATA_DIR_FLAG)
    )


def one_line(message: str) -> str:
    """The message on one line (a parser error may span several)."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())
