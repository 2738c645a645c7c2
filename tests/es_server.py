"""A small Elasticsearch 8 protocol server for tests (no ES server installs on this machine).

It serves exactly what the `elasticsearch` destination's client calls: HEAD/PUT/DELETE index,
GET _mapping, PUT/POST _doc (index and _create), GET _doc, _refresh, _count and a minimal
_search, answering with the `X-Elastic-Product: Elasticsearch` header the v8 client checks. It
enforces the limits of a real cluster that matter to the destination:

- typed mappings: a value that does not parse as its mapped type is a 400
  `mapper_parsing_exception` naming the field (numbers, dates, booleans, objects vs values);
- `dynamic: strict` refuses unmapped fields, `false` ignores them, `true` maps them (strings as
  text + keyword subfield, as ES does) subject to the total-fields limit;
- keyword terms over 32,766 UTF-8 bytes: 400 "Document contains at least one immense term";
- more than 1000 mapped fields: 400 `illegal_argument_exception` "Limit of total fields [1000]
  has been exceeded";
- unknown analyzers and field types in a mapping are refused.

`fail_next(n, mode)` makes the next n document writes fail: `status` answers 503, `drop` closes
the connection without an answer (a connection error in the client), `slow` holds the answer for
`slow_s` seconds (a timeout in a client with a shorter one) and then indexes the document.
"""

from __future__ import annotations

import copy
import datetime as dt
import fnmatch
import json
import math
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOTAL_FIELDS_LIMIT = 1000
MAX_TERM_BYTES = 32_766
KNOWN_TYPES = {
    "keyword",
    "text",
    "long",
    "integer",
    "short",
    "byte",
    "double",
    "float",
    "date",
    "boolean",
    "object",
}
BUILTIN_ANALYZERS = {"standard", "simple", "whitespace", "keyword", "english", "stop"}
INTEGER_RANGES = {
    "long": (-(2**63), 2**63 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
}
INDEX_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")


class ESError(Exception):
    def __init__(self, status: int, error_type: str, reason: str, caused_by: dict | None = None):
        super().__init__(reason)
        self.status = status
        self.body: dict[str, Any] = {
            "error": {
                "root_cause": [{"type": error_type, "reason": reason}],
                "type": error_type,
                "reason": reason,
            },
            "status": status,
        }
        if caused_by:
            self.body["error"]["caused_by"] = caused_by


class Index:
    def __init__(self, name: str, mappings: dict[str, Any], settings: dict[str, Any]) -> None:
        self.name = name
        self.mappings = mappings
        self.settings = settings
        self.docs: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}


class FakeElasticsearch:
    """The cluster state and the rules; the HTTP layer is in `_Handler`."""

    def __init__(self, parsing_error_type: str = "mapper_parsing_exception") -> None:
        self.indices: dict[str, Index] = {}
        self.lock = threading.Lock()
        self.parsing_error_type = parsing_error_type
        self.failures: list[str] = []
        self.slow_s = 3.0  # how long a `slow` failure holds its answer
        self.requests: list[tuple[str, str]] = []
        self.index_requests = 0

    # -- failure injection -----------------------------------------------------------------

    def fail_next(self, count: int, mode: str = "status") -> None:
        if mode not in ("status", "drop", "slow"):
            raise ValueError(mode)
        with self.lock:
            self.failures.extend([mode] * count)

    def take_failure(self) -> str | None:
        with self.lock:
            return self.failures.pop(0) if self.failures else None

    # -- indices ---------------------------------------------------------------------------

    def create_index(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if not INDEX_NAME_RE.match(name):
            raise ESError(400, "invalid_index_name_exception", f"Invalid index name [{name}]")
        mappings = copy.deepcopy(body.get("mappings") or {"dynamic": "true", "properties": {}})
        settings = body.get("settings") or {}
        analyzers = set(BUILTIN_ANALYZERS)
        analysis = (settings.get("index", settings)).get("analysis", {})
        analyzers |= set(analysis.get("analyzer", {}))
        self._check_mapping(mappings.get("properties", {}), "", analyzers)
        fields = count_fields(mappings)
        if fields > TOTAL_FIELDS_LIMIT:
            raise ESError(
                400,
                "illegal_argument_exception",
                f"Limit of total fields [{TOTAL_FIELDS_LIMIT}] has been exceeded",
            )
        with self.lock:
            if name in self.indices:
                raise ESError(
                    400,
                    "resource_already_exists_exception",
                    f"index [{name}/abc] already exists",
                )
            self.indices[name] = Index(name, mappings, settings)
        return {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _check_mapping(self, properties: dict[str, Any], prefix: str, analyzers: set[str]) -> None:
        for name, spec in properties.items():
            path = f"{prefix}{name}"
            field_type = spec.get("type", "object" if "properties" in spec else None)
            if field_type not in KNOWN_TYPES:
                raise ESError(
                    400,
                    "mapper_parsing_exception",
                    f"No handler for type [{field_type}] declared on field [{path}]",
                )
            analyzer = spec.get("analyzer")
            if analyzer is not None and (field_type != "text" or analyzer not in analyzers):
                raise ESError(
                    400,
                    "mapper_parsing_exception",
                    f"analyzer [{analyzer}] has not been configured in mappings",
                )
            if "properties" in spec:
                self._check_mapping(spec["properties"], f"{path}.", analyzers)

    def get_index(self, name: str) -> Index:
        index = self.indices.get(name)
        if index is None:
            raise ESError(404, "index_not_found_exception", f"no such index [{name}]")
        return index

    def matching(self, pattern: str) -> list[Index]:
        names = [p for p in pattern.split(",") if p]
        found = [i for n, i in self.indices.items() if any(fnmatch.fnmatch(n, p) for p in names)]
        if not found and not any("*" in p for p in names):
            raise ESError(404, "index_not_found_exception", f"no such index [{pattern}]")
        return found

    # -- documents -------------------------------------------------------------------------

    def index_document(
        self, name: str, doc_id: str, document: Any, create_only: bool = False
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.index_requests += 1
            if name not in self.indices:
                # ES auto-creates a missing index with dynamic mapping.
                self.indices[name] = Index(name, {"dynamic": "true", "properties": {}}, {})
            index = self.indices[name]
            if not isinstance(document, dict):
                raise ESError(400, self.parsing_error_type, "failed to parse, document is empty")
            mappings = copy.deepcopy(index.mappings)
            parser = _DocumentParser(self.parsing_error_type, doc_id)
            parser.parse_object(mappings, document, "", mappings.get("dynamic", "true"))
            if parser.added and count_fields(mappings) > TOTAL_FIELDS_LIMIT:
                raise ESError(
                    400,
                    "illegal_argument_exception",
                    f"Limit of total fields [{TOTAL_FIELDS_LIMIT}] has been exceeded while "
                    f"adding new fields [{parser.added}]",
                )
            if create_only and doc_id in index.docs:
                raise ESError(
                    409,
                    "version_conflict_engine_exception",
                    f"[{doc_id}]: version conflict, document already exists",
                )
            index.mappings = mappings
            existed = doc_id in index.docs
            index.docs[doc_id] = copy.deepcopy(document)
            index.versions[doc_id] = index.versions.get(doc_id, 0) + 1
            result = {
                "_index": name,
                "_id": doc_id,
                "_version": index.versions[doc_id],
                "result": "updated" if existed else "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": index.versions[doc_id] - 1,
                "_primary_term": 1,
            }
            return (200 if existed else 201), result


def count_fields(mappings: dict[str, Any]) -> int:
    """Mapped fields as ES counts them for the limit: objects, leaves and multi-fields."""
    total = 0
    for spec in mappings.get("properties", {}).values():
        total += 1
        total += len(spec.get("fields", {}))
        if "properties" in spec:
            total += count_fields(spec)
    return total


class _DocumentParser:
    def __init__(self, error_type: str, doc_id: str) -> None:
        self.error_type = error_type
        self.doc_id = doc_id
        self.added = 0

    def fail(self, path: str, field_type: str, value: Any, cause: dict | None = None) -> ESError:
        preview = str(value)[:40]
        return ESError(
            400,
            self.error_type,
            f"[1:2] failed to parse field [{path}] of type [{field_type}] in document with id "
            f"'{self.doc_id}'. Preview of field's value: '{preview}'",
            caused_by=cause,
        )

    def parse_object(self, spec: dict[str, Any], value: Any, prefix: str, dynamic: str) -> None:
        properties = spec.setdefault("properties", {})
        dynamic = str(spec.get("dynamic", dynamic)).lower()
        for key, item in value.items():
            path = f"{prefix}{key}"
            if key not in properties:
                if item is None:
                    continue
                if dynamic == "strict":
                    parent = prefix[:-1] or "_doc"
                    raise ESError(
                        400,
                        "strict_dynamic_mapping_exception",
                        f"[1:2] mapping set to strict, dynamic introduction of [{key}] within "
                        f"[{parent}] is not allowed",
                    )
                if dynamic == "false":
                    continue
                properties[key] = self.infer(item)
            self.parse_value(properties[key], item, path, dynamic)

    def infer(self, value: Any) -> dict[str, Any]:
        if isinstance(value, list):
            first = next((v for v in value if v is not None), "")
            return self.infer(first)
        self.added += 1
        if isinstance(value, dict):
            return {"type": "object", "properties": {}}
        if isinstance(value, bool):
            return {"type": "boolean"}
        if isinstance(value, int):
            return {"type": "long"}
        if isinstance(value, float):
            return {"type": "float"}
        self.added += 1
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}

    def parse_value(self, spec: dict[str, Any], value: Any, path: str, dynamic: str) -> None:
        if value is None:
            return
        if isinstance(value, list):
            for item in value:
                self.parse_value(spec, item, path, dynamic)
            return
        field_type = spec.get("type", "object" if "properties" in spec else "object")
        if field_type == "object":
            if not isinstance(value, dict):
                raise ESError(
                    400,
                    self.error_type,
                    f"object mapping for [{path}] tried to parse field [{path.rsplit('.', 1)[-1]}]"
                    " as object, but found a concrete value",
                )
            self.parse_object(spec, value, f"{path}.", dynamic)
            return
        if isinstance(value, dict):
            raise self.fail(
                path,
                field_type,
                value,
                {"type": "illegal_state_exception", "reason": "Can't get text on a START_OBJECT"},
            )
        if field_type in ("keyword", "text"):
            text = json.dumps(value) if isinstance(value, bool) else str(value)
            if field_type == "keyword":
                ignore_above = spec.get("ignore_above")
                if ignore_above is not None and len(text) > ignore_above:
                    return
                size = len(text.encode("utf-8", "surrogatepass"))
                if size > MAX_TERM_BYTES:
                    raise ESError(
                        400,
                        "illegal_argument_exception",
                        f'Document contains at least one immense term in field="{path}" (whose '
                        f"UTF8 encoding is longer than the max length {MAX_TERM_BYTES}), all of "
                        "which were skipped. Please correct the analyzer to not produce such "
                        "terms.",
                        caused_by={
                            "type": "max_bytes_length_exceeded_exception",
                            "reason": f"bytes can be at most {MAX_TERM_BYTES} in length; "
                            f"got {size}",
                        },
                    )
            for sub in spec.get("fields", {}).values():
                self.parse_value(sub, value, path, dynamic)
            return
        if field_type in INTEGER_RANGES:
            self.parse_integer(field_type, value, path)
            return
        if field_type in ("double", "float"):
            number = self.parse_number(field_type, value, path)
            if not math.isfinite(number):
                raise self.fail(
                    path,
                    field_type,
                    value,
                    {"type": "illegal_argument_exception", "reason": "supports only finite values"},
                )
            return
        if field_type == "boolean":
            if value not in (True, False, "true", "false", ""):
                raise self.fail(
                    path,
                    field_type,
                    value,
                    {
                        "type": "illegal_argument_exception",
                        "reason": f"Failed to parse value [{value}] as only [true] or [false] "
                        "are allowed.",
                    },
                )
            return
        if field_type == "date":
            self.parse_date(value, path)
            return

    def parse_number(self, field_type: str, value: Any, path: str) -> float:
        if isinstance(value, bool):
            raise self.fail(
                path,
                field_type,
                value,
                {"type": "illegal_argument_exception", "reason": "Current token not numeric"},
            )
        try:
            return float(value)
        except (TypeError, ValueError):
            raise self.fail(
                path,
                field_type,
                value,
                {"type": "number_format_exception", "reason": f'For input string: "{value}"'},
            )

    def parse_integer(self, field_type: str, value: Any, path: str) -> None:
        number = self.parse_number(field_type, value, path)
        low, high = INTEGER_RANGES[field_type]
        if not math.isfinite(number) or not low <= int(number) <= high:
            raise self.fail(
                path,
                field_type,
                value,
                {
                    "type": "illegal_argument_exception",
                    "reason": f"Value [{value}] is out of range for a {field_type}",
                },
            )

    def parse_date(self, value: Any, path: str) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            return  # epoch_millis
        if isinstance(value, str):
            try:
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
                return
            except ValueError:
                pass
        raise self.fail(
            path,
            "date",
            value,
            {
                "type": "illegal_argument_exception",
                "reason": f"failed to parse date field [{value}] with format "
                "[strict_date_optional_time||epoch_millis]",
            },
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed
        pass

    def _reply(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)

        def refuse_constant(name: str) -> Any:
            raise ESError(400, "x_content_parse_exception", f"non-finite number {name}")

        try:
            return json.loads(raw, parse_constant=refuse_constant)
        except ValueError:
            raise ESError(400, "x_content_parse_exception", "Failed to parse JSON body")

    def _dispatch(self) -> None:
        es = self.server.es
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        params = parse_qs(url.query)
        es.requests.append((self.command, url.path))
        try:
            body = self._body()
            self._route(es, self.command, parts, params, body)
        except ESError as exc:
            self._reply(exc.status, exc.body)
        except _Dropped:
            self.close_connection = True
        except Exception as exc:  # a bug in this fake must show as an error, not a hang
            self._reply(500, {"error": {"type": "fake_server_bug", "reason": repr(exc)}})

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _dispatch  # noqa: N815

    def _route(
        self,
        es: FakeElasticsearch,
        method: str,
        parts: list[str],
        params: dict[str, list[str]],
        body: Any,
    ) -> None:
        if not parts:
            self._reply(200, {"version": {"number": "8.11.0"}, "tagline": "You Know, for Search"})
            return
        name = parts[0]
        if len(parts) == 1:
            if method == "HEAD":
                self._reply(200 if name in es.indices else 404)
            elif method == "PUT":
                self._reply(200, es.create_index(name, body or {}))
            elif method == "DELETE":
                with es.lock:
                    es.get_index(name)
                    del es.indices[name]
                self._reply(200, {"acknowledged": True})
            elif method == "GET":
                index = es.get_index(name)
                self._reply(200, {name: {"mappings": index.mappings, "settings": index.settings}})
            else:
                raise ESError(405, "method_not_allowed", method)
            return
        action = parts[1]
        if action == "_mapping" and method == "GET":
            self._reply(200, {i.name: {"mappings": i.mappings} for i in es.matching(name)})
        elif action == "_refresh":
            self._reply(200, {"_shards": {"total": 1, "successful": 1, "failed": 0}})
        elif action == "_count":
            self._reply(200, {"count": sum(len(i.docs) for i in es.matching(name))})
        elif action == "_search":
            self._reply(200, search(es.matching(name), body or {}))
        elif action in ("_doc", "_create") and method in ("PUT", "POST") and len(parts) == 3:
            failure = es.take_failure()
            if failure == "drop":
                self.connection.shutdown(2)
                raise _Dropped()
            if failure == "status":
                raise ESError(503, "unavailable_shards_exception", "injected failure")
            if failure == "slow":
                time.sleep(es.slow_s)
            create_only = action == "_create" or params.get("op_type") == ["create"]
            status, result = es.index_document(name, parts[2], body, create_only)
            self._reply(status, result)
        elif action == "_doc" and method == "GET" and len(parts) == 3:
            index = es.get_index(name)
            if parts[2] not in index.docs:
                self._reply(404, {"_index": name, "_id": parts[2], "found": False})
            else:
                self._reply(
                    200,
                    {
                        "_index": name,
                        "_id": parts[2],
                        "found": True,
                        "_source": index.docs[parts[2]],
                    },
                )
        else:
            raise ESError(400, "illegal_argument_exception", f"unsupported {method} {parts}")


class _Dropped(Exception):
    pass


def search(indices: list[Index], body: dict[str, Any]) -> dict[str, Any]:
    """match_all, ids and term on top-level crash_id: what the tests ask."""
    query = body.get("query") or {"match_all": {}}
    hits = []
    for index in indices:
        for doc_id, source in index.docs.items():
            if "ids" in query and doc_id not in query["ids"]["values"]:
                continue
            if "term" in query:
                ((field, wanted),) = query["term"].items()
                wanted = wanted.get("value") if isinstance(wanted, dict) else wanted
                if source.get(field) != wanted:
                    continue
            hits.append({"_index": index.name, "_id": doc_id, "_source": source})
    size = int(body.get("size", 10))
    return {
        "took": 1,
        "timed_out": False,
        "hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits[:size]},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    es: FakeElasticsearch


class ESServer:
    """Runs `FakeElasticsearch` on a loopback port in a background thread."""

    def __init__(self, parsing_error_type: str = "mapper_parsing_exception") -> None:
        self.es = FakeElasticsearch(parsing_error_type)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.es = self.es
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ESServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ESServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """Run standalone (for the e2e benchmark): `python tests/es_server.py PORT`."""
    import sys

    server = ESServer()
    server._server.server_close()
    server._server = _Server(("127.0.0.1", int(sys.argv[1])), _Handler)
    server._server.es = server.es
    print(f"fake elasticsearch on 127.0.0.1:{sys.argv[1]}", flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
