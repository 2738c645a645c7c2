"""Stackwalker part: minidump (see workers/stackwalker/__init__.py).

`dump.Minidump` opens a file (header and directory only) and parses each stream on first use.
One module per job: `reader` (bounds-checked reads), `header`, `lists` (count + entries with
the old Mac padding), `threads`, `modules` (CodeView identities), `memory`, `exception`,
`system_info`, `misc_info`, `breakpad_streams`, `crashpad`, `linux_streams`, `mac_streams`,
`context` (CPU contexts), `crash_reason` (Breakpad's reason and address strings) and
`module_map` (Breakpad's address -> module range map).
"""
