"""HTTP and S3 suppliers against real local servers: layout, gzip, redirects, retries, damage."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from _cache_helpers import Route, make_module, make_provider, running_server, sym_relpath, sym_text
from conftest import free_port

from procsupervisor.cache.download import temp_dir
from procsupervisor.cache.errors import SupplierError
from procsupervisor.cache.supplier_http import HttpSymbolServer
from procsupervisor.cache.supplier_s3 import S3SymbolSupplier, make_s3_client

MOD = make_module("xul.pdb", "44E4EC8C2F41492B9369D6B9A059577C2")
REL = sym_relpath(MOD)


def _workdir(tmp_path: Path) -> Path:
    return temp_dir(tmp_path)


def test_relpath_follows_breakpad_layout() -> None:
    assert REL == "xul.pdb/44E4EC8C2F41492B9369D6B9A059577C2/xul.sym"


def test_http_plain_gzip_redirect(tmp_path: Path) -> None:
    body = sym_text(MOD)
    with running_server() as server:
        server.add_sym(REL, body)
        fetched = HttpSymbolServer(server.url).fetch(REL, _workdir(tmp_path))
        assert fetched is not None and fetched.path.read_bytes() == body
        assert fetched.temporary and fetched.transferred_bytes == len(body)

    with running_server() as server:
        server.add_gzipped(REL, body)
        fetched = HttpSymbolServer(server.url + "/").fetch(REL, _workdir(tmp_path))
        assert fetched is not None and fetched.path.read_bytes() == body
        assert server.count(REL) == 1 and server.count(REL + ".gz") == 1

    with running_server() as server:
        server.add(REL, Route(status=302, headers={"Location": "/store/blob"}))
        server.add(
            "store/blob", Route(body=gzip.compress(body), headers={"Content-Encoding": "gzip"})
        )
        fetched = HttpSymbolServer(server.url).fetch(REL, _workdir(tmp_path))
        assert fetched is not None and fetched.path.read_bytes() == body


def test_http_retries_server_errors(tmp_path: Path) -> None:
    with running_server() as server:
        server.add_sym(REL, sym_text(MOD), fail_first=2)
        fetched = HttpSymbolServer(server.url, retries=2).fetch(REL, _workdir(tmp_path))
        assert fetched is not None and server.count(REL) == 3


def test_http_gives_up_after_retries(tmp_path: Path) -> None:
    with running_server() as server:
        server.add_sym(REL, b"", fail_first=100)
        with pytest.raises(SupplierError, match="HTTP 503 after 2 attempts"):
            HttpSymbolServer(server.url, retries=1).fetch(REL, _workdir(tmp_path))
        assert server.count(REL) == 2


def test_http_truncated_download_never_leaves_a_file(tmp_path: Path) -> None:
    workdir = _workdir(tmp_path)
    with running_server() as server:
        server.add_sym(REL, sym_text(MOD, 50_000), cut_after=10_000)
        with pytest.raises(SupplierError):
            HttpSymbolServer(server.url, retries=1).fetch(REL, workdir)
        assert server.count(REL) == 2
    with running_server() as server:
        server.add(REL + ".gz", Route(body=gzip.compress(sym_text(MOD, 50_000))[:-12]))
        with pytest.raises(SupplierError, match="gzip"):
            HttpSymbolServer(server.url, retries=0).fetch(REL, workdir)
    assert list(workdir.iterdir()) == []


def test_http_timeout_and_size_limit(tmp_path: Path) -> None:
    with running_server() as server:
        server.add_sym(REL, sym_text(MOD), delay_s=1.0)
        with pytest.raises(SupplierError, match="Timeout"):
            HttpSymbolServer(server.url, timeout_s=0.2, retries=0).fetch(REL, _workdir(tmp_path))
    with running_server() as server:
        server.add_gzipped(REL, b"MODULE " + bytes(5_000_000))
        with pytest.raises(SupplierError, match="expands beyond"):
            HttpSymbolServer(server.url, max_bytes=1_000_000).fetch(REL, _workdir(tmp_path))
    assert list(_workdir(tmp_path).iterdir()) == []


def test_provider_over_http_404_is_negative_5xx_is_not(tmp_path: Path) -> None:
    absent = make_module("absent.pdb")
    with running_server() as server:
        server.add_sym(REL, sym_text(MOD))
        worker = make_provider(tmp_path / "c", [HttpSymbolServer(server.url, retries=0)])
        assert worker.get_symbols(MOD) is not None
        assert worker.get_symbols(absent) is None
        assert worker.get_symbols(absent) is None
        stats = worker.stats()
        assert stats["downloads"] == 1 and stats["download_bytes"] == len(sym_text(MOD))
        assert stats["negative_hits"] == 1 and server.count(sym_relpath(absent)) == 1

        down = make_module("down.pdb")
        server.add_sym(sym_relpath(down), b"", fail_first=100)
        assert worker.get_symbols(down) is None
        assert worker.stats()["supplier_errors"] == 1
        assert worker.store.count_by_kind()["negative_entries"] == 1  # only absent.pdb


def test_suppliers_are_tried_in_order(tmp_path: Path) -> None:
    with running_server() as first, running_server() as second:
        second.add_sym(REL, sym_text(MOD))
        worker = make_provider(
            tmp_path / "c", [HttpSymbolServer(first.url), HttpSymbolServer(second.url)]
        )
        assert worker.get_symbols(MOD) is not None
        assert first.count(REL) == 1 and first.count(REL + ".gz") == 1
        assert second.count(REL) == 1


@pytest.fixture(scope="module")
def s3_endpoint():
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_s3_supplier(tmp_path: Path, s3_endpoint: str, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = make_s3_client(endpoint_url=s3_endpoint, region="us-east-1", timeout_s=5, retries=1)
    client.create_bucket(Bucket="symbols")
    body = sym_text(MOD)
    client.put_object(Bucket="symbols", Key=f"v1/{REL}", Body=body)
    gz_mod = make_module("gz.so")
    client.put_object(
        Bucket="symbols", Key=f"v1/{sym_relpath(gz_mod)}.gz", Body=gzip.compress(sym_text(gz_mod))
    )
    supplier = S3SymbolSupplier(client, "symbols", "/v1/")
    fetched = supplier.fetch(REL, _workdir(tmp_path))
    assert fetched is not None and fetched.path.read_bytes() == body
    assert supplier.fetch(sym_relpath(make_module("nope.so")), _workdir(tmp_path)) is None

    worker = make_provider(tmp_path / "c", [supplier])
    assert worker.get_symbols(gz_mod) is not None
    assert worker.get_symbols(make_module("nope.so")) is None
    assert worker.stats()["downloads"] == 1

    broken = S3SymbolSupplier(client, "no-such-bucket")
    with pytest.raises(SupplierError):
        broken.fetch(REL, _workdir(tmp_path))
