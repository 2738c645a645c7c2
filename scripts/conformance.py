#!/usr/bin/env python3
"""Compare our `-m` output with Breakpad's on every row of testdata/RUNS.tsv.

Per dump and in total it prints: header lines (OS/CPU/GPU/Crash) equal, Module lines equal,
frame lines equal / total, and crashing-thread frame lines equal / total. It also checks the
dumps Breakpad rejects (`*.rc1.stderr.txt`): our status must be an error for them.

    scripts/conformance.py [--testdata DIR] [--verbose] [--diff NAME] [--only SUBSTRING]

`run_conformance()` is what tests/test_conformance.py calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.model import CodeModule, SymbolProvider
from procsupervisor.workers.stackwalker.symbols import (
    DirectorySymbolProvider,
    find_symbol_file,
    symbol_file_relpath,
)

REPO = Path(__file__).resolve().parent.parent
HEADER_PREFIXES = ("OS|", "CPU|", "GPU|", "Crash|")

ProviderFactory = Callable[[Path], SymbolProvider | None]


def default_testdata() -> Path:
    env = os.environ.get("PROCSUPERVISOR_TESTDATA")
    return Path(env) if env else REPO.parent / "shared" / "testdata"


@dataclass
class Count:
    equal: int = 0
    total: int = 0

    def add(self, other: Count) -> None:
        self.equal += other.equal
        self.total += other.total

    @property
    def complete(self) -> bool:
        return self.equal == self.total

    def ratio(self) -> float:
        return 1.0 if self.total == 0 else self.equal / self.total

    def __str__(self) -> str:
        return f"{self.equal}/{self.total}"


@dataclass
class DumpComparison:
    name: str
    status: str
    headers: Count = field(default_factory=Count)
    modules: Count = field(default_factory=Count)
    frames: Count = field(default_factory=Count)
    crashing: Count = field(default_factory=Count)
    crashing_module_has_symbols: bool = False
    seconds: float = 0.0
    differences: list[tuple[str, str]] = field(default_factory=list)  # (expected, actual)


@dataclass
class RejectCheck:
    name: str
    status: str

    @property
    def ok(self) -> bool:
        return self.status != "OK"


@dataclass
class Report:
    dumps: list[DumpComparison] = field(default_factory=list)
    rejects: list[RejectCheck] = field(default_factory=list)

    def total(self, attribute: str) -> Count:
        total = Count()
        for dump in self.dumps:
            total.add(getattr(dump, attribute))
        return total

    def crashing_with_symbols(self) -> Count:
        total = Count()
        for dump in self.dumps:
            if dump.crashing_module_has_symbols:
                total.add(dump.crashing)
        return total


def _split(text: str) -> tuple[list[str], list[str], dict[str, str]]:
    headers: list[str] = []
    modules: list[str] = []
    frames: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(HEADER_PREFIXES):
            headers.append(line)
        elif line.startswith("Module|"):
            modules.append(line)
        elif line:
            key = "|".join(line.split("|", 2)[:2])
            frames[key] = line
    return headers, modules, frames


def _positional(expected: list[str], actual: list[str], diffs: list[tuple[str, str]]) -> Count:
    count = Count(total=max(len(expected), len(actual)))
    for i in range(count.total):
        want = expected[i] if i < len(expected) else ""
        got = actual[i] if i < len(actual) else ""
        if want == got:
            count.equal += 1
        else:
            diffs.append((want, got))
    return count


def _requesting_thread(headers: list[str]) -> str:
    for line in headers:
        if line.startswith("Crash|"):
            return line.rsplit("|", 1)[-1]
    return ""


def symbol_file_exists(root: Path, module_line: str) -> bool:
    """Breakpad's path rule (docs/formats/breakpad.md §2.1) on a Module line's debug columns."""
    parts = module_line.split("|")
    module = CodeModule(0, 0, parts[1], "", debug_file=parts[3], debug_identifier=parts[4])
    relpath = symbol_file_relpath(module)
    return relpath is not None and find_symbol_file(root, relpath) is not None


def _crashing_module_has_symbols(expected: str, symbols_root: Path) -> bool:
    headers, modules, frames = _split(expected)
    first = frames.get(f"{_requesting_thread(headers)}|0")
    if first is None:
        return False
    module_name = first.split("|")[2]
    return any(
        line.split("|")[1] == module_name and symbol_file_exists(symbols_root, line)
        for line in modules
    )


def compare(name: str, expected: str, actual: str, status: str) -> DumpComparison:
    result = DumpComparison(name=name, status=status)
    want_headers, want_modules, want_frames = _split(expected)
    got_headers, got_modules, got_frames = _split(actual)
    diffs = result.differences
    result.headers = _positional(want_headers, got_headers, diffs)
    result.modules = _positional(want_modules, got_modules, diffs)
    crashing_prefix = _requesting_thread(want_headers) + "|"
    for key in sorted(set(want_frames) | set(got_frames), key=_frame_sort_key):
        want = want_frames.get(key, "")
        got = got_frames.get(key, "")
        same = want == got
        result.frames.total += 1
        result.frames.equal += same
        if crashing_prefix != "|" and key.startswith(crashing_prefix):
            result.crashing.total += 1
            result.crashing.equal += same
        if not same:
            diffs.append((want, got))
    return result


def _frame_sort_key(key: str) -> tuple[int, int]:
    thread, frame = key.split("|")
    try:
        return int(thread), int(frame)
    except ValueError:
        return (1 << 30, 0)


def _runs(testdata: Path) -> list[tuple[Path, Path, Path]]:
    rows = []
    lines = (testdata / "RUNS.tsv").read_text().splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        expected, dump, symbols = line.split("\t")
        rows.append((testdata / expected, testdata / dump, testdata / symbols))
    return rows


def _display_name(testdata: Path, expected: Path) -> str:
    return (
        str(expected.relative_to(testdata))
        .replace("/expected-breakpad/", "/")
        .removesuffix(".machine.txt")
    )


def directory_provider(root: Path) -> SymbolProvider | None:
    return DirectorySymbolProvider([root])


def run_conformance(
    testdata: Path,
    provider_factory: ProviderFactory = directory_provider,
    only: str | None = None,
) -> Report:
    report = Report()
    for expected_path, dump_path, symbols_root in _runs(testdata):
        name = _display_name(testdata, expected_path)
        if only and only not in name:
            continue
        started = time.perf_counter()
        result = walk_minidump(dump_path.read_bytes(), provider_factory(symbols_root))
        expected = expected_path.read_text()
        comparison = compare(name, expected, result.to_machine_readable(), result.status)
        comparison.seconds = time.perf_counter() - started
        comparison.crashing_module_has_symbols = _crashing_module_has_symbols(
            expected, symbols_root
        )
        report.dumps.append(comparison)
    for stderr_file in sorted(testdata.glob("**/expected-breakpad/*.rc1.stderr.txt")):
        dump_name = stderr_file.name.removesuffix(".rc1.stderr.txt") + ".dmp"
        dump_path = stderr_file.parent.parent / dump_name
        if only and only not in str(dump_path):
            continue
        if dump_path.is_file():
            result = walk_minidump(dump_path.read_bytes(), None)
            report.rejects.append(RejectCheck(str(dump_path.relative_to(testdata)), result.status))
    return report


def print_report(report: Report, verbose: bool, diff_name: str | None) -> None:
    for dump in report.dumps:
        print(
            f"{dump.name:60} {dump.status:4} headers {dump.headers!s:>5} "
            f"modules {dump.modules!s:>7} frames {dump.frames!s:>9} "
            f"crashing {dump.crashing!s:>7}{'' if dump.crashing_module_has_symbols else '*'} "
            f"{dump.seconds * 1000:7.0f} ms"
        )
        if verbose or (diff_name and diff_name in dump.name):
            for want, got in dump.differences:
                print(f"    - {want}\n    + {got}")
    for reject in report.rejects:
        verdict = "ok" if reject.ok else "WRONG (Breakpad rejects it)"
        print(f"{reject.name:60} {reject.status}: {verdict}")
    frames = report.total("frames")
    print()
    print(f"header lines equal:          {report.total('headers')}")
    print(f"module lines equal:          {report.total('modules')}")
    print(f"frame lines equal:           {frames} ({100 * frames.ratio():.2f}%)")
    print(f"crashing-thread frames:      {report.total('crashing')}")
    print(f"  where module has symbols:  {report.crashing_with_symbols()}")
    print(f"rejected dumps with errors:  {sum(r.ok for r in report.rejects)}/{len(report.rejects)}")
    print("(* = crashing module has no symbol file)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--testdata", type=Path, default=default_testdata())
    parser.add_argument("--verbose", action="store_true", help="show every differing line")
    parser.add_argument("--diff", metavar="NAME", help="show differing lines for matching dumps")
    parser.add_argument("--only", metavar="SUBSTRING", help="run only dumps whose name matches")
    args = parser.parse_args(argv)
    if not (args.testdata / "RUNS.tsv").is_file():
        parser.error(f"no RUNS.tsv in {args.testdata}")
    report = run_conformance(args.testdata, only=args.only)
    print_report(report, args.verbose, args.diff)
    perfect = all(
        d.headers.complete and d.modules.complete and d.frames.complete for d in report.dumps
    )
    return 0 if perfect and all(r.ok for r in report.rejects) else 1


if __name__ == "__main__":
    sys.exit(main())
