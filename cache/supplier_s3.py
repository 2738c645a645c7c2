"""An S3 bucket (or S3-compatible store) holding symbols under `<prefix>/<relpath>`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.exceptions

from procsupervisor.cache.download import stream_to_tempfile
from procsupervisor.cache.errors import SupplierError
from procsupervisor.cache.supplier_base import FetchedSymbols
from procsupervisor.health import Health, describe_cause

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CHUNK = 1 << 20


def make_s3_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    timeout_s: float,
    retries: int,
) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": retries + 1, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


class S3SymbolSupplier:
    kind = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "", *, max_bytes: int = 2 << 30):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"S3SymbolSupplier(s3://{self.bucket}/{self.prefix})"

    def probe(self) -> Health:
        """HEAD the bucket: a missing bucket or refused access is a configuration to fix."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket"):
                return Health.misconfigured(f"NoSuchBucket: bucket {self.bucket!r} does not exist")
            if code in ("403", "AccessDenied"):
                return Health.misconfigured(f"AccessDenied: no access to bucket {self.bucket!r}")
            return Health.unreachable(describe_cause(exc))
        except Exception as exc:
            return Health.unreachable(describe_cause(exc))
        return Health.healthy()

    def fetch(self, relpath: str, workdir: Path) -> FetchedSymbols | None:
        base_key = f"{self.prefix}/{relpath}" if self.prefix else relpath
        for suffix in ("", ".gz"):
            fetched = self._fetch_key(base_key + suffix, workdir, gzipped=bool(suffix))
            if fetched is not None:
                return fetched
        return None

    def _fetch_key(self, key: str, workdir: Path, *, gzipped: bool) -> FetchedSymbols | None:
        origin = f"s3://{self.bucket}/{key}"
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                return None
            raise SupplierError(f"{origin}: {exc}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise SupplierError(f"{origin}: {exc}") from exc
        body = response["Body"]
        try:
            path, received = stream_to_tempfile(
                body.iter_chunks(_CHUNK),
                workdir,
                expected_size=response.get("ContentLength"),
                gzipped=gzipped or response.get("ContentEncoding", "") == "gzip",
                max_bytes=self.max_bytes,
                origin=origin,
            )
        except botocore.exceptions.BotoCoreError as exc:
            raise SupplierError(f"{origin}: download broke off: {exc}") from exc
        finally:
            body.close()
        return FetchedSymbols(
            path=path,
            transferred_bytes=received,
            temporary=True,
            origin=origin,
            etag=str(response.get("ETag", "")),
        )
