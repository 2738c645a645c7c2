"""json_dump against rust-minidump's own `minidump-stackwalk --json` snapshots in testdata.

Only the fields whose meaning both share are compared: frames (module, function, file, line,
offsets, trust, inlines, missing_symbols) and modules. Known, deliberate differences: the crash
reason and os_ver follow Breakpad, and Breakpad drops the dump-writing thread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from procsupervisor.workers.stackwalker.api import walk_minidump
from procsupervisor.workers.stackwalker.minidump.dump import Minidump
from procsupervisor.workers.stackwalker.symbols import DirectorySymbolProvider

CASES = [
    ("json-pretty-symbols", "rust-minidump/test.dmp", "rust-minidump/symbols"),
    ("macos_inlines_json_pretty", "rust-minidump/pipeline-inlines-macos-segv.dmp",
     "rust-minidump/symbols"),
    ("linux_json_pretty", "rust-minidump/linux-mini.dmp", None),
]  # fmt: skip
FRAME_KEYS = (
    "frame", "module", "function", "file", "line", "offset", "module_offset",
    "function_offset", "trust", "inlines", "missing_symbols", "registers",
)  # fmt: skip
MODULE_KEYS = ("base_addr", "end_addr", "filename", "code_id", "debug_file", "debug_id", "version")


def snapshot(testdata: Path, name: str) -> dict[str, Any]:
    text = (testdata / f"rust-minidump/snapshots/test_minidump_stackwalk__{name}.snap").read_text()
    return json.loads(text.split("---\n", 2)[2])


@pytest.mark.parametrize(("name", "dump", "symbols"), CASES)
def test_matches_rust_minidump(testdata: Path, name: str, dump: str, symbols: str | None) -> None:
    want = snapshot(testdata, name)
    provider = DirectorySymbolProvider([testdata / symbols]) if symbols else None
    data = (testdata / dump).read_bytes()
    got = walk_minidump(data, provider).to_json_dump()

    assert got["status"] == want["status"] == "OK"
    assert got["main_module"] == want["main_module"]
    assert got["system_info"]["cpu_info"] == want["system_info"]["cpu_info"]
    assert got["crash_info"]["address"] == want["crash_info"]["address"]
    assert got["crash_info"]["crashing_thread"] == want["crash_info"]["crashing_thread"]
    assert got["lsb_release"] == want["lsb_release"]

    want_modules = {m["filename"]: m for m in want["modules"]}
    for module in got["modules"]:
        expected = want_modules[module["filename"]]
        assert {k: module[k] for k in MODULE_KEYS} == {k: expected[k] for k in MODULE_KEYS}

    info = Minidump(data).breakpad_info
    dump_thread = info.dump_thread_id if info else None
    want_threads = {t["thread_id"]: t for t in want["threads"]}
    assert [t["thread_id"] for t in got["threads"]] == [
        tid for tid in want_threads if tid != dump_thread
    ]
    for got_thread in got["threads"]:
        want_thread = want_threads[got_thread["thread_id"]]
        assert len(got_thread["frames"]) == len(want_thread["frames"])
        for want_frame, got_frame in zip(want_thread["frames"], got_thread["frames"], strict=True):
            keys = [k for k in FRAME_KEYS if k in want_frame]
            assert {k: got_frame.get(k) for k in keys} == {k: want_frame[k] for k in keys}
