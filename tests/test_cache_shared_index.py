"""The shared second level of indexes: two hosts (two cache directories) over one moto bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _cache_helpers import CountingCodec, make_module, make_provider, moto_s3, write_symbol_tree

from procsupervisor.cache.provider import cache_key
from procsupervisor.cache.shared_index_s3 import S3SharedIndexStore
from procsupervisor.cache.supplier_local import LocalDirectorySupplier
from procsupervisor.cache.supplier_s3 import make_s3_client

BUCKET = "symidx"
MODULES = [make_module("libxul.so"), make_module("xul.pdb", "ABCDEF0123456789ABCDEF01234567891")]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def client(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = make_s3_client(endpoint_url=s3_endpoint, region="us-east-1", timeout_s=5, retries=1)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def host(tmp_path: Path, name: str, client: Any) -> Any:
    """A host with its own cache directory and codec, sharing the symbols and the bucket."""
    codec = CountingCodec()
    shared = S3SharedIndexStore(client, BUCKET, "fleet", codec.format_tag)
    return make_provider(
        tmp_path / name,
        [LocalDirectorySupplier(tmp_path / "syms")],
        codec=codec,
        shared=shared,
    )


def test_the_second_host_downloads_the_index_and_parses_nothing(
    tmp_path: Path, client: Any
) -> None:
    write_symbol_tree(tmp_path / "syms", MODULES, filler_bytes=20_000)
    first = host(tmp_path, "a", client)
    built = [first.get_symbols(module) for module in MODULES]
    assert first.codec.builds == 2 and first.stats()["shared_uploads"] == 2

    second = host(tmp_path, "b", client)
    for module, index in zip(MODULES, built, strict=True):
        mine = second.get_symbols(module)
        assert mine is not None and index is not None
        assert mine.lookup(0x104) == index.lookup(0x104)
    stats = second.stats()
    assert second.codec.builds == 0 and stats["parse_seconds"] == 0
    assert stats["shared_hits"] == 2 and stats["downloads"] == 0  # no .sym fetched either
    # stored locally: a fresh worker of the second host reads its own disk
    again = host(tmp_path, "b", client)
    assert again.get_symbols(MODULES[0]) is not None and again.stats()["disk_hits"] == 1


def _the_object(client: Any) -> tuple[str, bytes, dict[str, str]]:
    (item,) = [
        item
        for item in client.list_objects_v2(Bucket=BUCKET)["Contents"]
        if "libxul" in item["Key"]
    ]
    response = client.get_object(Bucket=BUCKET, Key=item["Key"])
    return item["Key"], response["Body"].read(), response["Metadata"]


@pytest.mark.parametrize("damage", ["flipped bytes", "foreign format", "consistent garbage"])
def test_a_bad_shared_index_is_rejected_rebuilt_and_replaced(
    tmp_path: Path, client: Any, damage: str
) -> None:
    write_symbol_tree(tmp_path / "syms", MODULES[:1], filler_bytes=20_000)
    host(tmp_path, "a", client).get_symbols(MODULES[0])
    key, body, metadata = _the_object(client)
    if damage == "flipped bytes":
        body = body[:100] + bytes(b ^ 0xFF for b in body[100:200]) + body[200:]
    elif damage == "foreign format":
        metadata["format"] = "psymidx1"
    else:  # its checksum matches, but it is no index
        import hashlib

        body = b"NOTANINDEX" * 100
        metadata.update(sha256=hashlib.sha256(body).hexdigest(), size=str(len(body)))
    client.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)

    second = host(tmp_path, "b", client)
    index = second.get_symbols(MODULES[0])
    assert index is not None and index.lookup(0x104) is not None
    stats = second.stats()
    assert (stats["shared_rejected"], stats["shared_hits"], second.codec.builds) == (1, 0, 1)
    assert stats["shared_uploads"] == 1  # the rebuilt index replaces the bad one

    third = host(tmp_path, "c", client)
    assert third.get_symbols(MODULES[0]) is not None
    assert third.stats()["shared_hits"] == 1 and third.codec.builds == 0
    assert second.store.has_index(cache_key(MODULES[0]))  # type: ignore[arg-type]


def test_a_failing_shared_store_costs_nothing_but_the_sharing(tmp_path: Path) -> None:
    write_symbol_tree(tmp_path / "syms", MODULES[:1])
    unreachable = make_s3_client(
        endpoint_url="http://127.0.0.1:9", region="us-east-1", timeout_s=0.5, retries=0
    )
    worker = make_provider(
        tmp_path / "a",
        [LocalDirectorySupplier(tmp_path / "syms")],
        codec=CountingCodec(),
        shared=S3SharedIndexStore(unreachable, BUCKET, "fleet", "psymidx2"),
    )
    assert worker.get_symbols(MODULES[0]) is not None
    assert worker.stats()["shared_errors"] == 2  # the download, then the upload
