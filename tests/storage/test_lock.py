"""What storage/lock.py does on one store kind only: the local flock dies with its holder; the
object-store lease is taken over when stale and waited for while live. One holder at a time, on
disk and on S3, is checked in tests/storage/test_store_contract.py."""

import json
import subprocess
import sys
import textwrap
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


def test_a_local_lock_is_released_when_its_holder_is_killed(tmp_path):
    ref = StoreRef(str(tmp_path / "d.zarr"))
    script = textwrap.dedent(
        f"""
        import time
        from storage.location import StoreRef
        from storage.lock import store_lock
        with store_lock(StoreRef({ref.url!r})):
            print("held", flush=True)
            time.sleep(120)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreLocked, match=f"process {holder.pid} on"), store_lock(ref):
            pass
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    with store_lock(ref):  # the kernel dropped the flock with the process
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
