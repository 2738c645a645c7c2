"""The real version of beta and aurora builds (Socorro's BetaVersionRule): Firefox betas report
"NN.0" whatever beta they are, so the version is looked up by product, channel and build id.

Off unless a version source is configured (processor options `beta_version_api`, an HTTP
service answering like crash-stats' VersionString API, or `beta_version_file`, a local JSON
file with the same rows). When the lookup finds nothing, the version gets a "b0" suffix so it
still sorts with its channel.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import requests

from procsupervisor.metrics import Metrics
from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import as_str

SUPPORTED_PRODUCTS = ("Firefox", "Thunderbird")
CHANNELS = ("beta", "aurora")
HTTP_TIMEOUT_S = 5.0
CACHE_ENTRIES = 5000
# A miss may be a build the service does not know yet: ask again soon. A hit never changes.
MISS_TTL_S = 30 * 60
HIT_TTL_S = 24 * 60 * 60


class VersionSource(Protocol):
    def lookup(self, product: str, channel: str, build_id: str) -> str | None:
        """The version string of that build, or None when the source does not know it."""


def first_version_string(hits: Any) -> str | None:
    if isinstance(hits, list) and hits and isinstance(hits[0], dict):
        version = hits[0].get("version_string")
        return version if isinstance(version, str) and version else None
    return None


class HttpVersionSource:
    """GET `url?product=&channel=&build_id=` -> `{"hits": [{"version_string": ...}, ...]}`.
    A non-200 answer is "unknown"; a network failure raises (the rule fails with a note and
    the version stays as reported, as in Socorro)."""

    def __init__(self, url: str, session: requests.Session | None = None) -> None:
        self.url = url
        self.session = session or requests.Session()

    def lookup(self, product: str, channel: str, build_id: str) -> str | None:
        response = self.session.get(
            self.url,
            params={"product": product, "channel": channel, "build_id": build_id},
            timeout=HTTP_TIMEOUT_S,
        )
        if response.status_code != 200:
            return None
        try:
            answer = response.json()
        except ValueError:
            return None
        return first_version_string(answer.get("hits") if isinstance(answer, dict) else None)


class FileVersionSource:
    """A JSON list of `{"product", "channel", "build_id", "version_string"}` rows (the API's
    hits), read once; a later row for the same build wins."""

    def __init__(self, path: Path) -> None:
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"beta version file {path}: {exc}") from None
        if not isinstance(rows, list):
            raise ValueError(f"beta version file {path}: expected a JSON list of rows")
        self.versions: dict[tuple[str, str, str], str] = {}
        for row in rows:
            version = first_version_string([row])
            if version is None:
                raise ValueError(f"beta version file {path}: a row without version_string")
            key = (str(row.get("product")), str(row.get("channel")), str(row.get("build_id")))
            self.versions[key] = version

    def lookup(self, product: str, channel: str, build_id: str) -> str | None:
        return self.versions.get((product, channel, build_id))


def version_source(options: Mapping[str, str]) -> VersionSource | None:
    """From the processor options; None (rule off) when neither is set."""
    url = options.get("beta_version_api") or ""
    path = options.get("beta_version_file") or ""
    if url and path:
        raise ValueError(
            "processor options beta_version_api and beta_version_file exclude each other"
        )
    if url:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"processor option 'beta_version_api': not an http(s) URL: {url!r}")
        return HttpVersionSource(url)
    if path:
        return FileVersionSource(Path(path))
    return None


class ExpiringCache:
    """At most `size` answers (None included), each until its own expiry; oldest out first."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, str | None]:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock():
            self._entries.pop(key, None)
            return False, None
        return True, entry[1]

    def set(self, key: str, value: str | None, ttl_s: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self.clock() + ttl_s, value)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class BetaVersionRule(Rule):
    def __init__(self, source: VersionSource, metrics: Metrics) -> None:
        self.source = source
        self.metrics = metrics
        self.cache = ExpiringCache(CACHE_ENTRIES)

    def predicate(self, ctx: CrashContext) -> bool:
        channel = ctx.processed.get("release_channel")
        return (
            ctx.processed.get("product") in SUPPORTED_PRODUCTS
            and isinstance(channel, str)
            and channel.lower() in CHANNELS
            and isinstance(ctx.processed.get("version"), str)
        )

    def _real_version(self, product: str, channel: str, build_id: str) -> str | None:
        # archive.mozilla.org files Firefox aurora builds since mid-2017 as DevEdition.
        if (product, channel) == ("Firefox", "aurora") and build_id > "20170601":
            product = "DevEdition"
        key = f"{product}:{channel}:{build_id}"
        cached, version = self.cache.get(key)
        self.metrics.incr(
            "processor.betaversionrule.cache", tags={"result": "hit" if cached else "miss"}
        )
        if cached:
            return version
        version = self.source.lookup(product, channel, build_id)
        self.metrics.incr(
            "processor.betaversionrule.lookup", tags={"result": "success" if version else "fail"}
        )
        self.cache.set(key, version, HIT_TTL_S if version else MISS_TTL_S)
        return version

    def action(self, ctx: CrashContext) -> None:
        product = ctx.processed["product"]
        channel = ctx.processed["release_channel"].lower()
        build_id = as_str(ctx.processed.get("build"), max_length=100) or ""
        if build_id:
            real_version = self._real_version(product, channel, build_id)
            if real_version:
                ctx.processed["version"] = real_version
                return
        ctx.processed["version"] += "b0"
        ctx.add_note(
            f'release channel is {channel} but no version data was found - added "b0" '
            "suffix to version number"
        )
