"""Pure-Python minidump stackwalker (docs/architecture.md §8).

A library: it imports nothing of the service around it (cache, config, queues, storage,
supervisor, metrics, rules) nor the service's clients (tests/test_stackwalker_library.py). The
symbol cache (procsupervisor.cache), the worker's rules and the `stackwalk` command
(procsupervisor/stackwalk_command.py) build on it.

Parts, mirroring rust-minidump's split:
- `minidump`: the file format (streams, contexts, memory); `minidump.builder` writes it (tests,
  fuzzing, the demo).
- `symbols`: Breakpad `.sym` parsing into a compact, serializable index, the index codec a
  cache stores, Breakpad's symbol file layout and `DirectorySymbolProvider` for local roots.
- `unwind`: one unwinder per CPU, plus the per-thread walk loop.
- `output`: the processed `json_dump` and Breakpad's `-m` machine-readable text.
`model` holds the types these parts exchange; `api.walk_minidump` is the entry point.
"""
