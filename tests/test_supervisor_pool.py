"""The worker pool on its own: the plug-in boundary to workers/, slots and crash-loop backoff."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

from procsupervisor import config
from procsupervisor.supervisor import pool as pool_module
from procsupervisor.supervisor.pool import WorkerPool, fork_worker

# Worker-side code the supervisor must never import (it reaches workers/ through WORKER_ENTRY).
WORKER_SIDE = ("procsupervisor.workers", "procsupervisor.cache", "procsupervisor.storage")


def test_the_supervisor_imports_no_worker_side_code() -> None:
    script = (
        "import sys\n"
        "import procsupervisor.supervisor.arbiter\n"
        f"print([m for m in sys.modules if m.startswith({WORKER_SIDE!r})])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_worker_entry_point_names_an_importable_function() -> None:
    from procsupervisor.backends import load_class

    assert callable(load_class(pool_module.WORKER_ENTRY))


@pytest.fixture
def broken_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "WORKER_ENTRY", "procsupervisor.no_such_module:main")


def test_a_worker_entry_that_cannot_load_ends_the_child(tmp_path: Path, broken_entry) -> None:
    cfg = config.load(None, data_dir=tmp_path, environ={})
    worker = fork_worker(0, cfg, generation=0, restarts=0)
    try:
        _, status = os.waitpid(worker.pid, 0)
    finally:
        worker.sock.close()
    # Exited on its own (not by returning into this process's code), with a failure code.
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1


def test_a_slot_whose_workers_never_start_backs_off(tmp_path: Path, broken_entry) -> None:
    cfg = config.load(None, data_dir=tmp_path, environ={})
    with selectors.DefaultSelector() as io_selector:
        pool = WorkerPool(cfg, io_selector)
        pool.maintain(time.monotonic(), workers=1, draining=False, stopping=False)
        assert len(pool.handles) == 1 and pool.slot(0).spawns == 1
        [exited] = pool.reap(hard_stop=False, block=True)
        assert exited.exit_cause == "exited with code 1" and not exited.alive
        slot = pool.slot(0)
        assert slot.failures == 1 and slot.next_spawn > time.monotonic()
        pool.maintain(time.monotonic(), workers=1, draining=False, stopping=False)
        assert not pool.handles, "respawned during its backoff"
        assert set(pool.backoff_status(time.monotonic())) == {"0"}
        assert not io_selector.get_map(), "the dead worker's pipe is still watched"

        time.sleep(max(0.0, slot.next_spawn - time.monotonic()) + 0.01)
        pool.maintain(time.monotonic(), workers=1, draining=False, stopping=False)
        [second] = pool.handles.values()
        assert second.restarts == 1
        pool.reap(hard_stop=False, block=True)
        assert pool.slot(0).failures == 2
        assert pool.slot(0).next_spawn - time.monotonic() > pool_module.BACKOFF_BASE_S
