"""Indexing a large `.sym` takes less memory than the file's size, plus a constant: measured with
`resource.getrusage` in a fresh child process (its own peak, not a copy of this one's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from procsupervisor.workers.stackwalker.symbols import SymbolIndex

pytestmark = pytest.mark.slow

SIZE = 100 * 10**6
MIB = 1 << 20
# the parser's buffers and lookup tables, above a bare interpreter with the package imported
CONSTANT = 48 * MIB


def write_large_sym(path: Path, size: int) -> None:
    """FUNCs with line records and inlines (75%), PUBLICs and STACK CFI (the rest), as
    dump_syms writes them."""
    with path.open("wb") as out:
        out.write(b"MODULE Linux x86_64 0123456789ABCDEF0123456789ABCDEF0 big.so\n")
        out.write(b"".join(b"FILE %d /src/dir%d/file%d.cc\n" % (i, i % 50, i) for i in range(3000)))
        out.write(b"".join(b"INLINE_ORIGIN %d inlined_%d(int)\n" % (i, i) for i in range(500)))
        written = 0
        address = 0x1000
        functions: list[int] = []
        while written < size * 0.75:
            lines = []
            for n in range(500):
                lines.append(b"FUNC %x 200 0 ns::Class%d::method(int, char)\n" % (address, n))
                if n % 4 == 0:
                    lines.append(b"INLINE 0 %d 7 %d %x 40\n" % (n, n % 500, address + 0x20))
                file_id = n % 3000
                lines += [
                    b"%x 10 %d %d\n" % (address + 16 * k, 100 + k, file_id) for k in range(32)
                ]
                functions.append(address)
                address += 0x220
            chunk = b"".join(lines)
            out.write(chunk)
            written += len(chunk)
        rest = [b"PUBLIC %x 0 public_%x\n" % (a, a) for a in functions]
        for a in functions:
            rest.append(b"STACK CFI INIT %x 200 .cfa: $rsp 8 + .ra: .cfa -8 + ^\n" % a)
            rest.append(b"STACK CFI %x .cfa: $rsp 16 +\n" % (a + 1))
            rest.append(b"STACK CFI %x .cfa: $rbp 16 + $rbp: .cfa -16 + ^\n" % (a + 4))
        data = b"".join(rest)
        out.write(data[: max(0, size - written)])
        out.write(b"\n")


# The measuring child is started by a small launcher process, not by pytest: a child's
# ru_maxrss includes the resident size of the process it was forked from (the copy it runs in
# before exec), and pytest's is large.
_LAUNCHER = (
    "import subprocess, sys\n"
    "done = subprocess.run([sys.executable, '-c', *sys.argv[1:]], capture_output=True, text=True)\n"
    "sys.stdout.write(done.stdout); sys.stderr.write(done.stderr); sys.exit(done.returncode)\n"
)
_PEAK = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"
_INDEX = (
    "import sys\n"
    "from procsupervisor.workers.stackwalker.symbols import build_index_file\n"
    "build_index_file(sys.argv[1], sys.argv[2])\n"
)


def _peak_of(code: str, *args: str) -> int:
    """Peak resident bytes, from getrusage in a fresh child, of running `code` there."""
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, code + "\n" + _PEAK, *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_indexing_a_100_mb_sym_takes_less_memory_than_the_file(tmp_path: Path) -> None:
    sym_path = tmp_path / "big.sym"
    write_large_sym(sym_path, SIZE)
    size = sym_path.stat().st_size
    assert size > 0.95 * SIZE
    out_path = tmp_path / "big.symidx"
    peak = _peak_of(_INDEX, str(sym_path), str(out_path))
    bare = _peak_of("import procsupervisor.workers.stackwalker.symbols.parser")
    assert peak <= size + bare + CONSTANT, (peak / MIB, size / MIB, bare / MIB)
    index = SymbolIndex.from_buffer(out_path.read_bytes())
    assert index.stats["lines"] > 1_000_000 and index.stats["errors"] == 0
    assert index.lookup(0x1010) is not None and index.find_cfi_rules(0x1001) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.sym", "big.symidx"]  # no spill
