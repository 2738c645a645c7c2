"""Streaming a download into a temp file that is only ever handed on when complete."""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from procsupervisor.cache.errors import ShortDownloadError, SupplierError

TEMP_DIR_NAME = "tmp"
TEMP_SUFFIX = ".sym.part"


def temp_dir(cache_dir: Path) -> Path:
    path = Path(cache_dir) / TEMP_DIR_NAME
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def stream_to_tempfile(
    chunks: Iterable[bytes],
    workdir: Path,
    *,
    expected_size: int | None,
    gzipped: bool,
    max_bytes: int,
    origin: str,
) -> tuple[Path, int]:
    """Write `chunks` (gunzipped if `gzipped`) to a new temp file in `workdir`.

    Returns (path, bytes received). Raises SupplierError, leaving no file behind, if the
    stream ends early (short of `expected_size`, or a gzip stream without its end), or if it
    exceeds `max_bytes` received or written.
    """
    fd, name = tempfile.mkstemp(dir=workdir, prefix="dl-", suffix=TEMP_SUFFIX)
    path = Path(name)
    received = 0
    written = 0
    decompressor = zlib.decompressobj(wbits=31) if gzipped else None
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                received += len(chunk)
                if received > max_bytes:
                    raise SupplierError(f"{origin}: larger than the {max_bytes} byte limit")
                if decompressor is not None:
                    # Bounded output per step so a gzip bomb cannot exhaust memory.
                    data = decompressor.decompress(chunk, max_bytes + 1 - written)
                    if decompressor.unconsumed_tail:
                        raise SupplierError(f"{origin}: expands beyond {max_bytes} bytes")
                else:
                    data = chunk
                written += len(data)
                if written > max_bytes:
                    raise SupplierError(f"{origin}: expands beyond {max_bytes} bytes")
                out.write(data)
            if decompressor is not None:
                out.write(decompressor.flush())
        if expected_size is not None and received != expected_size:
            raise ShortDownloadError(f"{origin}: got {received} of {expected_size} bytes")
        if decompressor is not None and not decompressor.eof:
            raise ShortDownloadError(f"{origin}: gzip stream ends early")
    except zlib.error as exc:
        path.unlink(missing_ok=True)
        raise SupplierError(f"{origin}: bad gzip data: {exc}") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, received
