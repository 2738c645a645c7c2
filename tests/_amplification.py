"""The amplification dump of issue 13 item 8, built with the minidump builder: many threads
whose stacks hold a frame-pointer chain, so each walks to its frame limit."""

from __future__ import annotations

import json
import resource
import struct
import sys
import time
from pathlib import Path

from procsupervisor.workers.stackwalker.minidump.builder import (
    ARCH_AMD64,
    PLATFORM_LINUX,
    SynthMinidump,
    amd64_context,
)

STACK_BASE = 0x7000_0000
MODULE_BASE = 0x400000


def chained_stack(base: int, size: int) -> bytes:
    """A frame-pointer chain, one frame per 16 bytes: (saved rbp, return address)."""
    words = size // 8
    stack = bytearray(size)
    for i in range(0, words - 2, 2):
        struct.pack_into("<QQ", stack, 8 * i, base + 8 * (i + 2), MODULE_BASE + 0x1000)
    return bytes(stack)


def amplification_dump(threads: int, stack_size: int = 64 * 1024, shared: bool = True) -> bytes:
    """`threads` threads over one `stack_size` stack (`shared`), or each over its own copy."""
    synth = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64)
    synth.add_module(MODULE_BASE, 0x10000, "/app")
    region = None
    for tid in range(1, threads + 1):
        base = STACK_BASE if shared else STACK_BASE + (tid - 1) * stack_size
        if region is None or not shared:
            region = synth.add_memory(base, chained_stack(base, stack_size))
        synth.add_thread(tid, amd64_context(rip=MODULE_BASE + 0x100, rsp=base, rbp=base), region)
    synth.set_exception(1, code=11, flags=0, address=0,
                        context=amd64_context(rip=MODULE_BASE + 0x100, rsp=STACK_BASE,
                                              rbp=STACK_BASE))
    return synth.build()


def measure(dump_path: Path, bounds: dict[str, int]) -> dict[str, object]:
    """Walk and render one dump the way the stackwalk rule does; figures and peak RSS."""
    from procsupervisor.workers.stackwalker.api import walk_minidump

    started = time.perf_counter()
    result = walk_minidump(dump_path.read_bytes(), None, max_frames_per_thread=1024, **bounds)
    json_dump = result.to_json_dump()
    text = json.dumps(json_dump)
    return {
        "status": result.status,
        "threads": len(json_dump.get("threads", [])),
        "frames": sum(len(t["frames"]) for t in json_dump.get("threads", [])),
        "crashing_frames": len((json_dump.get("crashing_thread") or {}).get("frames", [])),
        "reasons": sorted({str(t["truncated_reason"]) for t in json_dump.get("threads", [])}),
        "notes": json_dump.get("notes", []),
        "json_bytes": len(text),
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


if __name__ == "__main__":  # python _amplification.py DUMP '{"max_total_frames": ...}'
    print(json.dumps(measure(Path(sys.argv[1]), json.loads(sys.argv[2]))))
