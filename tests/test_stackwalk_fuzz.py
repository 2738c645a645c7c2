"""Hostile input: mutated real dumps and random synthetic ones must end in a result or a clean
error status, never an uncaught exception, and never run unbounded."""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procsupervisor.workers.stackwalker.minidump.builder import (
    ARCH_AMD64,
    ARCH_ARM,
    ARCH_ARM64,
    ARCH_ARM64_OLD,
    ARCH_X86,
    PLATFORM_ANDROID,
    PLATFORM_LINUX,
    PLATFORM_MAC,
    PLATFORM_WINDOWS,
    SynthMinidump,
    amd64_context,
    arm64_context,
    arm_context,
    cv_elf,
    cv_pdb70,
    x86_context,
)
from procsupervisor.workers.stackwalker.model import SymbolProvider
from procsupervisor.workers.stackwalker.output import json_dump, machine_readable
from procsupervisor.workers.stackwalker.process import process_minidump

SEEDS = [
    "breakpad/minidump2.dmp",
    "breakpad/thread_name_list.dmp",
    "breakpad/tiny-exe-fastfail.dmp",
    "rust-minidump/linux-mini.dmp",
    "sentry/macos.dmp",
    "bugsplat/myQtCrasher.dmp",
    "electron-node-minidump/windows.dmp",
]
MUTATIONS_PER_SEED = 150
WALK_DEADLINE_S = 2.0
# Generous: the walk itself stops at WALK_DEADLINE_S; this catches unbounded parsing.
INPUT_TIME_BOUND_S = 15.0


def check_input(data: bytes, symbols: SymbolProvider | None = None) -> str:
    """Process and render one input; any exception fails the test. Returns the status."""
    started = time.monotonic()
    state = process_minidump(
        data, symbols, max_frames_per_thread=256, deadline=started + WALK_DEADLINE_S
    )
    assert isinstance(state.status, str) and state.status
    rendered = json_dump.render(state)
    assert rendered["status"] == state.status
    if state.ok:
        text = machine_readable.render(state)
        assert text.startswith("OS|")
    assert time.monotonic() - started < INPUT_TIME_BOUND_S
    return state.status


def _directory_fields(data: bytes) -> list[int]:
    """Offsets of every count/size/rva the directory and stream starts hold."""
    if len(data) < 32:
        return []
    count, rva = struct.unpack_from("<II", data, 8)
    offsets = [8, 12]
    for i in range(min(count, 64)):
        entry = rva + 12 * i
        if entry + 12 > len(data):
            break
        offsets += [entry, entry + 4, entry + 8]
        stream_rva = struct.unpack_from("<I", data, entry + 8)[0]
        if stream_rva + 8 <= len(data):
            offsets += [stream_rva, stream_rva + 4]
    return offsets


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:  # bit flips anywhere
        for _ in range(rng.randint(1, 16)):
            pos = rng.randrange(len(buf))
            buf[pos] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        del buf[rng.randrange(len(buf)) :]
    elif kind in (2, 3):  # a structural field gets a hostile value
        fields = _directory_fields(data) or [0]
        pos = rng.choice(fields)
        value = rng.choice(
            [0, 1, 0xFFFFFFFF, 0x7FFFFFFF, len(buf), len(buf) - 4, rng.getrandbits(32)]
        )
        if pos + 4 <= len(buf):
            struct.pack_into("<I", buf, pos, value)
    else:  # a random block of random bytes
        pos = rng.randrange(len(buf))
        size = rng.randint(1, 256)
        buf[pos : pos + size] = rng.randbytes(size)
    return bytes(buf)


@pytest.mark.parametrize("seed_name", SEEDS)
def test_mutated_real_dumps(testdata: Path, seed_name: str) -> None:
    path = testdata / seed_name
    if not path.is_file():
        pytest.skip(f"{seed_name} not in the test data")
    original = path.read_bytes()
    assert check_input(original) == "OK"
    rng = random.Random(seed_name)
    statuses = {check_input(mutate(original, rng)) for _ in range(MUTATIONS_PER_SEED)}
    assert statuses  # every input gave a status


def test_mutated_dump_with_symbols(testdata: Path) -> None:
    from procsupervisor.workers.stackwalker.symbols import DirectorySymbolProvider

    original = (testdata / "breakpad/minidump2.dmp").read_bytes()
    provider = DirectorySymbolProvider([testdata / "breakpad/symbols"])
    rng = random.Random(2)
    for _ in range(25):
        check_input(mutate(original, rng), provider)


def test_truncated_at_every_structure_boundary(testdata: Path) -> None:
    original = (testdata / "rust-minidump/linux-mini.dmp").read_bytes()
    for cut in sorted(set(_directory_fields(original)) | {0, 1, 3, 31, 32, 33}):
        check_input(original[:cut])


_CONTEXTS = {
    ARCH_X86: lambda r: x86_context(
        eip=r[0] & 0xFFFFFFFF, esp=r[1] & 0xFFFFFFFF, ebp=r[2] & 0xFFFFFFFF
    ),
    ARCH_AMD64: lambda r: amd64_context(rip=r[0], rsp=r[1], rbp=r[2]),
    ARCH_ARM: lambda r: arm_context(
        pc=r[0] & 0xFFFFFFFF, sp=r[1] & 0xFFFFFFFF, lr=r[2] & 0xFFFFFFFF
    ),
    ARCH_ARM64: lambda r: arm64_context(pc=r[0], sp=r[1], fp=r[2]),
    ARCH_ARM64_OLD: lambda r: arm64_context(old=True, pc=r[0], sp=r[1], fp=r[2]),
}

u64 = st.integers(0, (1 << 64) - 1)
near = st.integers(0x1000, 0x20000)


@st.composite
def synthetic_dumps(draw: st.DrawFn) -> bytes:
    arch = draw(st.sampled_from(list(_CONTEXTS)))
    platform = draw(
        st.sampled_from([PLATFORM_WINDOWS, PLATFORM_LINUX, PLATFORM_MAC, PLATFORM_ANDROID])
    )
    synth = SynthMinidump(platform_id=platform, arch=arch, pad_lists=draw(st.booleans()))
    for i in range(draw(st.integers(0, 4))):
        base = draw(st.one_of(near, u64))
        size = draw(st.integers(0, 0x10000))
        cv = draw(
            st.sampled_from([None, cv_elf(bytes([i]) * 20), cv_pdb70(bytes(16), i, f"m{i}.pdb")])
        )
        synth.add_module(base, size, f"/lib/m{i}.so", cv=cv)
    stack_base = draw(st.one_of(near, u64))
    stack_words = draw(st.lists(st.one_of(near, u64, st.just(stack_base)), max_size=64))
    stack = synth.add_memory(
        stack_base, b"".join(struct.pack("<Q", w) for w in stack_words) or b"\0"
    )
    tids = draw(st.lists(st.integers(0, 5), min_size=1, max_size=4))
    for tid in tids:
        regs = [draw(st.one_of(near, u64, st.just(stack_base))) for _ in range(3)]
        synth.add_thread(tid, _CONTEXTS[arch](regs), stack if draw(st.booleans()) else None)
    if draw(st.booleans()):
        synth.set_exception(
            draw(st.sampled_from(tids)),
            draw(st.integers(0, 0xFFFFFFFF)),
            draw(st.integers(0, 20)),
            draw(u64),
            draw(st.lists(u64, max_size=20)),
        )
    if draw(st.booleans()):
        synth.add_breakpad_info(draw(st.sampled_from(tids)), draw(st.integers(0, 6)))
    return synth.build()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(synthetic_dumps())
def test_random_synthetic_dumps(data: bytes) -> None:
    check_input(data)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_after_a_valid_header(tail: bytes) -> None:
    header = struct.pack("<IIIIIIQ", 0x504D444D, 0xA793, 4, 32, 0, 0, 0)
    check_input(header + tail)
