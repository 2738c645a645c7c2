#!/usr/bin/env python3
"""Our crash signatures next to the ones siggen derives from Breakpad's frames.

    python scripts/signatures.py ../shared/testdata            # every reference run
    python scripts/signatures.py ../shared/testdata/sentry     # the runs of one folder

For each reference run in RUNS.tsv (expected `-m` output, dump, symbol root) under DIR, this
processes the dump with our processor (stackwalker + rules, symbols from the run's symbol root)
and feeds Breakpad's expected frames, parsed from `expected-breakpad/*.machine.txt`, through the
same frame conversion and siggen. It prints both signatures and the match rate.
"""

from __future__ import annotations

import argparse
import csv
import functools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siggen.generator import SignatureGenerator

from procsupervisor import crashid
from procsupervisor.metrics import NullMetrics
from procsupervisor.workers.processor import Processor
from procsupervisor.workers.rules.signature import signature_input

HEADER_KINDS = ("OS", "CPU", "GPU", "Crash", "Module")


def _hex_or_none(text: str) -> str | None:
    return text if text.startswith("0x") else None


def parse_machine_readable(text: str) -> dict[str, Any]:
    """Breakpad's `-m` output (docs/formats/breakpad.md §8) as a minidump-stackwalk-shaped json_dump
    holding what siggen reads: system_info.os, crash_info and each thread's frames."""
    system_info: dict[str, Any] = {}
    crash_info: dict[str, Any] = {"type": None, "address": None, "crashing_thread": None}
    threads: dict[int, list[dict[str, Any]]] = {}
    for line in text.splitlines():
        fields = line.split("|")
        kind = fields[0]
        if kind == "OS" and len(fields) >= 3:
            system_info.update(os=fields[1], os_ver=fields[2])
        elif kind == "CPU" and len(fields) >= 4:
            system_info.update(cpu_arch=fields[1], cpu_info=fields[2])
        elif kind == "Crash" and len(fields) >= 4:
            crash_info["type"] = fields[1] or None
            crash_info["address"] = _hex_or_none(fields[2])
            crash_info["crashing_thread"] = int(fields[3]) if fields[3].isdigit() else None
        elif kind in HEADER_KINDS or len(fields) != 7 or not fields[0].isdigit():
            continue
        else:
            thread, index, module, function, file, line_no, offset = fields
            frame: dict[str, Any] = {
                "frame": int(index),
                "module": module or None,
                "function": function or None,
                "file": file or None,
                "line": int(line_no) if line_no.isdigit() else None,
                "offset": None,
                "module_offset": None,
            }
            # The printed offset is relative to what the line names (docs/formats/breakpad.md §8.4).
            if function:
                frame["function_offset"] = offset
            elif module:
                frame["module_offset"] = offset
            else:
                frame["offset"] = offset
            threads.setdefault(int(thread), []).append(frame)
    count = max(threads, default=-1) + 1
    return {
        "system_info": system_info,
        "crash_info": crash_info,
        "threads": [{"frames": threads.get(i, [])} for i in range(count)],
    }


@dataclass
class Run:
    expected: Path
    dump: Path
    symbols: Path

    @property
    def name(self) -> str:
        return self.expected.name.removesuffix(".machine.txt")


def find_runs(directory: Path) -> list[Run]:
    """Rows of the nearest RUNS.tsv (in DIR or above it) whose dump lies under DIR."""
    directory = directory.resolve()
    for root in (directory, *directory.parents):
        if (root / "RUNS.tsv").is_file():
            break
    else:
        raise SystemExit(f"no RUNS.tsv in {directory} or above it")
    runs = []
    with (root / "RUNS.tsv").open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            run = Run(root / row["expected"], root / row["dump"], root / row["symbols"])
            if run.dump.resolve().is_relative_to(directory):
                runs.append(run)
    return runs


def breakpad_signature(generator: SignatureGenerator, expected: Path) -> str:
    json_dump = parse_machine_readable(expected.read_text(errors="replace"))
    return str(generator.generate(signature_input({"json_dump": json_dump})).signature)


@functools.cache
def processor_for(symbol_root: Path) -> Processor:
    """One processor per symbol root: building one (rulesets, siggen's compiled lists) costs
    more than processing a small dump."""
    from procsupervisor.workers.stackwalker.symbols import DirectorySymbolProvider

    return Processor(symbols=DirectorySymbolProvider([symbol_root]), metrics=NullMetrics())


def our_processed_crash(run: Run) -> dict[str, Any]:
    dumps = {"upload_file_minidump": run.dump.read_bytes()}
    return processor_for(run.symbols).process(crashid.create(), {}, dumps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="a test-data folder (or the whole tree)")
    parser.add_argument("--mismatches", action="store_true", help="print only the differences")
    args = parser.parse_args(argv)

    runs = find_runs(args.directory)
    generator = SignatureGenerator()
    matches = 0
    mismatched: list[tuple[str, str, str, str]] = []
    started = time.monotonic()
    for run in runs:
        theirs = breakpad_signature(generator, run.expected)
        processed = our_processed_crash(run)
        ours = processed["signature"]
        same = ours == theirs
        matches += same
        if not same:
            mismatched.append((run.name, ours, theirs, processed.get("mdsw_status_string", "?")))
        if not args.mismatches or not same:
            mark = "==" if same else "!="
            print(
                f"{run.expected.parent.parent.name}/{run.name}\n  ours     {ours}\n"
                f"  {mark} breakpad {theirs}"
            )
    elapsed = time.monotonic() - started
    total = len(runs)
    rate = 100.0 * matches / total if total else 0.0
    print(f"\n{matches}/{total} signatures match ({rate:.1f} %), {elapsed:.1f} s")
    for name, ours, theirs, status in mismatched:
        print(f"  differs: {name} (stackwalk status {status}): {ours!r} vs {theirs!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
