"""Benchmark the .sym parser and the symbol index on a large synthetic Breakpad symbol file.

    .venv/bin/python scripts/bench_symbols.py --size-mb 200 [--out DIR] [--seed N]

Prints: file size, the index build from the file (parse MB/s, index write, cold total) and its
peak RSS, both measured in a fresh child process (peak RSS also as a multiple of the file size,
next to a bare child's), serialized size, warm load time (from_buffer over an mmap, crc32 verify
on and off), lookup microseconds, and the same file served through the shared cache. With
--shared, a second host's miss with and without the shared index store (moto's S3); with
--warm-files N, `symbols warm` over N generated files for each of --warm-jobs process counts.
Figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import logging
import mmap
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar

from procsupervisor.workers.stackwalker.symbols import SymbolIndex
from procsupervisor.workers.stackwalker.symbols.builder import write_index
from procsupervisor.workers.stackwalker.symbols.parser import SymParser

FILES = 3000
BENCH_DEBUG_ID = "0123456789ABCDEF0123456789ABCDEF0"
ORIGINS = 2000
CFI_REGS = ("$rbx", "$rbp", "$r12", "$r13", "$r14", "$r15")

T = TypeVar("T")


def generate(path: Path, size_mb: float, seed: int) -> int:
    """Write a synthetic .sym shaped like a large C++ binary's; returns the end address."""
    rng = random.Random(seed)
    target = int(size_mb * 1e6)
    written = 0
    address = 0x1000
    func_starts: list[tuple[int, int]] = []
    with path.open("wb") as out:

        def emit(lines: list[str]) -> None:
            nonlocal written
            chunk = ("\n".join(lines) + "\n").encode()
            out.write(chunk)
            written += len(chunk)
            lines.clear()

        emit(
            [
                f"MODULE Linux x86_64 {BENCH_DEBUG_ID} libbench.so",
                "INFO CODE_ID 89674523AB01EFCD",
            ]
            + [f"FILE {i} /build/src/module{i % 97}/subdir/file_{i}.cpp" for i in range(FILES)]
            + [f"INLINE_ORIGIN {i} bench::inlined_helper_{i}(int)" for i in range(ORIGINS)]
        )
        # FUNC + lines (+ INLINE) take ~70% of the file, PUBLIC ~6%, STACK CFI the rest
        func_budget = target * 0.7
        batch: list[str] = []
        while written < func_budget:
            size = rng.randrange(0x20, 0x400)
            name = (
                f"bench::Namespace{rng.randrange(500)}::Class{len(func_starts)}"
                "::method(int, char const*)"
            )
            batch.append(f"FUNC {address:x} {size:x} {rng.randrange(4) * 4:x} {name}")
            if len(func_starts) % 8 == 0 and size > 0x40:
                origin = rng.randrange(ORIGINS)
                call_file = rng.randrange(FILES)
                batch.append(
                    f"INLINE 0 {rng.randrange(1, 900)} {call_file} {origin} {address + 0x10:x} 20"
                )
                batch.append(
                    f"INLINE 1 {rng.randrange(1, 900)} {call_file} {origin} {address + 0x18:x} 8"
                )
            file_id = rng.randrange(FILES)
            line = rng.randrange(1, 5000)
            pos = address
            end = address + size
            while pos < end:
                step = min(rng.randrange(2, 0x30), end - pos)
                batch.append(f"{pos:x} {step:x} {line} {file_id}")
                line += rng.randrange(0, 3)
                pos += step
            func_starts.append((address, size))
            address = end + rng.randrange(0, 0x20)
            if len(batch) > 20000:
                emit(batch)
        emit(batch)
        public_budget = target * 0.76
        for start, _size in func_starts:
            if written >= public_budget:
                break
            batch.append(f"PUBLIC {start:x} 0 _ZN5bench5Class{start:x}6methodEiPKc")
            if len(batch) > 20000:
                emit(batch)
        emit(batch)
        for start, size in func_starts:
            if written >= target:
                break
            batch.append(f"STACK CFI INIT {start:x} {size:x} .cfa: $rsp 8 + .ra: .cfa -8 + ^")
            batch.append(f"STACK CFI {start + 1:x} .cfa: $rsp 16 + $rbp: .cfa -16 + ^")
            batch.append(f"STACK CFI {start + 4:x} .cfa: $rbp 16 +")
            reg = CFI_REGS[rng.randrange(len(CFI_REGS))]
            batch.append(f"STACK CFI {start + 8:x} {reg}: .cfa -24 + ^")
            if len(batch) > 20000:
                emit(batch)
        emit(batch)
    return address


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def per_call_us(fn: Callable[[int], object], addresses: list[int]) -> float:
    start = time.perf_counter()
    for rel in addresses:
        fn(rel)
    return (time.perf_counter() - start) / len(addresses) * 1e6


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _build_in_child(sym_path: Path, index_path: Path, conn: Connection) -> None:
    """Index `sym_path` as the symbol cache does, timing the parse and the write apart."""
    try:
        with sym_path.open("rb") as handle:
            parse_s, records = timed(lambda: SymParser().parse_file(handle))
        with index_path.open("wb") as out:
            write_s, meta = timed(lambda: write_index(records, out))
        helper_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        conn.send((parse_s, write_s, meta["stats"], _peak_rss_mb(), helper_mb))
    finally:
        conn.close()


def _bare_child(conn: Connection) -> None:
    try:
        conn.send(_peak_rss_mb())
    finally:
        conn.close()


def in_fresh_process(target: Callable[..., None], *args: object) -> object:
    """Run `target(*args, conn)` in a new interpreter (spawned, so that its peak RSS is its
    own and not a copy of this process) and return what it sends."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(*args, sender))
    process.start()
    sender.close()
    try:
        return receiver.recv()
    finally:
        process.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=200.0)
    parser.add_argument("--out", type=Path, help="directory for the .sym and index (default: temp)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sym", type=Path, help="an existing .sym file instead of a generated one")
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--skip-cache", action="store_true",
                        help="skip the run through the shared symbol cache")
    parser.add_argument("--shared", action="store_true",
                        help="also time a second host's miss with and without the shared index"
                        " store (moto's S3 on loopback)")
    parser.add_argument("--warm-files", type=int, default=0,
                        help="also time `symbols warm` over this many generated .sym files")
    parser.add_argument("--warm-size-mb", type=float, default=10.0)
    parser.add_argument("--warm-jobs", default="1,2", help="process counts for `symbols warm`")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_symbols_") as tmp:
        out_dir = args.out or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        sym_path = args.sym or out_dir / "libbench.sym"
        index_path = out_dir / "libbench.symidx"

        if args.sym is None:
            gen_s, end_address = timed(lambda: generate(sym_path, args.size_mb, args.seed))
            print(f"sym file: {sym_path.stat().st_size / 1e6:.1f} MB ({sym_path}),"
                  f" generated in {gen_s:.1f} s")
        size = sym_path.stat().st_size

        bare_mb = in_fresh_process(_bare_child)
        parse_s, write_s, stats, peak_mb, helper_mb = in_fresh_process(  # type: ignore[misc]
            _build_in_child, sym_path, index_path
        )
        cold_s = parse_s + write_s
        names = ("functions", "lines", "publics", "inline_records", "cfi_inits", "cfi_deltas")
        print("records: " + ", ".join(f"{k}={stats[k]}" for k in names))
        print(f"parse (streamed from the file): {parse_s:.2f} s = {size / 1e6 / parse_s:.1f} MB/s")
        print(f"index write: {write_s:.2f} s")
        print(f"cold total (read + parse + write): {cold_s:.2f} s = {size / 1e6 / cold_s:.1f} MB/s")
        print(
            f"peak RSS of the indexing process: {peak_mb:.0f} MiB ="
            f" {peak_mb * 2**20 / size:.2f} x the .sym (a bare child process: {bare_mb:.0f} MiB;"
            f" its helper process: {helper_mb:.0f} MiB)"
        )
        if args.sym is not None:
            with index_path.open("rb") as handle:
                highs = SymbolIndex.from_buffer(handle.read())._func_high
                end_address = int(highs[-1]) if len(highs) else 0x10000
            print(f"sym file: {size / 1e6:.1f} MB ({sym_path})")
        index_size = index_path.stat().st_size
        print(f"serialized index: {index_size / 1e6:.1f} MB ({index_size / size:.2f} of the .sym)")

        rng = random.Random(args.seed + 1)
        addresses = [rng.randrange(0, end_address + 0x1000) for _ in range(args.lookups)]
        with (
            index_path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
        ):
            loads: dict[bool, float] = {}
            for verify in (True, False):
                runs = []
                for _ in range(5):
                    seconds, index = timed(
                        lambda v=verify: SymbolIndex.from_buffer(mapped, verify=v)
                    )
                    runs.append(seconds)
                    index.release()
                loads[verify] = statistics.median(runs)
                print(f"warm load (mmap, verify={verify}): {loads[verify] * 1e3:.2f} ms")
            index = SymbolIndex.from_buffer(mapped, verify=False)
            print(f"lookup: {per_call_us(index.lookup, addresses):.2f} us/call")
            print(f"find_cfi_rules: {per_call_us(index.find_cfi_rules, addresses):.2f} us/call")
            win_us = per_call_us(index.find_windows_frame_info, addresses)
            print(f"find_windows_frame_info: {win_us:.2f} us/call")
            index.release()
        ratio_verified = cold_s / loads[True]
        ratio_unverified = cold_s / loads[False]
        print(
            f"cold/warm: {ratio_verified:.0f}x with verify, {ratio_unverified:.0f}x without"
            " (target >= 50x)"
        )
        if not args.skip_cache:
            bench_through_cache(sym_path, out_dir)
        if args.shared:
            bench_shared_index(sym_path, out_dir)
        if args.warm_files:
            jobs = [int(n) for n in args.warm_jobs.split(",")]
            bench_warm(out_dir, args.warm_files, args.warm_size_mb, args.seed, jobs)
    return 0


def _symbol_root(sym_path: Path, out_dir: Path) -> tuple[Path, object]:
    """A Breakpad symbol root holding `sym_path` (hard-linked) for the benchmark module."""
    from procsupervisor.workers.stackwalker.model import CodeModule

    module = CodeModule(
        base_address=0, size=1 << 40, code_file="libbench.so", code_identifier="",
        debug_file="libbench.so", debug_identifier=BENCH_DEBUG_ID,
    )
    root = out_dir / "symbols"
    layout_dir = root / "libbench.so" / BENCH_DEBUG_ID
    layout_dir.mkdir(parents=True, exist_ok=True)
    (layout_dir / "libbench.so.sym").unlink(missing_ok=True)
    os.link(sym_path, layout_dir / "libbench.so.sym")
    return root, module


def bench_shared_index(sym_path: Path, out_dir: Path) -> None:
    """A second host with an empty cache: its miss through the shared index store (download
    the index) against the same miss without it (parse the .sym)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print("shared index store: skipped (moto is not installed)")
        return
    from procsupervisor.cache.provider import CachingSymbolProvider
    from procsupervisor.cache.shared_index_s3 import S3SharedIndexStore
    from procsupervisor.cache.store import SymbolStore
    from procsupervisor.cache.supplier_local import LocalDirectorySupplier
    from procsupervisor.cache.supplier_s3 import make_s3_client
    from procsupervisor.workers.stackwalker.symbols import BreakpadIndexCodec

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    root, module = _symbol_root(sym_path, out_dir)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = make_s3_client(endpoint_url=f"http://{host}:{port}", region="us-east-1",
                                timeout_s=60, retries=1)  # fmt: skip
        client.create_bucket(Bucket="symidx")
        codec = BreakpadIndexCodec()
        timings = {}
        for host_name, shared in (("first", True), ("second", True), ("alone", False)):
            provider = CachingSymbolProvider(
                SymbolStore(out_dir / f"host-{host_name}", 64 << 30),
                [LocalDirectorySupplier(root)],
                codec=codec,
                shared=S3SharedIndexStore(client, "symidx", "bench", codec.format_tag)
                if shared else None,
            )  # fmt: skip
            timings[host_name], index = timed(lambda p=provider: p.get_symbols(module))
            assert index is not None
            del index
            provider.close()
    finally:
        server.stop()
    print(f"shared index store: first host builds and uploads in {timings['first']:.2f} s;"
          f" a second host's miss takes {timings['second']:.2f} s with it (download, no parse)"
          f" and {timings['alone']:.2f} s without it"
          f" ({timings['alone'] / timings['second']:.1f}x)")


def bench_warm(out_dir: Path, files: int, size_mb: float, seed: int, jobs: list[int]) -> None:
    """`symbols warm` over a directory of generated .sym files, for each process count."""
    from procsupervisor.cache.settings import SymbolCacheSettings
    from procsupervisor.cache.warm import open_source, warm

    root = out_dir / "warm-symbols"
    total = 0
    for n in range(files):
        debug_id = f"{n:032X}0"
        folder = root / f"lib{n}.so" / debug_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"lib{n}.so.sym"
        if not path.exists():
            generate(path, size_mb, seed + n)
        total += path.stat().st_size
    for count in jobs:
        settings = SymbolCacheSettings(cache_dir=out_dir / f"warm-cache-{count}")
        report = warm(open_source(str(root), settings), settings, count)
        print(f"symbols warm: {report.files} files, {total / 1e6:.0f} MB of .sym with {count}"
              f" processes: {report.seconds:.1f} s = {total / 1e6 / report.seconds:.1f} MB/s"
              f" ({report.outcomes['built']} built, {report.errors} errors)")


def bench_through_cache(sym_path: Path, out_dir: Path) -> None:
    """The same file served by the shared symbol cache as a worker sees it: a miss (local
    supplier read, parse, store) and then, in a fresh provider, a disk hit (mmap + crc check)."""
    from procsupervisor.cache.provider import build_provider

    root, module = _symbol_root(sym_path, out_dir)
    cache_dir = out_dir / "symcache"
    timings = {}
    for phase in ("miss", "hit"):
        provider = build_provider([root], cache_dir)
        seconds, index = timed(lambda p=provider: p.get_symbols(module))  # type: ignore[arg-type]
        if index is None:
            raise SystemExit("the symbol cache did not return the benchmark module")
        timings[phase] = seconds
        stored_mb = provider.stats()["size_bytes"] / 1e6
        del index
        provider.close()
    print(f"through the shared cache: miss (read + parse + store) {timings['miss']:.2f} s,"
          f" hit in a fresh worker {timings['hit'] * 1e3:.1f} ms"
          f" ({timings['miss'] / timings['hit']:.0f}x), stored {stored_mb:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
