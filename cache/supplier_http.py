"""HTTP(S) symbol servers: `<url>/<debug_file>/<debug_id>/<name>.sym`, then `.sym.gz`.

Redirects (Mozilla's Tecken answers 302 to a storage bucket) are followed. 404/403/410 mean
"not here"; 5xx, 429 and connection errors are retried with backoff, then reported as
SupplierError so that the cache does not record a negative entry for a server that is down.
"""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import requests
import urllib3

from procsupervisor.cache.download import stream_to_tempfile
from procsupervisor.cache.errors import ShortDownloadError, SupplierError
from procsupervisor.cache.supplier_base import FetchedSymbols
from procsupervisor.health import Health, describe_network_error

NOT_FOUND_STATUSES = frozenset({403, 404, 410})
_CHUNK = 1 << 20
_BACKOFF_FIRST_S = 0.2
_BACKOFF_MAX_S = 5.0
_PROBE_TIMEOUT_S = 5.0


def _retryable(status: int) -> bool:
    return status >= 500 or status == 429


class HttpSymbolServer:
    kind = "http"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        retries: int = 3,
        max_bytes: int = 2 << 30,
        session: requests.Session | None = None,
    ) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"symbol server URL must be http(s): {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.max_bytes = max_bytes
        self.session = session or requests.Session()

    def __repr__(self) -> str:
        return f"HttpSymbolServer({self.base_url!r})"

    def probe(self) -> Health:
        """HEAD the server's root once. Any answer below 500 will do: many symbol servers
        refuse to list their root (403, 404) and still serve files."""
        try:
            response = self.session.head(
                self.base_url + "/", timeout=min(self.timeout_s, _PROBE_TIMEOUT_S),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            netloc = urllib.parse.urlsplit(self.base_url).netloc
            return Health.unreachable(describe_network_error(exc, netloc))
        if _retryable(response.status_code):
            return Health.unreachable(f"HTTP {response.status_code} from {self.base_url}")
        return Health.healthy()

    def fetch(self, relpath: str, workdir: Path) -> FetchedSymbols | None:
        quoted = urllib.parse.quote(relpath, safe="/")
        for suffix in ("", ".gz"):
            url = f"{self.base_url}/{quoted}{suffix}"
            fetched = self._fetch_url(url, workdir, gzipped=bool(suffix))
            if fetched is not None:
                return fetched
        return None

    def _fetch_url(self, url: str, workdir: Path, *, gzipped: bool) -> FetchedSymbols | None:
        pause = _BACKOFF_FIRST_S
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(pause)
                pause = min(pause * 2, _BACKOFF_MAX_S)
            try:
                with self.session.get(url, stream=True, timeout=self.timeout_s) as response:
                    if response.status_code in NOT_FOUND_STATUSES:
                        return None
                    if _retryable(response.status_code):
                        last_problem = f"HTTP {response.status_code}"
                        continue
                    if response.status_code != 200:
                        raise SupplierError(f"{url}: unexpected HTTP {response.status_code}")
                    return self._save(response, url, workdir, gzipped=gzipped)
            except _TRANSIENT_ERRORS as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            except requests.RequestException as exc:
                raise SupplierError(f"{url}: {exc}") from exc
        raise SupplierError(f"{url}: {last_problem} after {self.retries + 1} attempts")

    def _save(
        self, response: requests.Response, url: str, workdir: Path, *, gzipped: bool
    ) -> FetchedSymbols:
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        length_header = response.headers.get("Content-Length")
        # The raw (still encoded) stream is read so Content-Length can be checked exactly.
        chunks = response.raw.stream(_CHUNK, decode_content=False)
        try:
            expected_size = int(length_header) if length_header else None
        except ValueError:
            expected_size = None
        path, received = stream_to_tempfile(
            chunks,
            workdir,
            expected_size=expected_size,
            gzipped=gzipped or encoding == "gzip",
            max_bytes=self.max_bytes,
            origin=url,
        )
        return FetchedSymbols(
            path=path,
            transferred_bytes=received,
            temporary=True,
            origin=url,
            etag=response.headers.get("ETag", ""),
        )


# Failures after which another attempt may succeed: a refused or cut connection, a timeout,
# a body cut short.
_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
    ShortDownloadError,
)
