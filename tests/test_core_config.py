"""Configuration: defaults, file + environment precedence, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from procsupervisor import config
from procsupervisor.config import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "procsupervisor.ini"
    path.write_text(text)
    return path


def test_embedded_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    cfg = config.load(None, environ={"PROCSUPERVISOR_HOME": str(tmp_path / "home")})
    assert cfg.data_dir == tmp_path / "home"
    assert cfg.supervisor.workers == 2
    assert cfg.supervisor.deadline_s == 300
    assert cfg.supervisor.graceful_timeout_s == 30
    assert cfg.supervisor.max_attempts == 3
    assert cfg.supervisor.socket == tmp_path / "home" / "control.sock"
    assert cfg.queue_backend == "fs" and cfg.source_backend == "fs"
    assert cfg.destination_order == ("fs",)
    assert cfg.queue_weights == {"priority": 10, "normal": 5, "reprocessing": 1}
    assert cfg.log_level == "INFO"


def test_the_config_file_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "[supervisor]\nworkers = 4\n")
    cfg = config.load(None, environ={"PROCSUPERVISOR_CONFIG": str(path)})
    assert cfg.path == path and cfg.supervisor.workers == 4
    # Only the environment given is read, so a caller (or a test) can isolate itself.
    monkeypatch.setenv("PROCSUPERVISOR_CONFIG", str(path))
    assert config.load(None, data_dir=tmp_path, environ={}).path is None


def test_file_then_environment_then_cli_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[supervisor]\nworkers = 3\ndeadline_s = 9\ndata_dir = data\n"
        "[queue]\nweights = priority:4, normal:2\n[logging]\nlevel = debug\n",
    )
    env = {"PROCSUPERVISOR_SUPERVISOR_DEADLINE_S": "7", "PROCSUPERVISOR_QUEUE_SPOOL": "/x"}
    cfg = config.load(path, environ=env)
    assert cfg.supervisor.workers == 3
    assert cfg.supervisor.deadline_s == 7
    assert cfg.data_dir == tmp_path / "data"  # relative to the config file
    assert cfg.queue["spool"] == "/x"
    assert cfg.queue_weights == {"priority": 4, "normal": 2, "reprocessing": 1}
    assert cfg.log_level == "DEBUG"
    cfg = config.load(path, environ=env, overrides={"workers": "5"}, data_dir=tmp_path / "flag")
    assert cfg.supervisor.workers == 5 and cfg.overrides == {"workers": "5"}
    assert cfg.data_dir == tmp_path / "flag"


def test_destination_options_are_split_by_prefix(tmp_path: Path) -> None:
    path = write(
        tmp_path, "[destinations]\norder = fs, postgres\nfs_root = /r\npostgres_dsn = host=x\n"
    )
    cfg = config.load(path, environ={})
    assert cfg.destination_order == ("fs", "postgres")
    assert cfg.destination_options("fs") == {"root": "/r"}
    assert cfg.destination_options("postgres") == {"dsn": "host=x"}


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("[supervisor]\nworkers = many\n", {}, "section [supervisor], key 'workers'"),
        ("[supervisor]\nworkerz = 1\n", {}, "key 'workerz': unknown key"),
        ("[supervisor]\nmax_attempts = 0\n", {}, "must be >= 1"),
        ("[supervisor]\ndeadline_s = nan\n", {}, "key 'deadline_s': must be >= 0.01"),
        ("[queue]\nweights = priority\n", {}, "section [queue], key 'weights'"),
        ("[queue]\nbackend = kafka\n", {}, "unknown backend 'kafka'"),
        ("[destinations]\norder = fs, nowhere\n", {}, "unknown destination 'nowhere'"),
        ("[logging]\nlevel = loud\n", {}, "section [logging], key 'level'"),
        ("[nonsense]\na = 1\n", {}, "unknown section [nonsense]"),
        ("[supervisor\n", {}, "cannot parse"),
        (
            "",
            {"PROCSUPERVISOR_SUPERVISOR_DEADLINE_S": "soon"},
            "environment variable PROCSUPERVISOR_SUPERVISOR_DEADLINE_S",
        ),
    ],
)
def test_errors_name_the_file_section_and_key(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path, environ=env)
    assert expected in str(info.value)
    if not env:
        assert str(path) in str(info.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "absent.ini", environ={})


def test_symbols_section_is_validated_up_front(tmp_path: Path) -> None:
    path = write(tmp_path, "[symbols]\ncache_size_mb = huge\n")
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    assert str(path) in str(info.value) and "cache_size_mb" in str(info.value)
