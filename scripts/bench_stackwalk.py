#!/usr/bin/env python3
"""Stackwalker speed and memory, per dump: wall time cold (symbols parsed from .sym files, no
cache), through an empty shared symbol cache (fetch, parse, store), and through a warm one
(indexes mapped from the cache directory by a fresh provider), and the peak RSS of the process
that walked it.

    scripts/bench_stackwalk.py                      # every RUNS.tsv row of the test data
    scripts/bench_stackwalk.py --dumps DIR --symbols-path ROOT [--symbols-path ROOT2]
    scripts/bench_stackwalk.py --repeat 5 --only linux

Each dump is walked in a forked child so that its peak RSS is its own. Prints one line per
dump, then the median and max milliseconds over all dumps and the largest peak RSS.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from procsupervisor.cache.provider import build_provider
from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.model import SymbolProvider
from procsupervisor.workers.stackwalker.symbols import DirectorySymbolProvider

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Job:
    name: str
    dump: Path
    roots: list[Path]


@dataclass
class Measurement:
    name: str
    cold_ms: float  # no cache: symbols parsed from .sym
    cache_cold_ms: float  # empty shared cache: fetch, parse, store
    warm_ms: float  # warm shared cache: indexes mapped from disk
    peak_rss_mib: float
    status: str


def _cached_provider(roots: list[Path], cache_dir: Path) -> SymbolProvider:
    """A fresh worker's view of the shared cache: empty memory LRU, whatever is on disk."""
    return build_provider(roots, cache_dir)


def _close(provider: SymbolProvider) -> None:
    close = getattr(provider, "close", None)
    if close is not None:
        close()


def _timed_walk(data: bytes, provider: SymbolProvider) -> tuple[float, str]:
    started = time.perf_counter()
    result = walk_minidump(data, provider)
    result.to_machine_readable()
    return time.perf_counter() - started, result.status


def _runs(testdata: Path) -> list[Job]:
    jobs = []
    for line in (testdata / "RUNS.tsv").read_text().splitlines()[1:]:
        if line.strip():
            expected, dump, symbols = line.split("\t")
            name = expected.replace("/expected-breakpad/", "/").removesuffix(".machine.txt")
            jobs.append(Job(name, testdata / dump, [testdata / symbols]))
    return jobs


def _measure(job: Job, repeat: int) -> Measurement:
    data = job.dump.read_bytes()
    cold, cache_cold, warm = [], [], []
    status = ""
    for _ in range(repeat):
        elapsed, status = _timed_walk(data, DirectorySymbolProvider(job.roots))
        cold.append(elapsed)
    with tempfile.TemporaryDirectory(prefix="bench-symcache-") as scratch:
        for attempt in range(repeat):
            # A new cache directory each time: fetch from the symbol root, parse, store.
            provider = _cached_provider(job.roots, Path(scratch) / f"cold{attempt}")
            cache_cold.append(_timed_walk(data, provider)[0])
            _close(provider)
        filled = Path(scratch) / "cold0"
        for _ in range(repeat):
            # A new provider on the filled directory: every symbol file is a disk hit (mmap).
            provider = _cached_provider(job.roots, filled)
            warm.append(_timed_walk(data, provider)[0])
            _close(provider)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Measurement(
        job.name,
        1000 * min(cold),
        1000 * min(cache_cold),
        1000 * min(warm),
        peak_kib / 1024,
        status,
    )


def _child(job: Job, repeat: int, conn: Connection) -> None:
    try:
        conn.send(_measure(job, repeat))
    finally:
        conn.close()


def measure_isolated(job: Job, repeat: int) -> Measurement:
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(job, repeat, child))
    process.start()
    child.close()
    try:
        return parent.recv()
    except EOFError:
        nan = float("nan")
        return Measurement(job.name, nan, nan, nan, nan, "CRASHED")
    finally:
        process.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_testdata = Path(
        os.environ.get("PROCSUPERVISOR_TESTDATA", REPO.parent / "shared" / "testdata")
    )
    parser.add_argument("--testdata", type=Path, default=default_testdata)
    parser.add_argument("--dumps", type=Path, help="a folder of .dmp files instead of RUNS.tsv")
    parser.add_argument("--symbols-path", type=Path, action="append", default=[])
    parser.add_argument("--repeat", type=int, default=3, help="runs per dump; the best counts")
    parser.add_argument("--only", help="only dumps whose name contains this")
    args = parser.parse_args(argv)
    if args.dumps:
        jobs = [
            Job(str(p.relative_to(args.dumps)), p, args.symbols_path)
            for p in sorted(args.dumps.rglob("*.dmp"))
        ]
    else:
        jobs = _runs(args.testdata)
    if args.only:
        jobs = [job for job in jobs if args.only in job.name]
    if not jobs:
        parser.error("no dumps to run")
    results = []
    print(
        f"{'dump':60} {'status':6} {'cold ms':>9} {'cache0 ms':>9} {'warm ms':>9} {'peak MiB':>9}"
    )
    for job in jobs:
        m = measure_isolated(job, args.repeat)
        results.append(m)
        print(
            f"{m.name:60} {m.status[:6]:6} {m.cold_ms:9.1f} {m.cache_cold_ms:9.1f} "
            f"{m.warm_ms:9.1f} {m.peak_rss_mib:9.1f}"
        )
    done = [m for m in results if m.status != "CRASHED"]
    print()
    print(f"dumps: {len(results)}   repeat: {args.repeat} (best run counted)")
    if not done:
        print("every walk crashed: no figures")
        return 1
    for label, values in (
        ("cold (no cache, .sym parsed)", [m.cold_ms for m in done]),
        ("cold cache (fetch+parse+store)", [m.cache_cold_ms for m in done]),
        ("warm cache (mapped from disk)", [m.warm_ms for m in done]),
    ):
        print(
            f"{label:32} median {statistics.median(values):7.1f} ms   max {max(values):7.1f} ms"
            f"   total {sum(values):8.1f} ms"
        )
    print(f"peak RSS: max {max(m.peak_rss_mib for m in done):.1f} MiB")
    return 0 if len(done) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
