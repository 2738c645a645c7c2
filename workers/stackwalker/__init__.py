"""Pure-Python minidump stackwalker (DESIGN.md section 8).

Parts, mirroring rust-minidump's split:
- `minidump`: the file format (streams, contexts, memory).
- `symbols`: Breakpad `.sym` parsing into a compact, serializable index.
- `unwind`: one unwinder per CPU, plus the per-thread walk loop.
- `output`: the processed `json_dump` and Breakpad's `-m` machine-readable text.
`model` holds the types these parts exchange.
"""
