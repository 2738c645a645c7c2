"""Issue 13 item 8: a small dump that multiplies work (4,096 threads over one 64 KiB stack
walked to 4.2 M frames, a 1 GB json_dump and 9 GB of memory) is bounded: a shared stack is
walked once, the frames of all threads and the json_dump's size are capped, and the walk stops
at the worker's memory cap. Measured in a child process, as a worker would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _amplification import amplification_dump

TESTS = Path(__file__).resolve().parent


def run_child(tmp_path: Path, dump: bytes, **bounds: int) -> dict:
    path = tmp_path / "amplification.dmp"
    path.write_bytes(dump)
    done = subprocess.run(
        [sys.executable, str(TESTS / "_amplification.py"), str(path), json.dumps(bounds)],
        capture_output=True, text=True, timeout=240, check=True)
    return json.loads(done.stdout)


@pytest.mark.slow
def test_threads_sharing_one_stack_walk_it_once(tmp_path: Path) -> None:
    dump = amplification_dump(4096)
    assert 5_000_000 < len(dump) < 6_000_000  # the reported 5.3 MB
    figures = run_child(tmp_path, dump)
    assert figures["status"] == "OK" and figures["threads"] == 4096
    assert figures["crashing_frames"] == 1025  # the crashing thread is walked in full
    assert figures["frames"] == 1025 + 4095  # every other thread: its context frame
    assert figures["reasons"] == ["frame limit", "shared stack"]
    assert ("4095 thread(s) walk the same stack memory as an earlier thread: only their context"
            " frame is kept") in figures["notes"]
    assert figures["json_bytes"] < 8 * 2**20
    assert figures["peak_rss_mb"] < 400, figures


def test_the_frames_of_all_threads_are_capped(tmp_path: Path) -> None:
    dump = amplification_dump(40, stack_size=16 * 1024, shared=False)  # 40 x 1,024 frames
    figures = run_child(tmp_path, dump, max_total_frames=5000)
    assert figures["crashing_frames"] == 1024
    assert figures["frames"] <= 5000 + 40
    assert "total frame limit" in figures["reasons"]
    assert any("frames were walked: only their context frame is kept" in note
               for note in figures["notes"])


def test_the_json_dump_size_is_capped(tmp_path: Path) -> None:
    dump = amplification_dump(40, stack_size=16 * 1024, shared=False)
    figures = run_child(tmp_path, dump, max_json_bytes=200_000)
    assert figures["json_bytes"] < 200_000 + 40 * 2_000  # frame 0 of every thread is kept
    assert "json size limit" in figures["reasons"]
    assert any("json_dump size limit of 200000 bytes reached" in n for n in figures["notes"])


def test_the_walk_stops_at_the_memory_cap(tmp_path: Path) -> None:
    dump = amplification_dump(40, stack_size=16 * 1024, shared=False)
    figures = run_child(tmp_path, dump, max_rss_bytes=1)
    assert figures["frames"] == 40  # nothing beyond the context frames
    assert figures["reasons"] == ["memory limit"]


def test_the_worker_memory_cap_bounds_the_stackwalk(tmp_path: Path) -> None:
    from procsupervisor import config
    from procsupervisor.workers.crash_handler import processor_options

    path = tmp_path / "sup.ini"
    path.write_text("[supervisor]\nworker_max_rss_mb = 512\n[processor]\nhostname = h\n")
    options = processor_options(config.load(path, environ={}))
    assert options == {"hostname": "h", "stackwalk_max_rss_mb": "512"}
