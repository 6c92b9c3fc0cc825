"""One writer per store (storage/lock.py): local flock and the object-store lease."""

import json
import time
import uuid

import pytest
import s3fs

from storage.location import StoreRef
from storage.lock import StoreLocked, store_lock


@pytest.fixture
def bucket_ref(s3_server):
    bucket = f"lock-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(**s3_server).mkdir(bucket)
    return StoreRef(f"s3://{bucket}/dataset.zarr", s3_server)


def test_local_lock_is_exclusive_and_names_its_holder(tmp_path):
    ref = StoreRef(str(tmp_path / "d.zarr"))
    busy = r"is being updated by process \d+ on .* since"
    with store_lock(ref), pytest.raises(StoreLocked, match=busy), store_lock(ref):
        pass
    with store_lock(ref):  # released on exit
        pass


def test_object_store_lease_is_exclusive_and_released(bucket_ref, s3_server):
    fs = s3fs.S3FileSystem(**s3_server)
    lock_path = bucket_ref.url.removeprefix("s3://") + ".lock"
    with store_lock(bucket_ref):
        assert fs.exists(lock_path)
        with pytest.raises(StoreLocked, match="pass --wait"), store_lock(bucket_ref):
            pass
    assert not fs.exists(lock_path)
    with store_lock(bucket_ref):
        pass


def test_a_lease_without_heartbeat_is_taken_over(bucket_ref, s3_server):
    fs = s3fs.S3FileSystem(**s3_server)
    lock_path = bucket_ref.url.removeprefix("s3://") + ".lock"
    dead = {"host": "gone", "pid": 1, "since": "2026-01-01", "heartbeat": time.time() - 600}
    fs.pipe_file(lock_path, json.dumps(dead).encode())
    with store_lock(bucket_ref, lease_seconds=120):
        assert b'"host": "gone"' not in fs.cat_file(lock_path)


def test_a_live_lease_is_waited_for(bucket_ref, s3_server):
    fs = s3fs.S3FileSystem(**s3_server)
    lock_path = bucket_ref.url.removeprefix("s3://") + ".lock"
    alive = {"host": "busy", "pid": 2, "since": "now", "heartbeat": time.time()}
    fs.pipe_file(lock_path, json.dumps(alive).encode())
    with pytest.raises(StoreLocked, match="process 2 on busy"), store_lock(bucket_ref):
        pass
    started = time.monotonic()
    with store_lock(bucket_ref, wait=True, poll_seconds=0.2, lease_seconds=1.0):
        assert time.monotonic() - started >= 0.5  # waited until the lease went stale
