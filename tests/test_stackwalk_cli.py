"""The `stackwalk` command on a synthetic crash whose module has a generated .sym file."""

from __future__ import annotations

import json
import mmap
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from procsupervisor.stackwalk_command import stackwalk
from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.minidump.builder import write_demo_crash


@pytest.fixture
def crash(tmp_path: Path) -> tuple[Path, Path]:
    """A Linux amd64 crash in `crash_here`, called from `main`, with its symbols."""
    return write_demo_crash(tmp_path / "demo")


def test_machine_readable_with_symbols(crash: tuple[Path, Path]) -> None:
    dump, root = crash
    result = CliRunner().invoke(stackwalk, [str(dump), "--symbols-path", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[3] == "Crash|SIGSEGV /SEGV_MAPERR|0x0|0"
    assert "0|0|demo|crash_here|demo.c|3|0x8" in lines
    assert "0|1|demo|main|demo.c|7|0x85" in lines


def test_json_output(crash: tuple[Path, Path]) -> None:
    dump, root = crash
    result = CliRunner().invoke(
        stackwalk, [str(dump), "--symbols-path", str(root), "--json", "--pretty"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "OK"
    assert data["crashing_thread"]["frames"][0]["function"] == "crash_here"
    assert data["modules"][0]["loaded_symbols"] is True


def test_shared_cache_gives_the_same_output(crash: tuple[Path, Path], tmp_path: Path) -> None:
    dump, root = crash
    plain = CliRunner().invoke(stackwalk, [str(dump), "--symbols-path", str(root)])
    args = [str(dump), "--symbols-path", str(root), "--cache-dir", str(tmp_path / "cache")]
    cold = CliRunner().invoke(stackwalk, args)
    warm = CliRunner().invoke(stackwalk, args)
    assert cold.exit_code == warm.exit_code == 0, cold.output
    assert plain.output == cold.output == warm.output


def test_rejected_dump_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dmp"
    bad.write_bytes(b"MDMP" + bytes(40))
    result = CliRunner().invoke(stackwalk, [str(bad)])
    assert result.exit_code == 1
    assert "ERROR_" in result.output


def test_a_missing_symbols_path_is_a_usage_error(crash: tuple[Path, Path], tmp_path: Path) -> None:
    dump, _ = crash
    result = CliRunner().invoke(stackwalk, [str(dump), "--symbols-path", str(tmp_path / "typo")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_exclusive_output_flags(crash: tuple[Path, Path]) -> None:
    dump, _ = crash
    result = CliRunner().invoke(stackwalk, [str(dump), "--json", "--machine-readable"])
    assert result.exit_code == 2


def test_a_cache_dir_needs_a_symbols_path(crash: tuple[Path, Path], tmp_path: Path) -> None:
    dump, _ = crash
    result = CliRunner().invoke(stackwalk, [str(dump), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2
    assert "--symbols-path" in result.output


def test_api_accepts_an_mmap(crash: tuple[Path, Path]) -> None:
    dump, _ = crash
    with dump.open("rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        result = walk_minidump(mapped, None)
        text = result.to_machine_readable()
    assert result.ok
    assert "0|0|demo||||0x1108" in text
    del result  # its views pin the map
    mapped.close()


def test_an_unusable_cache_directory_is_one_line_not_a_traceback(
    crash: tuple[Path, Path], tmp_path: Path
) -> None:
    dump, root = crash
    shared = tmp_path / "shared-cache"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # group/world-writable: the cache refuses it
    result = CliRunner().invoke(
        stackwalk, [str(dump), "--symbols-path", str(root), "--cache-dir", str(shared)]
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.count("\n") == 1 and "world-writable" in result.output


def test_several_dumps_one_output_each(crash: tuple[Path, Path], tmp_path: Path) -> None:
    dump, root = crash
    other = tmp_path / "copy.dmp"
    other.write_bytes(dump.read_bytes())
    single = CliRunner().invoke(stackwalk, [str(dump), "--symbols-path", str(root)]).output
    both = CliRunner().invoke(stackwalk, [str(dump), str(other), "--symbols-path", str(root)])
    assert both.exit_code == 0
    assert both.output == single + "\n" + single  # -m texts apart by an empty line

    lines = CliRunner().invoke(
        stackwalk, [str(dump), str(other), "--symbols-path", str(root), "--json"]
    ).output.splitlines()
    assert len(lines) == 2  # JSON lines
    assert all(json.loads(line)["status"] == "OK" for line in lines)


def test_a_bad_dump_among_several_fails_the_call_not_the_others(
    crash: tuple[Path, Path], tmp_path: Path
) -> None:
    dump, root = crash
    bad = tmp_path / "bad.dmp"
    bad.write_bytes(b"MDMP" + bytes(40))
    result = CliRunner().invoke(stackwalk, [str(bad), str(dump), "--symbols-path", str(root)])
    assert result.exit_code == 1
    assert f"error: {bad}: ERROR_" in result.output
    assert "0|0|demo|crash_here|demo.c|3|0x8" in result.output.splitlines()


def test_stackwalk_uses_breakpads_frame_limit() -> None:
    from procsupervisor.workers.stackwalker.api import walk_minidump as walk
    from procsupervisor.workers.stackwalker.unwind.walk import MAX_FRAMES, MAX_SCANNED_FRAMES

    assert (MAX_FRAMES, MAX_SCANNED_FRAMES) == (1 << 20, 1 << 14)  # docs/formats/breakpad.md §3.2
    assert walk.__kwdefaults__["max_frames_per_thread"] == MAX_FRAMES


def _modules_loaded_by(*args: str) -> set[str]:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from procsupervisor.stackwalk_command import stackwalk\n"
        "result = CliRunner().invoke(stackwalk, sys.argv[1:])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_command_imports_only_what_its_options_need(
    crash: tuple[Path, Path], tmp_path: Path
) -> None:
    dump, root = crash
    network = {"boto3", "botocore", "requests"}
    plain = _modules_loaded_by(str(dump), "--symbols-path", str(root))
    assert not network & plain and "diskcache" not in plain
    cached = [str(dump), "--symbols-path", str(root), "--cache-dir", str(tmp_path / "cache")]
    CliRunner().invoke(stackwalk, cached)  # fills the cache
    warm = _modules_loaded_by(*cached)
    assert not network & warm
    assert "procsupervisor.workers.stackwalker.symbols.parser" not in warm  # nothing to parse
