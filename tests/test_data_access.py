"""Issue 13 item 7: the data directory and everything in it are owner-only by default (raw
crashes carry URLs, e-mail addresses and memory); `[supervisor] data_access = group` opens
them to the group for reading, never to others."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from _core_helpers import (
    PYTHON,
    ROOT,
    SupervisorProcess,
    acked_total,
    make_raw_crash,
    subprocess_env,
    write_config,
)

pytestmark = pytest.mark.slow


def modes_under(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


@pytest.mark.parametrize("access, dir_mode, file_mode",
                         [("", 0o700, 0o600), ("group", 0o750, 0o640)])
def test_everything_in_the_data_dir_is_private(
    tmp_path: Path, access: str, dir_mode: int, file_mode: int
) -> None:
    data_dir = tmp_path / "data"
    setting = f"data_access = {access}\n" if access else ""
    config_path = write_config(tmp_path / "sup.ini", data_dir, workers=1,
                               extra=f"[symbols]\npaths = {tmp_path}\n")
    config_path.write_text(config_path.read_text().replace("[supervisor]\n",
                                                           "[supervisor]\n" + setting))
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(make_raw_crash(Email="someone@example.com")))
    submitted = subprocess.run(
        [PYTHON, "-m", "procsupervisor", "--config", str(config_path), "submit", str(raw)],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60,
        preexec_fn=lambda: os.umask(0o022))  # a permissive caller: the setting decides
    assert submitted.returncode == 0, submitted.stderr
    old_umask = os.umask(0o022)  # inherited by the supervisor: again the setting decides
    try:
        supervisor = SupervisorProcess(config_path, data_dir).start()
    finally:
        os.umask(old_umask)
    try:
        supervisor.wait_for(lambda s: acked_total(s) == 1, what="processed")
        modes = modes_under(data_dir)
    finally:
        supervisor.stop()
    assert any("processed_crash" in name for name in modes)
    assert any("raw_crash" in name for name in modes)
    wrong = {
        name: oct(mode) for name, mode in modes.items()
        if mode & ~(dir_mode if (data_dir / name).is_dir() else file_mode)
        and not (data_dir / name).is_symlink()
    }
    assert not wrong, wrong
    assert modes["."] == dir_mode


def test_an_existing_wide_data_dir_is_narrowed_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.chmod(data_dir, 0o755)
    supervisor = SupervisorProcess(write_config(tmp_path / "sup.ini", data_dir, workers=0),
                                   data_dir).start()
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert "data directory was readable by others; narrowed" in supervisor.log()
    finally:
        supervisor.stop()
