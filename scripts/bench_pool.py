"""Throughput of the real supervisor on the fs queue: scaling with workers, and dispatch ceiling.

1. Scaling: for 1..N workers, a fixed CPU-bound synthetic workload (each crash does a fixed
   amount of CPU work, `--work-ms` on an idle core) is pushed through a real supervisor; prints
   crashes/s and the scaling efficiency (throughput / (n x single-worker throughput)).
2. Dispatch ceiling: the same with near-zero processing (a trivial processor, no destination),
   so the figure is what the supervisor, the fs queue and the pipes sustain.

Throughput is measured in steady state, between 10% and 90% of the crashes finished, from the
supervisor's own counters polled over its control socket. Run by hand:

    .venv/bin/python scripts/bench_pool.py [--max-workers 2] [--work-ms 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procsupervisor import crashid
from procsupervisor.queues.fs import FSQueue
from procsupervisor.storage.fs import FSCrashStorage
from procsupervisor.supervisor.control import ControlError, request
from procsupervisor.workers.bench_processor import units_per_ms

ROOT = Path(__file__).resolve().parent.parent

POLL_S = 0.05


def prepare(data_dir: Path, count: int) -> None:
    """Store `count` small raw crashes and queue them on `normal`."""
    storage = FSCrashStorage(data_dir / "crashes")
    queue = FSQueue(data_dir / "queue")
    raw = {"ProductName": "Bench", "Version": "1.0"}
    for _ in range(count):
        cid = crashid.create()
        storage.save_raw_crash({**raw, "uuid": cid}, {"upload_file_minidump": b"MDMP"}, cid)
        queue.publish("normal", cid)


def write_config(path: Path, data_dir: Path, workers: int, work_units: int,
                 destinations: str) -> None:
    path.write_text(
        "[supervisor]\n"
        f"data_dir = {data_dir}\n"
        f"workers = {workers}\n"
        "processor = procsupervisor.workers.bench_processor:BenchProcessor\n"
        "[destinations]\n"
        f"order = {destinations}\n"
        "[processor]\n"
        f"work_units = {work_units}\n"
        "[logging]\nlevel = WARNING\n",
        encoding="utf-8",
    )


def supervisor_env() -> dict[str, str]:
    """This environment without PROCSUPERVISOR_* variables: the config file alone decides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PROCSUPERVISOR_")}


def run_once(workers: int, count: int, work_units: int, destinations: str = "fs") -> float:
    """Crashes/s in steady state for one supervisor run."""
    work = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    try:
        data_dir = work / "data"
        config = work / "bench.ini"
        write_config(config, data_dir, workers, work_units, destinations)
        prepare(data_dir, count)
        with (work / "log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "procsupervisor", "--config",
                                     str(config), "start"], cwd=ROOT, env=supervisor_env(),
                                    stdout=subprocess.DEVNULL, stderr=log)
            try:
                return _measure(data_dir / "control.sock", count, proc, work / "log")
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(sock: Path, count: int, proc: subprocess.Popen[bytes], log: Path) -> float:
    low, high = int(count * 0.1), int(count * 0.9)
    start: tuple[float, int] | None = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            # The run's folder is removed afterwards: show why it stopped while we can.
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"supervisor exited with {proc.returncode}:\n{tail}")
        try:
            totals = request(sock, "status", timeout=10)["status"]["totals"]
        except ControlError:
            time.sleep(POLL_S)
            continue
        now, done = time.monotonic(), totals["processed"]
        if start is None and done >= low:
            start = (now, done)
        if start is not None and done >= high:
            return (done - start[1]) / (now - start[0])
        time.sleep(POLL_S)
    raise SystemExit("benchmark timed out")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--work-ms", type=float, default=20.0,
                        help="CPU work per crash in the scaling runs, in ms of one idle core")
    parser.add_argument("--crashes-per-worker", type=int, default=150)
    parser.add_argument("--ceiling-crashes", type=int, default=20000)
    parser.add_argument("--ceiling-workers", type=int, default=None,
                        help="workers for the dispatch ceiling (default: --max-workers)")
    args = parser.parse_args()

    print(f"CPU cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.2f}")
    units = max(1, round(units_per_ms() * args.work_ms))
    print(f"\nscaling: {units} work units per crash (~{args.work_ms:g} ms of one idle core),"
          " fs queue, fs destination")
    print(f"{'workers':>7}  {'crashes/s':>10}  {'speed-up':>8}  {'efficiency':>10}")
    single = None
    for n in range(1, args.max_workers + 1):
        rate = run_once(n, args.crashes_per_worker * n, units)
        single = single or rate
        print(f"{n:>7}  {rate:>10.1f}  {rate / single:>7.2f}x  {rate / (n * single):>9.0%}")

    ceiling_workers = args.ceiling_workers or args.max_workers
    print(f"\ndispatch ceiling: {ceiling_workers} workers, trivial processor, "
          f"{args.ceiling_crashes} crashes")
    for destinations, label in (("", "no destination"), ("fs", "fs destination")):
        rate = run_once(ceiling_workers, args.ceiling_crashes, 0, destinations)
        print(f"  {label:>15}: {rate:8.0f} crashes/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
