"""Configuration: one INI file, every key overridable by `PROCSUPERVISOR_<SECTION>_<KEY>`.

No file at all means the embedded defaults, with everything under the data directory
(docs/architecture.md §10). Validation errors name the file (or environment variable), the section
and the key, so an operator can fix a bad reload without reading code.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from procsupervisor import config_keys
from procsupervisor.logical_queues import DEFAULT_WEIGHTS
from procsupervisor.logs import LEVELS
from procsupervisor.registry import (
    DESTINATION_BACKENDS,
    QUEUE_BACKENDS,
    SOURCE_BACKENDS,
    load_class,
)

SECTIONS = (
    "supervisor", "queue", "source", "destinations", "processor", "symbols", "statsd", "logging"
)
ENV_PREFIX = "PROCSUPERVISOR_"
HOME_ENV = "PROCSUPERVISOR_HOME"
CONFIG_ENV = "PROCSUPERVISOR_CONFIG"
DEFAULT_DATA_DIR = "procsupervisor-data"
DEFAULT_PROCESSOR = "procsupervisor.workers.processor:Processor"
# The symbol cache checks its own [symbols] section. It is named, not imported, like the
# backends: the configuration depends on none of the parts it configures.
SYMBOL_SETTINGS = "procsupervisor.cache.settings:SymbolCacheSettings"

# [supervisor] keys and their defaults (as the text an operator would write).
SUPERVISOR_DEFAULTS: dict[str, str] = {
    "data_dir": "",
    "workers": "2",
    "deadline_s": "300",
    "graceful_timeout_s": "30",
    "max_attempts": "3",
    "retry_delay_s": "2",
    "probe_max_interval_s": "10",
    "socket": "",
    "worker_max_rss_mb": "",
    "processor": DEFAULT_PROCESSOR,
    "data_access": "owner",  # who may read the data directory (procsupervisor/data_access.py)
    "metrics_listen": "",
}
DATA_ACCESS_CHOICES = ("owner", "group")


class ConfigError(ValueError):
    """A configuration problem, worded for the operator (where, which key, what is wrong)."""


@dataclass(frozen=True)
class SupervisorSettings:
    workers: int
    deadline_s: float
    graceful_timeout_s: float
    max_attempts: int
    retry_delay_s: float
    socket: Path
    worker_max_rss_mb: int | None
    processor: str  # "module:factory" building the crash processor inside each worker
    data_access: str = "owner"  # `owner` (0700/0600) or `group` (0750/0640)
    metrics_listen: str = ""  # loopback host:port of the Prometheus endpoint; "" for none
    # Longest pause between probes of a backend that is down (docs/architecture.md §5).
    probe_max_interval_s: float = 10.0


@dataclass(frozen=True)
class Config:
    path: Path | None
    data_dir: Path
    supervisor: SupervisorSettings
    queue: dict[str, str]  # the whole [queue] section, passed to the backend
    queue_backend: str
    queue_weights: dict[str, int]
    source: dict[str, str]
    source_backend: str
    destinations: dict[str, str]
    destination_order: tuple[str, ...]
    processor: dict[str, str]  # options for the processor factory (e.g. stackwalk_timeout_s)
    symbols: dict[str, str]
    statsd: dict[str, str]
    log_level: str
    overrides: dict[str, str] = field(default_factory=dict)  # CLI flags that outlive reloads

    def destination_options(self, backend: str) -> dict[str, str]:
        """The [destinations] keys meant for one backend, with the `<backend>_` prefix removed."""
        prefix = f"{backend}_"
        return {k[len(prefix) :]: v for k, v in self.destinations.items() if k.startswith(prefix)}


class _Where:
    """Tells where a value came from, for error messages."""

    def __init__(self, path: Path | None, env_keys: Mapping[tuple[str, str], str]) -> None:
        self.path = path
        self.env_keys = env_keys

    def __call__(self, section: str, key: str) -> str:
        env = self.env_keys.get((section, key))
        if env:
            return f"environment variable {env} (section [{section}], key {key!r})"
        origin = str(self.path) if self.path else "embedded defaults"
        return f"{origin}: section [{section}], key {key!r}"


def find_config_path(
    explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> Path | None:
    if explicit:
        return Path(explicit)
    env = environ.get(CONFIG_ENV)
    return Path(env) if env else None


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge (file < environment < CLI overrides) and validate the configuration.

    `overrides` holds [supervisor] keys given on the command line (e.g. `workers`); they are kept
    in the result so a reload applies them again.
    """
    environ = os.environ if environ is None else environ
    config_path = find_config_path(path, environ)
    sections: dict[str, dict[str, str]] = {name: {} for name in SECTIONS}
    if config_path is not None:
        _read_file(config_path, sections)
    env_keys = _apply_environment(environ, sections)
    cli_overrides = dict(overrides or {})
    sections["supervisor"].update(cli_overrides)
    where = _Where(config_path, env_keys)
    return _build(config_path, sections, where, data_dir, environ, cli_overrides)


def control_socket_path(
    path: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Where the running supervisor's control socket is, read leniently: `status` and `stop`
    must still reach a supervisor whose config file has since been broken by an edit."""
    environ = os.environ if environ is None else environ
    config_path = find_config_path(path, environ)
    supervisor: dict[str, str] = {}
    if config_path is not None:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(config_path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            pass  # keep the defaults; the full load reports what is wrong
        if parser.has_section("supervisor"):
            supervisor = {key.lower(): value.strip() for key, value in parser["supervisor"].items()}
    for key in ("data_dir", "socket"):
        env_name = f"{ENV_PREFIX}SUPERVISOR_{key.upper()}"
        if env_name in environ:
            supervisor[key] = environ[env_name].strip()
    return _locations(config_path, {**SUPERVISOR_DEFAULTS, **supervisor}, data_dir, environ)[1]


def _locations(
    path: Path | None,
    supervisor: Mapping[str, str],
    data_dir_flag: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
) -> tuple[Path, Path]:
    """The data directory and the control socket (relative paths are from the file's folder)."""
    base = path.parent if path is not None else Path.cwd()
    if data_dir_flag:
        data_dir = Path(data_dir_flag)
    elif supervisor["data_dir"]:
        data_dir = base / supervisor["data_dir"]
    elif environ.get(HOME_ENV):
        data_dir = Path(environ[HOME_ENV])
    else:
        data_dir = Path.cwd() / DEFAULT_DATA_DIR
    data_dir = data_dir.absolute()
    socket_path = Path(supervisor["socket"]) if supervisor["socket"] else data_dir / "control.sock"
    if not socket_path.is_absolute():
        socket_path = (base / socket_path).absolute()
    return data_dir, socket_path


def _read_file(path: Path, sections: dict[str, dict[str, str]]) -> None:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found")
    except (configparser.Error, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}".replace("\n", " "))
    for name in parser.sections():
        if name not in sections:
            raise ConfigError(f"{path}: unknown section [{name}] (known: {', '.join(SECTIONS)})")
        sections[name].update({key.lower(): value.strip() for key, value in parser[name].items()})


def _apply_environment(
    environ: Mapping[str, str], sections: dict[str, dict[str, str]]
) -> dict[tuple[str, str], str]:
    applied: dict[tuple[str, str], str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section in sections and key:
            sections[section][key] = value.strip()
            applied[(section, key)] = name
    return applied


def _build(
    path: Path | None,
    sections: dict[str, dict[str, str]],
    where: _Where,
    data_dir_flag: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    overrides: dict[str, str],
) -> Config:
    supervisor = {**SUPERVISOR_DEFAULTS, **sections["supervisor"]}
    unknown = sorted(set(supervisor) - set(SUPERVISOR_DEFAULTS))
    if unknown:
        raise ConfigError(f"{where('supervisor', unknown[0])}: unknown key")

    data_dir, socket_path = _locations(path, supervisor, data_dir_flag, environ)

    def number(key: str, kind: type, minimum: float) -> float:
        text = supervisor[key]
        try:
            value = kind(text)
        except ValueError:
            wanted = "a whole number" if kind is int else "a number"
            raise ConfigError(f"{where('supervisor', key)}: {text!r} is not {wanted}")
        # `not value >= minimum` also refuses NaN, which every comparison would let through
        # (a NaN deadline or graceful timeout would never expire).
        if not value >= minimum:
            raise ConfigError(f"{where('supervisor', key)}: must be >= {minimum}, got {text!r}")
        return value

    max_rss = supervisor["worker_max_rss_mb"]
    processor = supervisor["processor"]
    if ":" not in processor:
        raise ConfigError(f"{where('supervisor', 'processor')}: expected 'module:factory'")
    data_access = supervisor["data_access"].lower()
    if data_access not in DATA_ACCESS_CHOICES:
        raise ConfigError(f"{where('supervisor', 'data_access')}: {supervisor['data_access']!r}"
                          f" is not one of {', '.join(DATA_ACCESS_CHOICES)}")
    settings = SupervisorSettings(
        workers=int(number("workers", int, 0)),
        deadline_s=number("deadline_s", float, 0.01),
        graceful_timeout_s=number("graceful_timeout_s", float, 0),
        max_attempts=int(number("max_attempts", int, 1)),
        retry_delay_s=number("retry_delay_s", float, 0),
        socket=socket_path,
        worker_max_rss_mb=int(number("worker_max_rss_mb", int, 1)) if max_rss else None,
        processor=processor,
        data_access=data_access,
        metrics_listen=supervisor["metrics_listen"].strip(),
        probe_max_interval_s=number("probe_max_interval_s", float, 0.1),
    )

    queue = dict(sections["queue"])
    queue_backend = queue.get("backend", "fs") or "fs"
    weights = _parse_weights(queue.get("weights", ""), where)

    source = dict(sections["source"])
    source_backend = source.get("backend", "fs") or "fs"

    destinations = dict(sections["destinations"])
    order = tuple(
        name.strip() for name in destinations.get("order", "fs").split(",") if name.strip()
    )
    if not order:
        # Crashes would be processed, acked and saved nowhere.
        raise ConfigError(
            f"{where('destinations', 'order')}: no destination; name at least one"
            f" (known: {', '.join(DESTINATION_BACKENDS)})"
        )
    if len(set(order)) != len(order):
        raise ConfigError(f"{where('destinations', 'order')}: a destination is listed twice")

    log_level = (sections["logging"].get("level") or "INFO").upper()
    if log_level not in LEVELS:
        raise ConfigError(f"{where('logging', 'level')}: must be one of {', '.join(LEVELS)}")

    _check_backend_names(queue_backend, source_backend, order, where)
    for section, key, problem in config_keys.problems(sections):
        raise ConfigError(f"{where(section, key)}: {problem}")
    _check_symbols(sections["symbols"], data_dir, path)
    return Config(
        path=path.absolute() if path is not None else None,
        data_dir=data_dir,
        supervisor=settings,
        queue=queue,
        queue_backend=queue_backend,
        queue_weights=weights,
        source=source,
        source_backend=source_backend,
        destinations=destinations,
        destination_order=order,
        processor=dict(sections["processor"]),
        symbols=dict(sections["symbols"]),
        statsd=dict(sections["statsd"]),
        log_level=log_level,
        overrides=overrides,
    )


def _parse_weights(text: str, where: _Where) -> dict[str, int]:
    weights = dict(DEFAULT_WEIGHTS)
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition(":")
        try:
            weight = int(value)
        except ValueError:
            weight = -1
        if not sep or not name.strip() or weight < 1:
            raise ConfigError(
                f"{where('queue', 'weights')}: expected 'name:weight' pairs with weights >= 1,"
                f" got {item!r}"
            )
        weights[name.strip()] = weight
    return weights


def _check_backend_names(
    queue_backend: str, source_backend: str, order: tuple[str, ...], where: _Where
) -> None:
    if queue_backend not in QUEUE_BACKENDS:
        raise ConfigError(
            f"{where('queue', 'backend')}: unknown backend {queue_backend!r}"
            f" (known: {', '.join(QUEUE_BACKENDS)})"
        )
    if source_backend not in SOURCE_BACKENDS:
        raise ConfigError(
            f"{where('source', 'backend')}: unknown backend {source_backend!r}"
            f" (known: {', '.join(SOURCE_BACKENDS)})"
        )
    for name in order:
        if name not in DESTINATION_BACKENDS:
            raise ConfigError(
                f"{where('destinations', 'order')}: unknown destination {name!r}"
                f" (known: {', '.join(DESTINATION_BACKENDS)})"
            )


def _check_symbols(section: Mapping[str, str], data_dir: Path, path: Path | None) -> None:
    """Validate [symbols] now, so a bad value fails `start` or a reload, not every worker."""
    try:
        settings_class = load_class(SYMBOL_SETTINGS)
    except ImportError:
        return  # no symbol cache installed: workers run without symbols
    try:
        settings_class.from_section(section, data_dir)
    except ValueError as exc:
        raise ConfigError(f"{path or 'embedded defaults'}: {exc}")
