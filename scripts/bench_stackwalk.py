#!/usr/bin/env python3
"""Stackwalker speed and memory, per dump: wall time cold (symbols parsed from .sym files) and
warm (symbol indexes opened from their serialized bytes, as the shared cache serves them),
and the peak RSS of the process that walked it.

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
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.model import CodeModule
from procsupervisor.workers.stackwalker.symbols.index import SymbolIndex
from procsupervisor.workers.stackwalker.symbols.supplier import (
    DirectorySymbolProvider,
    load_sym_file,
)

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Job:
    name: str
    dump: Path
    roots: list[Path]


@dataclass
class Measurement:
    name: str
    cold_ms: float
    warm_ms: float
    peak_rss_mib: float
    status: str


class SerializedSymbols:
    """Symbol indexes kept as bytes and reopened on every lookup, like a cache hit."""

    def __init__(self, roots: list[Path]) -> None:
        self._files = DirectorySymbolProvider(roots)
        self._blobs: dict[tuple[str, str], bytes | None] = {}

    def prepare(self, module: CodeModule) -> None:
        key = (module.debug_file, module.debug_identifier)
        if key not in self._blobs:
            path = self._files.find_file(module)
            self._blobs[key] = load_sym_file(path).to_bytes() if path else None

    def get_symbols(self, module: CodeModule) -> SymbolIndex | None:
        self.prepare(module)
        blob = self._blobs[(module.debug_file, module.debug_identifier)]
        return None if blob is None else SymbolIndex.from_buffer(blob)


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
    cold = []
    status = ""
    for _ in range(repeat):
        started = time.perf_counter()
        result = walk_minidump(data, DirectorySymbolProvider(job.roots))
        result.to_machine_readable()
        cold.append(time.perf_counter() - started)
        status = result.status
    serialized = SerializedSymbols(job.roots)
    walk_minidump(data, serialized)  # fill the serialized bytes; not timed
    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        walk_minidump(data, serialized).to_machine_readable()
        warm.append(time.perf_counter() - started)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Measurement(job.name, 1000 * min(cold), 1000 * min(warm), peak_kib / 1024, status)


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
        return Measurement(job.name, float("nan"), float("nan"), float("nan"), "CRASHED")
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
    print(f"{'dump':60} {'status':6} {'cold ms':>9} {'warm ms':>9} {'peak MiB':>9}")
    for job in jobs:
        m = measure_isolated(job, args.repeat)
        results.append(m)
        print(
            f"{m.name:60} {m.status[:6]:6} {m.cold_ms:9.1f} {m.warm_ms:9.1f} {m.peak_rss_mib:9.1f}"
        )
    cold = [m.cold_ms for m in results if m.status != "CRASHED"]
    warm = [m.warm_ms for m in results if m.status != "CRASHED"]
    print()
    print(f"dumps: {len(results)}   repeat: {args.repeat} (best run counted)")
    print(f"cold: median {statistics.median(cold):.1f} ms   max {max(cold):.1f} ms")
    print(f"warm: median {statistics.median(warm):.1f} ms   max {max(warm):.1f} ms")
    print(f"peak RSS: max {max(m.peak_rss_mib for m in results):.1f} MiB")
    return 0 if all(m.status != "CRASHED" for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
