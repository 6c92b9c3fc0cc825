"""What storage/lock.py does on one store kind only: the local flock dies with its holder; the
object-store lease is taken over when stale, waited for while live, and fences out a holder
that lost it; a store without conditional writes is refused. One holder at a time, on
disk and on S3, is checked in tests/storage/test_store_contract.py."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import s3fs
from faultproxy import FaultProxy

from storage.location import StoreRef
from storage.lock import ConditionalWritesUnsupported, StoreLocked, store_lock


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


def test_a_frozen_holder_is_fenced_out_once_its_lease_is_taken_over(bucket_ref, s3_server):
    # A real freeze (SIGSTOP, as a paused VM or a long GC would be): the holder stops beating,
    # a second process takes the lease over with a higher token, and the first, resumed, may
    # no longer write: its fence fails, and its release leaves the new holder's lease alone.
    script = textwrap.dedent(
        f"""
        import sys
        from storage.location import StoreRef
        from storage.lock import LeaseLost, store_lock
        ref = StoreRef({bucket_ref.url!r}, {s3_server!r})
        with store_lock(ref, lease_seconds=1.0) as hold:
            print("held", hold.token, flush=True)
            sys.stdin.readline()
            try:
                hold.fence()
                print("fenced in", flush=True)
            except LeaseLost as error:
                print("lost:", error, flush=True)
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().split() == ["held", "1"]
        os.kill(holder.pid, signal.SIGSTOP)
        with store_lock(bucket_ref, wait=True, poll_seconds=0.2, lease_seconds=1.0) as taker:
            assert (taker.token, taker.taken_over) == (2, True)
            os.kill(holder.pid, signal.SIGCONT)
            out, _ = holder.communicate("go\n", timeout=60)
            assert holder.returncode == 0
            assert out.startswith("lost:") and "token 1) was taken over" in out, out
            assert "Studies committed so far are intact" in out
            taker.fence()  # the resumed process neither beat over nor released the new lease
        with store_lock(bucket_ref) as after:
            assert (after.token, after.taken_over) == (3, False)
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGCONT)
            holder.kill()
            holder.wait()


def test_a_holder_that_fences_in_time_keeps_its_lease(bucket_ref):
    # Heartbeats (a third of the lease) keep a live holder's lease whatever the block's length.
    with store_lock(bucket_ref, lease_seconds=0.6) as hold:
        time.sleep(1.5)
        with pytest.raises(StoreLocked), store_lock(bucket_ref, lease_seconds=0.6):
            pass
        hold.fence()


def test_a_store_without_conditional_writes_is_refused_with_a_sentence():
    # fsspec's in-memory filesystem is one such store: it ignores If-Match and has no ETags.
    ref = StoreRef(f"memory://{uuid.uuid4().hex}/dataset.zarr")
    expected = r"memory://.*/dataset\.zarr: the object store .* cannot be fenced"
    with pytest.raises(ConditionalWritesUnsupported, match=expected), store_lock(ref):
        pass


def test_lease_writes_whose_answers_are_lost_still_land_once(s3_server):
    # A conditional write can land while its answer is lost; the client's retry is then refused
    # by the very condition that write changed. The lease recognises its own record instead of
    # mistaking itself for another holder (StoreLocked) or for a take-over (LeaseLost).
    bucket = f"lock-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(**s3_server).mkdir(bucket)
    with FaultProxy(s3_server["endpoint_url"], seed=3, rate=0.3, faults=("lose",)) as proxy:
        ref = StoreRef(f"s3://{bucket}/dataset.zarr", {**s3_server, **proxy.options})
        tokens = []
        for _ in range(8):
            with store_lock(ref) as hold:
                hold.fence()
                tokens.append(hold.token)
        assert proxy.injected["lose"] >= 5  # answers really were lost, writes included
    assert tokens == list(range(1, 9))
