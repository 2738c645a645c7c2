"""The shared index store in an S3 bucket (or any S3-compatible store): `<prefix>/<format
tag>/<debug_file>/<debug_id>/<name>.symidx`, with the index's metadata as object metadata."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import botocore.exceptions

from procsupervisor.cache.download import TEMP_SUFFIX
from procsupervisor.cache.errors import SupplierError
from procsupervisor.cache.shared_index import SharedFetch, SharedIndexMeta
from procsupervisor.cache.supplier_s3 import NOT_FOUND_CODES

_CHUNK = 1 << 20
INDEX_SUFFIX = "idx"  # <name>.sym -> <name>.symidx


class S3SharedIndexStore:
    kind = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str, format_tag: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.format_tag = format_tag

    def __repr__(self) -> str:
        return f"S3SharedIndexStore(s3://{self.bucket}/{self.prefix}/{self.format_tag})"

    def object_key(self, relpath: str) -> str:
        # the format is part of the key: releases with different formats never overwrite or
        # read each other's indexes
        parts = [self.prefix, self.format_tag, relpath + INDEX_SUFFIX]
        return "/".join(part for part in parts if part)

    def fetch(self, relpath: str, workdir: Path) -> SharedFetch:
        key = self.object_key(relpath)
        origin = f"s3://{self.bucket}/{key}"
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                return SharedFetch(None)
            raise SupplierError(f"{origin}: {exc}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise SupplierError(f"{origin}: {exc}") from exc
        body = response["Body"]
        try:
            metadata = {k.lower(): v for k, v in (response.get("Metadata") or {}).items()}
            if metadata.get("format") != self.format_tag:
                return SharedFetch(None, f"format {metadata.get('format')!r:.40}, not ours")
            try:
                expected_size = int(metadata.get("size", ""))
            except ValueError:
                return SharedFetch(None, "no size in its metadata")
            return self._download(body, workdir, expected_size, metadata.get("sha256", ""))
        except botocore.exceptions.BotoCoreError as exc:
            raise SupplierError(f"{origin}: download broke off: {exc}") from exc
        finally:
            body.close()

    @staticmethod
    def _download(
        body: Any, workdir: Path, expected_size: int, expected_sha256: str
    ) -> SharedFetch:
        fd, name = tempfile.mkstemp(dir=workdir, prefix="l2-", suffix=TEMP_SUFFIX)
        path = Path(name)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in body.iter_chunks(_CHUNK):
                    size += len(chunk)
                    if size > expected_size:
                        break  # longer than published: no use reading the rest
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if size != expected_size:
            path.unlink(missing_ok=True)
            return SharedFetch(None, f"{size} bytes, published as {expected_size}")
        if digest.hexdigest() != expected_sha256:
            path.unlink(missing_ok=True)
            return SharedFetch(None, "SHA-256 differs from the published one")
        return SharedFetch(path)

    def publish(self, relpath: str, index_path: Path, meta: SharedIndexMeta) -> None:
        key = self.object_key(relpath)
        try:
            with Path(index_path).open("rb") as handle:
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=handle, Metadata=meta.as_metadata()
                )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise SupplierError(f"s3://{self.bucket}/{key}: upload failed: {exc}") from exc
