"""S3 source/destination against moto in server mode, over real HTTP through boto3."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from _backend_helpers import (
    AWS_TEST_ENV,
    MotoProcess,
    new_crash_id,
    synthetic_processed_crash,
    synthetic_raw_crash,
    unique_name,
)

from procsupervisor.crashid import InvalidCrashId
from procsupervisor.health import Health, HealthStatus, describe_cause
from procsupervisor.metrics import NullMetrics
from procsupervisor.storage.base import (
    BackendUnavailable,
    CrashNotFound,
    CrashUnreadable,
    TransientStorageError,
)
from procsupervisor.storage.s3 import S3CrashStorage


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoProcess]:
    server = MotoProcess().start()
    yield server
    server.stop()


@pytest.fixture
def storage(
    moto_s3: MotoProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> S3CrashStorage:
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    options = {
        "bucket": unique_name("crashes").replace("_", "-"),
        "endpoint_url": moto_s3.endpoint_url,
        "region": "us-east-1",
        "backend": "s3",
    }
    store = S3CrashStorage.from_options(options, data_dir=tmp_path, metrics=NullMetrics())
    store.create_bucket()
    return store


def raw_s3(storage: S3CrashStorage) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=storage._client_args["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_socorro_key_layout_is_written(storage: S3CrashStorage) -> None:
    crash_id = new_crash_id(dt.date(2026, 11, 25))
    storage.save_raw_crash(
        synthetic_raw_crash(crash_id),
        {"upload_file_minidump": b"MDMP main", "upload_file_minidump_browser": b"MDMP b"},
        crash_id,
    )
    storage.save_processed(synthetic_raw_crash(crash_id), synthetic_processed_crash(crash_id))
    listed = raw_s3(storage).list_objects_v2(Bucket=storage.bucket)["Contents"]
    keys = sorted(obj["Key"] for obj in listed)
    assert keys == sorted(
        [
            f"v2/raw_crash/{crash_id[:3]}/20261125/{crash_id}",
            f"v1/dump_names/{crash_id}",
            f"v1/dump/{crash_id}",
            f"v1/upload_file_minidump_browser/{crash_id}",
            f"v1/processed_crash/{crash_id}",
        ]
    )
    names = raw_s3(storage).get_object(Bucket=storage.bucket, Key=f"v1/dump_names/{crash_id}")
    assert json.loads(names["Body"].read()) == [
        "upload_file_minidump",
        "upload_file_minidump_browser",
    ]


def test_round_trip_and_iso_datetimes(storage: S3CrashStorage) -> None:
    crash_id = new_crash_id()
    when = dt.datetime(2026, 11, 25, 12, 30, tzinfo=dt.UTC)
    storage.save_raw_crash(
        synthetic_raw_crash(crash_id, submitted=when),
        {"upload_file_minidump": b"\x00MDMP"},
        crash_id,
    )
    raw = storage.get_raw_crash(crash_id)
    assert raw["submitted"] == "2026-11-25T12:30:00+00:00"
    assert storage.get_dumps(crash_id) == {"upload_file_minidump": b"\x00MDMP"}
    processed = synthetic_processed_crash(crash_id, started=when, bad_float=float("nan"))
    storage.save_processed(raw, processed)
    loaded = storage.get_processed(crash_id)
    assert loaded["started"] == "2026-11-25T12:30:00+00:00"
    assert loaded["bad_float"] is None
    assert loaded["signature"] == "OOM | small"


def test_prefix_is_prepended(storage: S3CrashStorage, tmp_path: Path) -> None:
    prefixed = S3CrashStorage.from_options(
        {
            "bucket": storage.bucket,
            "endpoint_url": storage._client_args["endpoint_url"],
            "prefix": "/stage/",
        },
        data_dir=tmp_path,
        metrics=NullMetrics(),
    )
    crash_id = new_crash_id()
    prefixed.save_raw_crash(synthetic_raw_crash(crash_id), {}, crash_id)
    assert prefixed.get_raw_crash(crash_id)["uuid"] == crash_id
    assert prefixed.get_dumps(crash_id) == {}
    with pytest.raises(CrashNotFound):
        storage.get_raw_crash(crash_id)


def test_legacy_v1_raw_crash_key_is_read(storage: S3CrashStorage) -> None:
    crash_id = new_crash_id()
    raw_s3(storage).put_object(
        Bucket=storage.bucket,
        Key=f"v1/raw_crash/{crash_id}",
        Body=b'{"uuid": "%s"}' % crash_id.encode(),
    )
    assert storage.get_raw_crash(crash_id) == {"uuid": crash_id}


def test_missing_objects_are_not_found(storage: S3CrashStorage) -> None:
    crash_id = new_crash_id()
    with pytest.raises(CrashNotFound):
        storage.get_raw_crash(crash_id)
    with pytest.raises(CrashNotFound):
        storage.get_processed(crash_id)
    # dump_names lists a dump the bucket does not have
    raw_s3(storage).put_object(
        Bucket=storage.bucket, Key=f"v1/dump_names/{crash_id}", Body=b'["upload_file_minidump"]'
    )
    with pytest.raises(CrashNotFound):
        storage.get_dumps(crash_id)


def test_missing_bucket_is_transient_not_not_found(storage: S3CrashStorage, tmp_path: Path) -> None:
    nowhere = S3CrashStorage.from_options(
        {"bucket": "no-such-bucket-here", "endpoint_url": storage._client_args["endpoint_url"]},
        data_dir=tmp_path,
        metrics=NullMetrics(),
    )
    crash_id = new_crash_id()
    with pytest.raises(TransientStorageError):
        nowhere.get_raw_crash(crash_id)
    with pytest.raises(TransientStorageError):
        nowhere.save_processed({}, synthetic_processed_crash(crash_id))


def test_unreachable_endpoint_is_transient(tmp_path: Path) -> None:
    from _backend_helpers import free_port

    store = S3CrashStorage.from_options(
        {
            "bucket": "crashes",
            "endpoint_url": f"http://127.0.0.1:{free_port()}",
            "connect_timeout_s": "0.5",
            "max_attempts": "1",
            "access_key": "k",
            "secret_key": "s",
            "region": "us-east-1",
        },
        data_dir=tmp_path,
        metrics=NullMetrics(),
    )
    with pytest.raises(TransientStorageError):
        store.get_raw_crash(new_crash_id())


def test_corrupt_json_is_unreadable_with_the_parse_error(storage: S3CrashStorage) -> None:
    # Issue 10: retrying a corrupt object cannot help, so it is no longer transient but
    # unreadable (dead-lettered on its first attempt), and the parse error is kept.
    crash_id = new_crash_id()
    raw_s3(storage).put_object(
        Bucket=storage.bucket, Key=storage.raw_crash_key(crash_id), Body=b"{"
    )
    with pytest.raises(CrashUnreadable, match="not valid JSON: Expecting property name"):
        storage.get_raw_crash(crash_id)


def test_outages_and_bad_buckets_are_backend_wide(storage: S3CrashStorage, tmp_path: Path) -> None:
    from _backend_helpers import free_port

    def store(**options: str) -> S3CrashStorage:
        base = {"bucket": storage.bucket, "endpoint_url": storage._client_args["endpoint_url"],
                "access_key": "k", "secret_key": "s", "region": "us-east-1",
                "max_attempts": "1", "connect_timeout_s": "0.5"}
        return S3CrashStorage.from_options({**base, **options}, data_dir=tmp_path,
                                           metrics=NullMetrics())

    closed = store(endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BackendUnavailable) as raised:
        closed.get_raw_crash(new_crash_id())
    assert describe_cause(raised.value).startswith("EndpointConnectionError: Could not connect")
    assert closed.probe().status is HealthStatus.UNREACHABLE
    missing = store(bucket="no-such-bucket-here")
    with pytest.raises(BackendUnavailable):
        missing.get_raw_crash(new_crash_id())
    assert missing.probe() == Health.misconfigured(
        "NoSuchBucket: bucket 'no-such-bucket-here' does not exist"
    )
    assert store().probe() == Health.healthy()
    with pytest.raises(CrashNotFound):  # a missing crash is the crash's own problem
        store().get_raw_crash(new_crash_id())


@pytest.mark.parametrize(
    "bad", ["../../etc/passwd", "", "x" * 36, "0bba929f-8721-460c-dead-a43c20071027/"]
)
def test_invalid_crash_ids_never_reach_a_key(storage: S3CrashStorage, bad: str) -> None:
    with pytest.raises(InvalidCrashId):
        storage.get_raw_crash(bad)
    with pytest.raises(InvalidCrashId):
        storage.save_processed({}, {"uuid": bad})


def test_hostile_dump_names_are_refused(storage: S3CrashStorage) -> None:
    crash_id = new_crash_id()
    for hostile in ("../raw_crash", "processed_crash", "raw_crash", "dump_names"):
        with pytest.raises(ValueError):
            storage.save_raw_crash({}, {hostile: b"x"}, crash_id)
    raw_s3(storage).put_object(
        Bucket=storage.bucket, Key=f"v1/dump_names/{crash_id}", Body=b'["a/../../b"]'
    )
    with pytest.raises(TransientStorageError):
        storage.get_dumps(crash_id)
