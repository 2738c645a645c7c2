"""Random symbol files checked against a brute-force model of Breakpad's containers (§1.4, §1.6,
§1.7, §6.4, §7). Small address spaces force overlaps, nesting, duplicates and disorder."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from procsupervisor.workers.stackwalker.symbols import SymbolIndex, parse_sym
from procsupervisor.workers.stackwalker.symbols.cfi_rules import apply_rule_set

SPACE = 0x400


@dataclass
class Func:
    base: int
    size: int
    name: str
    lines: list[tuple[int, int, int]] = field(default_factory=list)  # base, size, line
    inlines: list[tuple[int, int, int]] = field(default_factory=list)  # base, size, call line


def _overlaps(a_base: int, a_size: int, b_base: int, b_size: int) -> bool:
    return a_base < b_base + b_size and b_base < a_base + a_size


def _exclusive(ranges: list[tuple[int, int]]) -> list[int]:
    """Indexes accepted by a first-wins exclusive range map."""
    kept: list[int] = []
    for i, (base, size) in enumerate(ranges):
        if size and not any(_overlaps(base, size, *ranges[k]) for k in kept):
            kept.append(i)
    return kept


def _laminar(ranges: list[tuple[int, int]], allow_equal: bool) -> list[int]:
    """Indexes accepted by a contained range map: each new range must be disjoint from, or
    nested in/around, every stored one (identical ones only when allowed)."""
    kept: list[int] = []
    for i, (base, size) in enumerate(ranges):
        if not size:
            continue
        ok = True
        for k in kept:
            kb, ks = ranges[k]
            if not _overlaps(base, size, kb, ks):
                continue
            inside = kb <= base and base + size <= kb + ks
            around = base <= kb and kb + ks <= base + size
            if (base, size) == (kb, ks):
                ok = allow_equal
            elif not (inside or around):
                ok = False
            if not ok:
                break
        if ok:
            kept.append(i)
    return kept


def _containing_innermost_first(
    ranges: list[tuple[int, int]], kept: list[int], rel: int
) -> list[int]:
    hits = [k for k in kept if ranges[k][0] <= rel < ranges[k][0] + ranges[k][1]]
    # smaller is inner; among identical ranges the later one nests inside the earlier
    return sorted(hits, key=lambda k: (ranges[k][1], -k))


def random_case(rng: random.Random) -> list[str]:
    def pick(limit: int) -> int:
        # mostly coarse values, so identical ranges and shared starts happen often
        return rng.randrange(0, limit, 0x10) if rng.random() < 0.7 else rng.randrange(limit)

    funcs = []
    for n in range(rng.randrange(1, 12)):
        base = pick(SPACE)
        func = Func(base, pick(0x80), f"f{n}")
        for _ in range(rng.randrange(6)):
            func.lines.append((base + pick(0x70) - 4, pick(0x20), rng.randrange(100)))
        for _ in range(rng.randrange(5)):
            func.inlines.append((base + pick(0x60), pick(0x30), rng.randrange(50)))
        funcs.append(func)
    publics = [(pick(SPACE), f"p{n}") for n in range(rng.randrange(8))]
    publics += [(rng.choice(funcs).base, f"at_func{n}") for n in range(rng.randrange(3))]
    wins = [(rng.choice([0, 4]), pick(SPACE), pick(0x100)) for _ in range(rng.randrange(12))]
    inits = [(pick(SPACE), pick(0x100)) for _ in range(rng.randrange(5))]
    deltas = [(pick(SPACE), rng.randrange(1000)) for _ in range(rng.randrange(12))]

    text = ["FILE 0 zero.c", "INLINE_ORIGIN 0 inl"]
    for func in funcs:
        text.append(f"FUNC {func.base:x} {func.size:x} 0 {func.name}")
        text.extend(f"INLINE 0 {cl} 0 0 {ib:x} {isz:x}" for ib, isz, cl in func.inlines)
        text.extend(f"{b:x} {s:x} {ln} 0" for b, s, ln in func.lines)
    text.extend(f"PUBLIC {a:x} 0 {name}" for a, name in publics)
    text.extend(
        f"STACK WIN {t} {b:x} {s:x} 0 0 0 0 0 0 1 prog{i}" for i, (t, b, s) in enumerate(wins)
    )
    text.extend(
        f"STACK CFI INIT {b:x} {s:x} .cfa: init{i} .ra: r" for i, (b, s) in enumerate(inits)
    )
    text.extend(f"STACK CFI {a:x} d{i}: v{v}" for i, (a, v) in enumerate(deltas))
    if rng.random() < 0.1:
        rng.shuffle(text)  # break the FUNC / line grouping now and then
    return text


def expected(text: list[str], rel: int) -> tuple[object, object, object]:
    """What Breakpad answers at rel, recomputed from the text by brute force."""
    funcs: list[Func] = []
    publics: dict[int, str] = {}
    current: Func | None = None
    win_records: list[tuple[int, int, int, str]] = []
    inits: list[tuple[int, int, str]] = []
    deltas: dict[int, str] = {}
    for line in text:
        words = line.split(" ")
        if words[0] == "FUNC":
            current = Func(int(words[1], 16), int(words[2], 16), words[4])
            funcs.append(current)
        elif words[0] == "PUBLIC":
            current = None
            address = int(words[1], 16)
            if address:
                publics.setdefault(address, words[3])
        elif words[0] == "INLINE" and current is not None:
            current.inlines.append((int(words[5], 16), int(words[6], 16), int(words[2])))
        elif words[0] == "STACK" and words[1] == "WIN":
            win_records.append((int(words[2]), int(words[3], 16), int(words[4], 16), words[12]))
        elif words[0] == "STACK" and words[2] == "INIT":
            inits.append((int(words[3], 16), int(words[4], 16), line.split(" ", 5)[5]))
        elif words[0] == "STACK":
            deltas[int(words[2], 16)] = line.split(" ", 3)[3]
        elif words[0] not in ("FILE", "INLINE_ORIGIN", "INLINE") and current is not None:
            current.lines.append((int(words[0], 16), int(words[1], 16), int(words[2])))

    stored = [funcs[i] for i in _exclusive([(f.base, f.size) for f in funcs])]
    containing = [f for f in stored if f.base <= rel < f.base + f.size]
    lookup: object = None
    param_only = None
    if containing:
        func = containing[0]
        line_ranges = [(b, s) for b, s, _ in func.lines]
        line = [
            func.lines[i]
            for i in _exclusive(line_ranges)
            if func.lines[i][0] <= rel < sum(line_ranges[i])
        ]
        inline_ranges = [(b, s) for b, s, _ in func.inlines]
        chain = _containing_innermost_first(inline_ranges, _laminar(inline_ranges, True), rel)
        lookup = (
            func.name,
            func.base,
            line[0][2] if line else None,
            [(func.inlines[k][0], func.inlines[k][2]) for k in chain],
        )
        param_only = ("param_only", None)
    else:
        below = [f for f in stored if f.base + f.size <= rel]
        nearest = max(below, key=lambda f: f.base, default=None)
        candidates = [a for a in publics if a <= rel]
        if candidates:
            address = max(candidates)
            if nearest is None or address > nearest.base:
                lookup = (publics[address], address, None, [])

    win = param_only
    for wanted, kind in ((4, "frame_data"), (0, "fpo")):
        of_type = [(b, s) for t, b, s, _ in win_records if t == wanted]
        programs = [p for t, _, _, p in win_records if t == wanted]
        chain = _containing_innermost_first(of_type, _laminar(of_type, False), rel)
        if chain:
            win = (kind, programs[chain[0]])
            break

    cfi: object = None
    kept_inits = [inits[i] for i in _exclusive([(b, s) for b, s, _ in inits])]
    covering = [i for i in kept_inits if i[0] <= rel < i[0] + i[1]]
    if covering:
        rules: dict[str, str] = {}
        apply_rule_set(covering[0][2], rules)
        for address in sorted(deltas):
            if covering[0][0] <= address <= rel:
                apply_rule_set(deltas[address], rules)
        cfi = rules
    return lookup, win, cfi


def expected_errors(text: list[str]) -> int:
    """Duplicate PUBLIC addresses and line records with no current FUNC."""
    errors = 0
    has_function = False
    seen_publics: set[int] = set()
    for line in text:
        if line.startswith("FUNC "):
            has_function = True
        elif line.startswith("PUBLIC "):
            has_function = False
            address = int(line.split(" ")[1], 16)
            errors += address in seen_publics
            if address:
                seen_publics.add(address)
        elif line[0] in "0123456789abcdef" and not has_function:
            errors += 1
    return errors


def actual(index: SymbolIndex, rel: int) -> tuple[object, object, object]:
    found = index.lookup(rel)
    lookup = None
    if found is not None:
        lookup = (
            found.function_name,
            found.function_base,
            found.source_line,
            [(i.function_base, i.call_site_line) for i in found.inlines],
        )
    info = index.find_windows_frame_info(rel)
    win = None if info is None else (info.kind, info.program_string)
    return lookup, win, index.find_cfi_rules(rel)


@pytest.mark.parametrize("seed", range(60))
def test_random_files_match_the_model(seed: int) -> None:
    rng = random.Random(seed)
    text = random_case(rng)
    index = parse_sym(("\n".join(text) + "\n").encode())
    assert index.stats["errors"] == expected_errors(text)
    # trailing words after the file id are tolerated, and force the record-by-record path
    slow = parse_sym(
        "".join(
            line + (" x\n" if line[0] in "0123456789abcdef" else "\n") for line in text
        ).encode()
    )
    for rel in range(0, SPACE + 0x100):
        want = expected(text, rel)
        assert actual(index, rel) == want, hex(rel)
        assert actual(slow, rel) == want, hex(rel)
