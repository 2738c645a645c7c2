"""Stackwalker part: output (see workers/stackwalker/__init__.py).

`machine_readable.render` gives Breakpad's `minidump_stackwalk -m` text; `json_dump.render`
the processed `json_dump` in rust-minidump's JSON shape.
"""
