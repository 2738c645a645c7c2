"""The main job on the embedded defaults, end to end, for a new user.

Generates a few sample crashes (synthetic Linux/amd64 minidumps of a small program plus its
Breakpad symbols), submits them to the fs queue, runs the real supervisor until every one is
finished, then prints each crash id with its outcome and signature, and the status table.

    .venv/bin/python scripts/run_demo.py [--count 6] [--workers 2] [--data-dir DIR]

Everything goes under DIR (default ./procsupervisor-data/demo, recreated on each run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from procsupervisor import config as config_module
from procsupervisor.intake import submit_crash
from procsupervisor.supervisor.control import ControlError, request
from procsupervisor.supervisor.status import render
from procsupervisor.workers.stackwalker.minidump.builder import (
    ARCH_AMD64,
    PLATFORM_LINUX,
    SymFunction,
    SynthMinidump,
    amd64_context,
    cv_elf,
    elf_debug_id,
    sym_text,
    write_sym,
)

ROOT = Path(__file__).resolve().parent.parent

APP = "demo-app"
APP_BASE = 0x400000
STACK_BASE = 0x7FFE0000
BUILD_ID = bytes(range(1, 21))
# (module-relative address, size, name): the crashing function calls nothing; its caller is
# the second entry, reached through the frame-pointer chain on the synthetic stack.
FUNCTIONS = [
    (0x1000, 0x100, "demo::Parser::parse_header"),
    (0x1100, 0x100, "demo::Renderer::draw_frame"),
    (0x1200, 0x100, "demo::Cache::evict"),
    (0x2000, 0x200, "demo::main_loop"),
    (0x3000, 0x100, "main"),
]
QUEUES = ("priority", "normal", "reprocessing")


def write_symbols(symbols_dir: Path) -> None:
    functions = [SymFunction(a, s, n, line=10 + i, file="src/demo.cc")
                 for i, (a, s, n) in enumerate(FUNCTIONS)]
    write_sym(symbols_dir, APP, elf_debug_id(BUILD_ID), sym_text(APP, elf_debug_id(BUILD_ID),
                                                                 functions))


def build_dump(crashing_function: int) -> bytes:
    """A Linux amd64 dump: SIGSEGV in FUNCTIONS[i], called from main_loop, called from main."""
    dump = SynthMinidump(platform_id=PLATFORM_LINUX, arch=ARCH_AMD64, cpu_count=2)
    dump.add_module(APP_BASE, 0x10000, f"/usr/bin/{APP}", cv=cv_elf(BUILD_ID))
    # Frame-pointer chain: rbp -> [saved rbp, return address] twice, then a zero rbp.
    stack = bytearray(0x400)
    struct.pack_into("<QQ", stack, 0x100, STACK_BASE + 0x200, APP_BASE + 0x2010)
    struct.pack_into("<QQ", stack, 0x200, 0, APP_BASE + 0x3010)
    memory = dump.add_memory(STACK_BASE, bytes(stack))
    pc = APP_BASE + FUNCTIONS[crashing_function][0] + 0x10
    context = amd64_context(rip=pc, rsp=STACK_BASE + 0xF0, rbp=STACK_BASE + 0x100)
    dump.add_thread(4242, context, stack=memory)
    dump.set_exception(4242, code=11, flags=1, address=0x0, context=context)
    return dump.build()


def sample_crashes(count: int, symbols_dir: Path) -> list[tuple[dict[str, Any], dict[str, bytes]]]:
    write_symbols(symbols_dir)
    dumps = [build_dump(i % 3) for i in range(count)]
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    return [
        (
            {
                "ProductName": "DemoApp",
                "Version": f"1.{i % 3}.0",
                "ReleaseChannel": "release",
                "BuildID": "20261128000000",
                "ProcessType": "parent" if i % 2 == 0 else "content",
                "submitted_timestamp": now,
                "CrashTime": str(int(time.time())),
            },
            {"upload_file_minidump": dump},
        )
        for i, dump in enumerate(dumps)
    ]


def write_config(path: Path, data_dir: Path, workers: int, symbols_dir: Path) -> None:
    path.write_text(
        "[supervisor]\n"
        f"data_dir = {data_dir}\n"
        f"workers = {workers}\n"
        "deadline_s = 60\n"
        "graceful_timeout_s = 10\n"
        "[symbols]\n"
        f"paths = {symbols_dir}\n"
        "[logging]\nlevel = WARNING\n",
        encoding="utf-8",
    )


def wait_until_done(socket: Path, expected: int, proc: subprocess.Popen[bytes],
                    timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the supervisor exited early with code {proc.returncode}")
        try:
            status = request(socket, "status", timeout=5)["status"]
        except ControlError:
            time.sleep(0.1)
            continue
        finished = sum(q["acked"] + q["dead_lettered"] for q in status["queues"].values())
        if finished >= expected and not any(w["crash_id"] for w in status["workers"]):
            return status
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout:.0f}s; last status: {json.dumps(status)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("procsupervisor-data") / "demo")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()

    demo_dir = args.data_dir.absolute()
    shutil.rmtree(demo_dir, ignore_errors=True)
    data_dir, symbols_dir = demo_dir / "data", demo_dir / "symbols"
    data_dir.mkdir(parents=True)
    config_path = demo_dir / "demo.ini"
    write_config(config_path, data_dir, args.workers, symbols_dir)
    config = config_module.load(config_path, environ={})

    crash_ids = []
    for i, (raw_crash, dumps) in enumerate(sample_crashes(args.count, symbols_dir)):
        crash_ids.append(submit_crash(config, raw_crash, dumps, QUEUES[i % len(QUEUES)]))
    print(f"submitted {len(crash_ids)} crashes; starting the supervisor ({args.workers} workers)")

    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCSUPERVISOR_")}
    log_path = demo_dir / "supervisor.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "procsupervisor", "--config", str(config_path), "start"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            status = wait_until_done(config.supervisor.socket, len(crash_ids), proc, args.timeout)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)

    print()
    print(f"{'crash id':36}  {'outcome':8}  signature")
    for crash_id in crash_ids:
        path = data_dir / "crashes" / "v1" / "processed_crash" / crash_id
        if path.exists():
            processed = json.loads(path.read_text())
            outcome = "ok" if processed.get("success") else "failed"
            print(f"{crash_id}  {outcome:8}  {processed.get('signature', '')}")
        else:
            print(f"{crash_id}  {'missing':8}")
    print()
    print(render(status))
    print(f"\nsupervisor log: {log_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
