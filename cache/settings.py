"""The `[symbols]` configuration section, parsed and checked.

Keys (all optional):

- `cache_dir`: the shared cache directory (default `<data_dir>/symcache`; a relative path is
  taken from the data directory), created 0700.
- `cache_size_mb`: size limit of the disk cache in MiB (default 4096).
- `negative_ttl_s`: how long "no supplier has these symbols" is remembered (default 3600).
- `error_retry_s`: how long a worker waits before asking suppliers again after they failed
  (network error, 5xx) for a module (default 60); not stored on disk.
- `memory_lru_entries`, `memory_lru_mb`: bounds of each worker's LRU of loaded indexes
  (default 64 entries, 2048 MiB of mapped index).
- `paths`: local symbol directories in Breakpad layout, comma or newline separated.
- `urls`: HTTP(S) symbol servers, comma or newline separated.
- `s3_bucket`, `s3_prefix`, `s3_endpoint_url`, `s3_region`: an S3 bucket holding symbols.
- `http_timeout_s` (default 30), `http_retries` (default 3): per request, HTTP and S3.
- `max_download_mb`: largest symbol file accepted, compressed or not (default 2048).
- `lock_timeout_s`: how long a worker waits for another one downloading the same module
  before fetching it itself (default 300).
- `index_wait_s`: in the service, how long one crash waits in all for missing symbols that a
  background indexer is fetching and indexing (default 30); after that the crash is walked
  without them, with a note, and the indexing goes on for later crashes.
- `index_memory_mb`: the most memory (resident, of the process building it) an index build may
  take; a `.sym` file too big for it is refused with a note (default: `[supervisor]
  worker_max_rss_mb` in the service, else no limit).
- `index_s3_bucket`, `index_s3_prefix` (default `symidx`), `index_s3_endpoint_url`,
  `index_s3_region`: a shared second level for built indexes. A host that builds an index
  uploads it there; a host missing it downloads it instead of the `.sym` and parses nothing.

Suppliers are tried in this order: every path, every URL, then the S3 bucket.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
MIB = 1 << 20


class SymbolSettingsError(ValueError):
    """A `[symbols]` value is invalid; the message names the key."""


@dataclass(frozen=True)
class SymbolCacheSettings:
    cache_dir: Path
    cache_size_bytes: int = 4096 * MIB
    negative_ttl_s: float = 3600.0
    error_retry_s: float = 60.0
    memory_lru_entries: int = 64
    memory_lru_bytes: int = 2048 * MIB
    paths: tuple[Path, ...] = ()
    urls: tuple[str, ...] = ()
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    http_timeout_s: float = 30.0
    http_retries: int = 3
    max_download_bytes: int = 2048 * MIB
    lock_timeout_s: float = 300.0
    index_wait_s: float = 30.0
    index_memory_bytes: int | None = None
    index_s3_bucket: str = ""
    index_s3_prefix: str = "symidx"
    index_s3_endpoint_url: str | None = None
    index_s3_region: str | None = None

    @classmethod
    def from_section(
        cls,
        section: Mapping[str, str],
        data_dir: Path,
        default_index_memory_mb: float | None = None,
    ) -> SymbolCacheSettings:
        def get(key: str, convert: Callable[[str], T], default: T, minimum: float = 0) -> T:
            text = section.get(key, "").strip()
            if not text:
                return default
            try:
                value = convert(text)
            except ValueError:
                raise SymbolSettingsError(f"[symbols] {key}: not a valid value: {text!r}")
            if isinstance(value, int | float) and value < minimum:
                raise SymbolSettingsError(f"[symbols] {key}: must be at least {minimum}")
            return value

        cache_dir_text = section.get("cache_dir", "").strip()
        urls = tuple(split_list(section.get("urls", "")))
        for url in urls:
            if not re.match(r"^https?://[^/\s]+", url):
                raise SymbolSettingsError(f"[symbols] urls: not an http(s) URL: {url!r}")
        return cls(
            cache_dir=Path(data_dir) / (cache_dir_text or "symcache"),
            cache_size_bytes=int(get("cache_size_mb", float, 4096.0, 1) * MIB),
            negative_ttl_s=get("negative_ttl_s", float, 3600.0, 1),
            error_retry_s=get("error_retry_s", float, 60.0),
            memory_lru_entries=get("memory_lru_entries", int, 64, 1),
            memory_lru_bytes=int(get("memory_lru_mb", float, 2048.0) * MIB),
            paths=tuple(Path(p) for p in split_list(section.get("paths", ""))),
            urls=urls,
            s3_bucket=section.get("s3_bucket", "").strip(),
            s3_prefix=section.get("s3_prefix", "").strip(),
            s3_endpoint_url=section.get("s3_endpoint_url", "").strip() or None,
            s3_region=section.get("s3_region", "").strip() or None,
            http_timeout_s=get("http_timeout_s", float, 30.0, 0.001),
            http_retries=get("http_retries", int, 3),
            max_download_bytes=int(get("max_download_mb", float, 2048.0, 0.001) * MIB),
            lock_timeout_s=get("lock_timeout_s", float, 300.0),
            index_wait_s=get("index_wait_s", float, 30.0),
            index_memory_bytes=_mib(get("index_memory_mb", float, default_index_memory_mb, 1)),
            index_s3_bucket=section.get("index_s3_bucket", "").strip(),
            index_s3_prefix=section.get("index_s3_prefix", "").strip().strip("/") or "symidx",
            index_s3_endpoint_url=section.get("index_s3_endpoint_url", "").strip() or None,
            index_s3_region=section.get("index_s3_region", "").strip() or None,
        )


def _mib(megabytes: float | None) -> int | None:
    return None if megabytes is None else int(megabytes * MIB)


def split_list(text: str) -> list[str]:
    return [item.strip() for item in re.split(r"[,\n]", text) if item.strip()]
