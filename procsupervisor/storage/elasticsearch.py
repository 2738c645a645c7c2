"""Elasticsearch destination: one document per crash in a weekly index (`socorro%Y%W`).

The index is created once per process with the mapping from `es_mapping`; the document holds
only fields that the mapping (and the live index's mapping) knows. When ES still rejects a
document because of one field, that field is removed, named in `removed_fields`, and the save
retried, up to `attempts` times; connection errors, timeouts and overload (429/502/503/504)
are retried with backoff. Unlike Socorro, a document that still cannot be indexed raises, so
the crash is retried through the queue instead of silently missing from search: as
BackendUnavailable when the cluster could not be reached or refused our credentials (the crash
then costs no attempt, docs/architecture.md §5), else as TransientStorageError.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from procsupervisor import crashid
from procsupervisor.health import Health, describe_cause
from procsupervisor.metrics import Metrics, NullMetrics
from procsupervisor.storage import crashjson, es_mapping
from procsupervisor.storage.base import (
    BackendUnavailable,
    CrashDestination,
    TransientStorageError,
)

log = logging.getLogger(__name__)

# Field names as ES 8 spells them in document errors.
FIELD_IN_BRACKETS_RE = re.compile(r"failed to parse field \[([^\]]+)\]")
IMMENSE_TERM_FIELD_RE = re.compile(r'immense term in field="([^"]+)"')
STRICT_FIELD_RE = re.compile(r"dynamic introduction of \[([^\]]+)\] within \[([^\]]+)\]")
OBJECT_FIELD_RE = re.compile(r"object mapping for \[([^\]]+)\]")
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
MISCONFIGURED_STATUS = frozenset({401, 403})
PROBE_TIMEOUT_S = 5.0


class ESCrashStorage(CrashDestination):
    name = "elasticsearch"

    def __init__(
        self,
        url: str,
        *,
        index: str = "socorro%Y%W",
        attempts: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 30.0,
        shards: int = 10,
        replicas: int = 1,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        ca_certs: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if not url:
            raise ValueError("elasticsearch destination needs a url")
        self.urls = [u.strip() for u in url.split(",") if u.strip()]
        self.index_template = index
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.settings = {"number_of_shards": shards, "number_of_replicas": replicas}
        self._auth: dict[str, Any] = {}
        if api_key:
            self._auth["api_key"] = api_key
        elif username:
            self._auth["basic_auth"] = (username, password or "")
        if ca_certs:
            self._auth["ca_certs"] = ca_certs
        self.metrics = metrics or NullMetrics()
        self.mapping = es_mapping.build_mapping()
        self._client: Any = None
        # index name -> leaf fields its live mapping has (indexes created by an older field
        # list lack newer fields, which must then be left out of the document)
        self._index_fields: dict[str, set[str]] = {}

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], *, data_dir: Path, metrics: Metrics
    ) -> ESCrashStorage:
        def get(key: str, default: str = "") -> str:
            return (options.get(key) or "").strip() or default

        return cls(
            get("url"),
            index=get("index", "socorro%Y%W"),
            attempts=int(get("attempts", "5")),
            backoff_s=float(get("backoff_s", "1.0")),
            timeout_s=float(get("timeout_s", "30")),
            shards=int(get("shards", "10")),
            replicas=int(get("replicas", "1")),
            username=get("username") or None,
            password=get("password") or None,
            api_key=get("api_key") or None,
            ca_certs=get("ca_certs") or None,
            metrics=metrics,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            from elasticsearch import Elasticsearch

            # Retries are ours (with backoff and metrics), so the transport makes none.
            self._client = Elasticsearch(
                self.urls,
                request_timeout=self.timeout_s,
                max_retries=0,
                retry_on_status=(),
                retry_on_timeout=False,
                **self._auth,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def probe(self) -> Health:
        """GET / once: is the cluster there, and does it take our credentials?"""
        from elasticsearch import ApiError, ConnectionTimeout
        from elasticsearch import ConnectionError as ESConnectionError

        try:
            self.client.options(request_timeout=min(self.timeout_s, PROBE_TIMEOUT_S)).info()
        except (ESConnectionError, ConnectionTimeout) as exc:
            return Health.unreachable(describe_cause(exc))
        except ApiError as exc:
            if exc.meta.status in MISCONFIGURED_STATUS:
                return Health.misconfigured(describe_cause(exc))
            return Health.unreachable(describe_cause(exc))
        except Exception as exc:
            return Health.unreachable(describe_cause(exc))
        return Health.healthy()

    # -- index -------------------------------------------------------------------------------

    def ensure_index(self, index: str) -> set[str]:
        """Create the index with our mapping if missing (once per process); its mapped fields."""
        known = self._index_fields.get(index)
        if known is not None:
            return known
        from elasticsearch import BadRequestError

        if not self.client.indices.exists(index=index):
            try:
                self.client.indices.create(
                    index=index, settings={"index": self.settings}, mappings=self.mapping
                )
            except BadRequestError as exc:
                # Another worker or host created it between our check and our create.
                if _error_type(exc) != "resource_already_exists_exception":
                    raise
        live = self.client.indices.get_mapping(index=index)
        mapping = next(iter(dict(live.body).values()), {}).get("mappings", {})
        fields = es_mapping.mapped_leaf_names(mapping)
        self._index_fields[index] = fields
        return fields

    # -- save --------------------------------------------------------------------------------

    def save_processed(
        self, raw_crash: Mapping[str, Any], processed_crash: Mapping[str, Any]
    ) -> None:
        from elasticsearch import ApiError, BadRequestError, ConnectionTimeout
        from elasticsearch import ConnectionError as ESConnectionError

        crash_id = crashjson.crash_id_of(raw_crash, processed_crash)
        index = es_mapping.index_name(
            self.index_template, processed_crash, crashid.date_of(crash_id)
        )
        document: dict[str, Any] | None = None
        removed: list[str] = []
        last_problem = "no attempt made"
        connection_error: Exception | None = None  # the last attempt could not reach ES
        for attempt in range(1, self.attempts + 1):
            started = time.perf_counter()
            try:
                fields = self.ensure_index(index)
                if document is None:
                    document = es_mapping.build_document(crash_id, processed_crash, only=fields)
                    size = len(crashjson.dumps(document))
                    self.metrics.histogram("processor.es.crash_document_size", size)
                self.client.index(index=index, id=crash_id, document=document)
            except (ESConnectionError, ConnectionTimeout) as exc:
                # A timeout is not a ConnectionError in the client's hierarchy, but it is the
                # same outage seen from here; indexing again by id is harmless if it did land.
                kind = "timeout" if isinstance(exc, ConnectionTimeout) else "connection"
                last_problem = f"{kind} error: {exc}"
                connection_error = exc
                self._failed(started, kind)
                self._pause(attempt)
                continue
            except BadRequestError as exc:
                field = field_from_error(exc)
                if document is None or field is None or not _remove_field(document, field):
                    self._failed(started, "unhandled")
                    raise TransientStorageError(f"elasticsearch rejected {crash_id}: {exc}")
                self._failed(started, _error_tag(exc))
                removed.append(field)
                document["removed_fields"] = " ".join(removed)
                last_problem = f"field {field} rejected"
                connection_error = None
                log.info("es removed field crash_id=%s field=%s", crash_id, field)
                continue
            except ApiError as exc:
                if exc.meta.status in MISCONFIGURED_STATUS:
                    self._failed(started, "unhandled")
                    raise BackendUnavailable(f"elasticsearch refused us: {exc}") from exc
                if exc.meta.status not in RETRYABLE_STATUS:
                    self._failed(started, "unhandled")
                    raise TransientStorageError(f"elasticsearch error for {crash_id}: {exc}")
                last_problem = f"status {exc.meta.status}"
                connection_error = None
                self._failed(started, f"status{exc.meta.status}")
                self._pause(attempt)
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.metrics.timing("processor.es.index", elapsed_ms, tags={"outcome": "successful"})
            return
        message = f"elasticsearch: {crash_id} not indexed after {self.attempts} attempts"
        if connection_error is not None:
            raise BackendUnavailable(f"{message} ({last_problem})") from connection_error
        raise TransientStorageError(f"{message} ({last_problem})")

    def _failed(self, started: float, error: str) -> None:
        """One failed attempt: its timing, and one `es.indexerror` tagged with what failed."""
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.metrics.timing("processor.es.index", elapsed_ms, tags={"outcome": "failed"})
        self.metrics.incr("processor.es.indexerror", tags={"error": error})

    def _pause(self, attempt: int) -> None:
        if attempt < self.attempts:
            time.sleep(min(self.backoff_s * 2 ** (attempt - 1), 30.0))
        # A dropped connection may mean a restarted cluster: re-check the index next time.
        self._index_fields.clear()


def _error_body(exc: Any) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return dict(body["error"])
    return {}


def _error_type(exc: Any) -> str:
    return str(_error_body(exc).get("type", ""))


def _error_texts(exc: Any) -> str:
    """Every reason in the error and its causes, newest first, as one string to search."""
    texts: list[str] = []
    node: Any = _error_body(exc)
    while isinstance(node, Mapping) and node:
        texts.append(f"{node.get('type', '')}: {node.get('reason', '')}")
        node = node.get("caused_by")
    for cause in _error_body(exc).get("root_cause", []) or []:
        if isinstance(cause, Mapping):
            texts.append(f"{cause.get('type', '')}: {cause.get('reason', '')}")
    return "\n".join(texts) or str(exc)


def _error_tag(exc: Any) -> str:
    text = _error_texts(exc)
    if "immense term" in text or "max_bytes_length_exceeded" in text:
        return "maxbyteslengthexceeded"
    if "number_format_exception" in text or "NumberFormatException" in text:
        return "numberformatexception"
    if "strict_dynamic_mapping_exception" in text:
        return "strictdynamicmapping"
    # Socorro's tag for object-versus-value conflicts.
    if "object mapping for" in text or "START_OBJECT" in text:
        return "unknownproperty"
    return "mapperparsing"


def field_from_error(exc: Any) -> str | None:
    """The dotted field name a document error blames, or None."""
    text = _error_texts(exc)
    for pattern in (IMMENSE_TERM_FIELD_RE, FIELD_IN_BRACKETS_RE, OBJECT_FIELD_RE):
        match = pattern.search(text)
        if match:
            return match.group(1)
    match = STRICT_FIELD_RE.search(text)
    if match:
        return f"{match.group(2)}.{match.group(1)}"
    return None


def _remove_field(document: dict[str, Any], field: str) -> bool:
    # ES names subfields like `signature.full`; the document holds `signature`.
    if field.endswith(".full"):
        field = field[: -len(".full")]
    if not field.startswith("processed_crash.") or field == "processed_crash":
        return False  # never strip crash_id or the whole crash
    return es_mapping.remove_path(document, field)
