"""S3 crash storage: source of raw crashes and dumps, destination of processed crashes.

Socorro's key layout (docs/processing.md §3), with an optional prefix:

    v2/raw_crash/<id[:3]>/<YYYYMMDD>/<id>   raw crash JSON (read fallback: v1/raw_crash/<id>)
    v1/dump_names/<id>                      JSON list of the original dump names
    v1/dump/<id>                            the main dump (upload_file_minidump)
    v1/<dump name>/<id>                     every other dump
    v1/processed_crash/<id>                 processed crash JSON

Only a real 404 (NoSuchKey) is `CrashNotFound`, unlike Socorro, which turned every failure
into "not found" and dropped the crash. A failure of the store itself (unreachable endpoint,
5xx, missing bucket, refused credentials) is `BackendUnavailable`, so the crash waits out the
outage without losing an attempt (docs/architecture.md §5); an object that is not valid JSON is
`CrashUnreadable`; anything else is `TransientStorageError`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from procsupervisor import bounded_json, crashid
from procsupervisor.health import Health, describe_cause
from procsupervisor.metrics import Metrics, NullMetrics
from procsupervisor.storage import crashjson, keys
from procsupervisor.storage.base import (
    BackendUnavailable,
    CrashDestination,
    CrashNotFound,
    CrashSource,
    CrashUnreadable,
    TransientStorageError,
)

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# Error codes saying the bucket or our credentials are wrong: every crash would fail alike.
MISCONFIGURED_CODES = frozenset({
    "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "AllAccessDisabled", "InvalidBucketName", "PermanentRedirect", "AuthorizationHeaderMalformed",
    "InvalidToken", "ExpiredToken", "301", "403",
})
# Error codes of a store that is there but not serving now.
UNAVAILABLE_CODES = frozenset({
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
    "RequestTimeTooSkewed",
})


class S3CrashStorage(CrashSource, CrashDestination):
    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        max_attempts: int = 3,
        addressing_style: str = "auto",
        metrics: Metrics | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("s3 storage needs a bucket")
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._client_args: dict[str, Any] = {
            "endpoint_url": endpoint_url or None,
            "region_name": region or None,
            # None lets boto3 fall back to AWS_ACCESS_KEY_ID / profiles / instance roles.
            "aws_access_key_id": access_key or None,
            "aws_secret_access_key": secret_key or None,
        }
        self._config_args: dict[str, Any] = {
            "connect_timeout": connect_timeout_s,
            "read_timeout": read_timeout_s,
            "retries": {"max_attempts": max_attempts, "mode": "standard"},
            "s3": {"addressing_style": addressing_style},
        }
        self._client: Any = None
        self._client_pid: int | None = None
        self.metrics = metrics or NullMetrics()

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], *, data_dir: Path, metrics: Metrics
    ) -> S3CrashStorage:
        def number(key: str, default: float) -> float:
            value = (options.get(key) or "").strip()
            return float(value) if value else default

        return cls(
            (options.get("bucket") or "").strip(),
            prefix=options.get("prefix") or "",
            endpoint_url=(options.get("endpoint_url") or "").strip() or None,
            region=(options.get("region") or "").strip() or None,
            access_key=(options.get("access_key") or "").strip() or None,
            secret_key=(options.get("secret_key") or "").strip() or None,
            connect_timeout_s=number("connect_timeout_s", 5.0),
            read_timeout_s=number("read_timeout_s", 30.0),
            max_attempts=int(number("max_attempts", 3)),
            addressing_style=(options.get("addressing_style") or "auto").strip(),
            metrics=metrics,
        )

    # -- keys --------------------------------------------------------------------------------

    def raw_crash_key(self, crash_id: str) -> str:
        return self.prefix + keys.raw_crash_key(crash_id)

    def legacy_raw_crash_key(self, crash_id: str) -> str:
        return self.prefix + keys.legacy_raw_crash_key(crash_id)

    def dump_names_key(self, crash_id: str) -> str:
        return self.prefix + keys.dump_names_key(crash_id)

    def dump_key(self, dump_name: str, crash_id: str) -> str:
        return self.prefix + keys.dump_key(crash_id, dump_name)

    def processed_crash_key(self, crash_id: str) -> str:
        return self.prefix + keys.processed_crash_key(crash_id)

    # -- client ------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        # A boto3 client holds a connection pool; one made before a fork must not be shared.
        if self._client is None or self._client_pid != os.getpid():
            self._client = self._new_client()
            self._client_pid = os.getpid()
        return self._client

    def _new_client(self, max_attempts: int | None = None) -> Any:
        import boto3
        from botocore.config import Config

        config_args = dict(self._config_args)
        if max_attempts is not None:
            config_args["retries"] = {"max_attempts": max_attempts, "mode": "standard"}
        return boto3.session.Session().client(
            "s3", config=Config(**config_args), **self._client_args
        )

    def probe(self) -> Health:
        """HEAD the bucket once (no retries): is the endpoint there, and the bucket ours?"""
        try:
            client = self._new_client(max_attempts=1)
            try:
                client.head_bucket(Bucket=self.bucket)
            finally:
                client.close()
        except Exception as exc:
            return s3_health(exc, self.bucket)
        return Health.healthy()

    def _get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read()
        except Exception as exc:
            raise _translate(exc, key) from exc

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except Exception as exc:
            raise _translate(exc, key) from exc

    def _get_json(self, key: str) -> Any:
        data = self._get(key)
        try:
            return bounded_json.loads(data, f"s3://{self.bucket}/{key}")
        except ValueError as exc:
            # S3 writes whole objects, so a corrupt (or too deeply nested) one will not heal on
            # retry: dead-letter it at once, with the parse error ("not found" would hide it).
            raise CrashUnreadable(str(exc)[:300]) from exc

    # -- source ------------------------------------------------------------------------------

    def get_raw_crash(self, crash_id: str) -> dict[str, Any]:
        try:
            raw = self._get_json(self.raw_crash_key(crash_id))
        except CrashNotFound:
            raw = self._get_json(self.legacy_raw_crash_key(crash_id))
        if not isinstance(raw, dict):
            raise CrashUnreadable(f"raw crash {crash_id} is not a JSON object")
        return raw

    def get_dump_names(self, crash_id: str) -> list[str]:
        try:
            names = self._get_json(self.dump_names_key(crash_id))
        except CrashNotFound:
            return []  # a crash submitted without dumps may have no list at all
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CrashUnreadable(f"dump_names of {crash_id} is not a list of names")
        return names

    def get_dumps(self, crash_id: str) -> dict[str, bytes]:
        dumps: dict[str, bytes] = {}
        for dump_name in self.get_dump_names(crash_id):
            canonical = keys.canonical_dump_name(dump_name)
            try:
                key = self.dump_key(canonical, crash_id)
            except ValueError as exc:
                raise TransientStorageError(str(exc)) from exc
            dumps[canonical] = self._get(key)
        return dumps

    def raw_crash_ids(self, day: dt.date) -> Iterator[str]:
        """Lists `v2/raw_crash/` for its entropy prefixes, then each one's folder for `day`
        (Socorro's verifyprocessed walks the same keys)."""
        top = f"{self.prefix}v2/raw_crash/"
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            entropies = [
                common["Prefix"]
                for page in paginator.paginate(Bucket=self.bucket, Prefix=top, Delimiter="/")
                for common in page.get("CommonPrefixes", [])
            ]
            for entropy in sorted(entropies):
                pages = paginator.paginate(Bucket=self.bucket, Prefix=f"{entropy}{day:%Y%m%d}/")
                for page in pages:
                    for item in page.get("Contents", []):
                        name = item["Key"].rsplit("/", 1)[-1]
                        if crashid.is_valid(name):
                            yield name
        except Exception as exc:
            raise _translate(exc, top) from exc

    def has_processed(self, crash_id: str) -> bool:
        key = self.processed_crash_key(crash_id)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            translated = _translate(exc, key)
            if isinstance(translated, CrashNotFound):
                return False
            raise translated from exc
        return True

    def get_processed(self, crash_id: str) -> dict[str, Any]:
        processed = self._get_json(self.processed_crash_key(crash_id))
        if not isinstance(processed, dict):
            raise CrashUnreadable(f"processed crash {crash_id} is not a JSON object")
        return processed

    def save_raw_crash(
        self, raw_crash: Mapping[str, Any], dumps: Mapping[str, bytes], crash_id: str
    ) -> None:
        crash_id = crashid.validate(crash_id)
        # Antenna's order: dump names, dumps, then the raw crash last, because the raw crash
        # object is what marks the crash as complete for anything watching the bucket.
        keyed_dumps = [(self.dump_key(name, crash_id), data) for name, data in dumps.items()]
        names = [keys.canonical_dump_name(name) for name in dumps]
        names_json = crashjson.dumps(names).encode()
        self._put(self.dump_names_key(crash_id), names_json, "application/json")
        for key, data in keyed_dumps:
            self._put(key, bytes(data), "application/octet-stream")
        self._put(
            self.raw_crash_key(crash_id), crashjson.dumps(raw_crash).encode(), "application/json"
        )

    # -- destination -------------------------------------------------------------------------

    def save_processed(
        self, raw_crash: Mapping[str, Any], processed_crash: Mapping[str, Any]
    ) -> None:
        crash_id = crashjson.crash_id_of(raw_crash, processed_crash)
        body = crashjson.dumps(processed_crash).encode()
        self._put(self.processed_crash_key(crash_id), body, "application/json")

    def create_bucket(self) -> None:
        """Create the bucket if it is missing (development and tests; production buckets exist)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except Exception:
            pass
        args: dict[str, Any] = {"Bucket": self.bucket}
        region = self._client_args["region_name"]
        if region and region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**args)
        except Exception as exc:
            raise _translate(exc, "") from exc

    def close(self) -> None:
        if self._client is not None and self._client_pid == os.getpid():
            self._client.close()
        self._client = None


def _translate(exc: Exception, key: str) -> Exception:
    """NoSuchKey / 404 is CrashNotFound; a failure of the store itself is BackendUnavailable;
    anything else is transient."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        # A 404 for the bucket itself (NoSuchBucket) is a configuration fault, not a crash.
        if code in NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
            return CrashNotFound(f"not found: {key}")
        if not _health_of(exc).ok:
            return BackendUnavailable(f"s3 error on {key}: {code or status}: {exc}")
        return TransientStorageError(f"s3 error on {key}: {code or status}: {exc}")
    if not _health_of(exc).ok:
        return BackendUnavailable(f"s3 error on {key}: {type(exc).__name__}: {exc}")
    return TransientStorageError(f"s3 error on {key}: {type(exc).__name__}: {exc}")


def _health_of(exc: Exception) -> Health:
    """What a failed request says about the store: healthy when the failure is the request's
    own (the store answered and would serve other objects)."""
    from botocore import exceptions

    if isinstance(exc, exceptions.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code in MISCONFIGURED_CODES:
            return Health.misconfigured(describe_cause(exc))
        if code in UNAVAILABLE_CODES or status >= 500 or status == 429:
            return Health.unreachable(describe_cause(exc))
        return Health.healthy()
    if isinstance(exc, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return Health.misconfigured(describe_cause(exc))
    if isinstance(exc, exceptions.ConnectionError | exceptions.HTTPClientError | OSError):
        return Health.unreachable(describe_cause(exc))
    return Health.healthy()


def s3_health(exc: Exception, bucket: str) -> Health:
    """A failed HEAD of `bucket` as a probe result. HEAD answers carry no error body, so the
    bare status codes are named here."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            return Health.misconfigured(f"NoSuchBucket: bucket {bucket!r} does not exist")
        if code in ("403", "AccessDenied"):
            return Health.misconfigured(f"AccessDenied: no access to bucket {bucket!r}")
    health = _health_of(exc)
    return health if not health.ok else Health.unreachable(describe_cause(exc))
