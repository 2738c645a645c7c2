"""Shared on-disk symbol cache and symbol suppliers. Installed as `procsupervisor.cache`.

Entry points (docs/architecture.md §9):
- `provider.provider_from_config(symbols_section, data_dir, metrics, background=...)`: a
  worker's `CachingSymbolProvider` (keys of `[symbols]` in `settings`); `.get_symbols(module)`,
  `.start_crash()`, `.stats()`, `.close()`.
- `provider.build_provider(symbol_paths, cache_dir)`: for the `stackwalk` command; without a
  cache_dir, the stackwalker's plain `DirectorySymbolProvider`.
- `cli.cache`: the `procsupervisor cache stats|prune` click group; `symbols_cli.symbols`: the
  `procsupervisor symbols warm` command (`warm`).

Parts: `store` (diskcache directory, bytes only via `disk`, vetted by `directory`), `locks`
(single-flight), `memory_lru`, `fill` (making one index: shared store, suppliers, memory budget),
`background` (indexer processes for the service's misses), `shared_index` and
`shared_index_s3` (the shared second level of indexes), suppliers (`supplier_local`,
`supplier_http`, `supplier_s3`, streaming through `download`), `counters` and `shared_counters`
(statsd and host-wide totals). It builds on the stackwalker's `symbols` package (index codec,
path rule, path safety), never the other way round.
"""
