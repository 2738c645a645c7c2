"""Exceptions raised by the symbol cache and its suppliers."""

from __future__ import annotations


class SymbolCacheError(Exception):
    """Base class of the symbol cache's errors."""


class CacheDirectoryError(SymbolCacheError):
    """The cache directory is unsafe (wrong owner, group/world-writable) or unusable."""


class NotBytesError(SymbolCacheError, TypeError):
    """Something other than a str key or a bytes value was handed to the bytes-only Disk."""


class SupplierError(SymbolCacheError):
    """A supplier failed in a way that says nothing about whether the symbols exist
    (network error, 5xx after retries, truncated download). Never cached negatively."""


class ShortDownloadError(SupplierError):
    """A download ended before its announced length or its gzip trailer: worth a retry."""
