"""`procsupervisor symbols warm`: a directory, an HTTP listing on loopback and moto's S3 indexed
into the shared cache; a second run finds everything cached."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cache_helpers import (
    CountingCodec,
    Route,
    make_module,
    make_provider,
    moto_s3,
    running_server,
    sym_relpath,
    sym_text,
    write_symbol_tree,
)
from click.testing import CliRunner

from procsupervisor.cache.supplier_s3 import make_s3_client
from procsupervisor.cache.symbols_cli import symbols

MODULES = [make_module(f"lib{n}.so") for n in range(5)] + [
    make_module("xul.pdb", "ABCDEF0123456789ABCDEF01234567891")
]


def warm(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        symbols,
        ["warm", *args, "--data-dir", str(tmp_path / "data")],
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout, result.stderr


def summary(stdout: str) -> dict[str, int]:
    found = re.search(
        r": (\d+) files, .* (\d+) built, (\d+) from the shared store, (\d+) already cached,"
        r" (\d+) errors",
        stdout,
    )
    assert found, stdout
    files, built, shared, cached, errors = map(int, found.groups())
    return {"files": files, "built": built, "shared": shared, "cached": cached, "errors": errors}


def assert_all_cached(cache_dir: Path) -> None:
    codec = CountingCodec()
    worker = make_provider(cache_dir, [], codec=codec)
    for module in MODULES:
        assert worker.get_symbols(module) is not None, module
    assert worker.stats()["disk_hits"] == len(MODULES) and codec.builds == 0


def test_a_directory_in_parallel_then_nothing_left_to_do(tmp_path: Path) -> None:
    root = tmp_path / "syms"
    write_symbol_tree(root, MODULES)
    variant = root / sym_relpath(MODULES[0])
    (variant.parent / "lib0.old.sym").write_bytes(variant.read_bytes())  # not Breakpad's name
    cache = tmp_path / "cache"
    code, stdout, _ = warm(tmp_path, str(root), "--cache-dir", str(cache), "--jobs", "3")
    assert code == 0
    assert summary(stdout) == {"files": 6, "built": 6, "shared": 0, "cached": 0, "errors": 0}
    assert "with 3 processes" in stdout
    assert_all_cached(cache)
    code, stdout, _ = warm(tmp_path, str(root), "--cache-dir", str(cache))
    assert code == 0
    assert summary(stdout) == {"files": 6, "built": 0, "shared": 0, "cached": 6, "errors": 0}


def test_an_http_listing_with_a_missing_and_a_failing_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with running_server() as server:
        listing = [sym_relpath(m) for m in MODULES] + [
            "# comments and blank lines are skipped",
            "",
            "gone.so/0123456789ABCDEF0123456789ABCDEF0/gone.so.sym",
            "bad.so/0123456789ABCDEF0123456789ABCDEF0/bad.so.sym",
            "../../etc/passwd",
        ]
        server.add("store/index.txt", Route(body="\n".join(listing).encode()))
        for module in MODULES:
            server.add_sym("store/" + sym_relpath(module), sym_text(module))
        server.add(  # a server error: not "absent", nothing cached
            "store/bad.so/0123456789ABCDEF0123456789ABCDEF0/bad.so.sym",
            Route(body=b"", fail_first=100, fail_status=500),
        )
        url = f"{server.url}/store/index.txt"
        code, stdout, stderr = warm(tmp_path, url, "--cache-dir", str(cache), "-j", "2")
        assert code == 1
        assert summary(stdout) == {"files": 8, "built": 6, "shared": 0, "cached": 0, "errors": 2}
        assert "error: gone.so/" in stderr and "does not have it" in stderr
        assert "error: bad.so/" in stderr and "source failed" in stderr
        assert_all_cached(cache)
        code, stdout, _ = warm(tmp_path, url, "--cache-dir", str(cache))
        counts = summary(stdout)
        assert counts["built"] == 0 and counts["cached"] == 6
        assert all(server.count("store/" + sym_relpath(m)) == 1 for m in MODULES)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


def test_an_s3_prefix(tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = make_s3_client(endpoint_url=s3_endpoint, region="us-east-1", timeout_s=5, retries=1)
    bucket = "warm-symbols"  # moto's state is per process: not another test's bucket
    client.create_bucket(Bucket=bucket)
    for module in MODULES:
        client.put_object(Bucket=bucket, Key=f"v1/{sym_relpath(module)}", Body=sym_text(module))
    client.put_object(Bucket=bucket, Key="v1/README.txt", Body=b"not a symbol file")
    config = tmp_path / "warm.ini"
    cache = tmp_path / "cache"
    config.write_text(
        f"[supervisor]\ndata_dir = {tmp_path / 'data'}\n"
        f"[symbols]\ncache_dir = {cache}\ns3_endpoint_url = {s3_endpoint}\ns3_region = us-east-1\n"
    )
    result = CliRunner().invoke(
        symbols, ["warm", "s3://warm-symbols/v1", "--config", str(config), "-j", "2"]
    )
    assert result.exit_code == 0, result.output
    assert summary(result.stdout)["built"] == len(MODULES)
    assert_all_cached(cache)
    again = CliRunner().invoke(symbols, ["warm", "s3://warm-symbols/v1", "--config", str(config)])
    assert summary(again.stdout)["cached"] == len(MODULES)


def test_a_source_that_cannot_be_listed_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        symbols,
        ["warm", str(tmp_path / "nope"), "--cache-dir", str(tmp_path / "c"),
         "--data-dir", str(tmp_path / "data")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "not a directory" in result.output
