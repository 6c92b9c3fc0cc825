"""Two updaters on one store, and readers during an update (storage/lock.py, flows/update.py)."""

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dask
import pytest
import s3fs

from catalog import open_catalog
from flows.build import BuildParameters
from flows.ingest import ingest
from flows.phantom import PhantomInput, phantom_inputs
from flows.update import update
from storage.location import StoreRef
from storage.lock import StoreLocked, store_lock

SHAPE = (64, 64, 64)
SMALL = BuildParameters(canvas=64)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Sources v1 (4 studies) and v2 (every study changed), and a store built from v1."""
    root = tmp_path_factory.mktemp("concurrency")
    inputs = phantom_inputs(4, SHAPE, seed=5)
    changed = [PhantomInput(i.study_id, i.split, SHAPE, i.seed + 1, i.geometry) for i in inputs]
    v1, v2 = StoreRef(str(root / "v1.zarr")), StoreRef(str(root / "v2.zarr"))
    with dask.config.set(scheduler="synchronous"):
        ingest(inputs, v1)
        ingest(changed, v2)
    return root, v1, v2


TESTS = Path(__file__).resolve().parents[1]  # where the helper scripts are


@pytest.fixture(params=["local", "s3"])
def dest(request, tmp_path) -> StoreRef:
    """An empty dataset location on local disk or on the loopback S3 server."""
    if request.param == "local":
        return StoreRef(str(tmp_path / "d.zarr"))
    return _s3_dest(request.getfixturevalue("s3_server"))


def _s3_dest(s3_server: dict) -> StoreRef:
    bucket = f"updaters-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(**s3_server).mkdir(bucket)
    return StoreRef(f"s3://{bucket}/d.zarr", s3_server)


def _rga_update(
    sources: StoreRef,
    dest: Path | StoreRef,
    *flags: str,
    script: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    url, options = (dest.url, dest.storage_options) if isinstance(dest, StoreRef) else (dest, {})
    command = [*script] if script else [sys.executable, "-m", "flows.cli", "update"]
    command += [sources.url, str(url), "--image-size", str(SMALL.canvas)]
    command += [f"--storage-option={key}={value}" for key, value in options.items()]
    if not script:
        command += ["--scheduler", "synchronous"]
    return subprocess.Popen(
        [*command, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _digests(dest: Path | StoreRef, variables=("image",)) -> dict[str, tuple[str, ...]]:
    """Per visible study, a digest of each variable; no study may be visible twice."""
    ds = open_catalog(dest if isinstance(dest, StoreRef) else str(dest))
    ids = [str(s) for s in ds.study.values]
    assert len(ids) == len(set(ids)), f"a study is visible twice: {ids}"
    return {
        study_id: tuple(
            hashlib.sha256(ds[name].isel(study=i).values.tobytes()).hexdigest()
            for name in variables
        )
        for i, study_id in enumerate(ids)
    }


def test_a_second_updater_gets_a_clear_message_or_waits(stores, tmp_path):
    _, v1, _ = stores
    dest = tmp_path / "d.zarr"
    with store_lock(StoreRef(str(dest))):
        loser = _rga_update(v1, dest)
        _, err = loser.communicate(timeout=120)
        assert loser.returncode == 2
        assert "is being updated by process" in err and "--wait" in err
        waiter = _rga_update(v1, dest, "--wait")
        time.sleep(2.0)
        assert waiter.poll() is None, "--wait must queue behind the lock holder"
    _, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err
    with (
        pytest.raises(StoreLocked),
        store_lock(StoreRef(str(dest))),
        store_lock(StoreRef(str(dest))),
    ):
        pass


def test_two_updaters_started_together_lose_nothing(stores, dest, tmp_path):
    _, v1, _ = stores
    runs = [_rga_update(v1, dest, "--wait") for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    built = sorted(out.split("Built ")[1].split(" ")[0] for out, _ in outputs)
    assert built == ["0", "4"]  # one built everything, the other found nothing to do
    with dask.config.set(scheduler="synchronous"):
        reference = tmp_path / "ref.zarr"
        update(v1, StoreRef(str(reference)), SMALL)
    assert _digests(dest) == _digests(reference)


def test_readers_during_an_update_see_old_or_new_never_a_mix(stores, tmp_path):
    _, v1, v2 = stores
    dest, new = tmp_path / "d.zarr", tmp_path / "new.zarr"
    with dask.config.set(scheduler="synchronous"):
        update(v1, StoreRef(str(dest)), SMALL)
        update(v2, StoreRef(str(new)), SMALL)
    every = ("image", "mask", "region_mask", "footprint", "pixel_spacing")
    old, new_version = _digests(dest, every), _digests(new, every)
    assert all(old[s][0] != new_version[s][0] for s in old)
    writer = _rga_update(v2, dest)
    looks = 0
    while writer.poll() is None:
        seen = _digests(dest, every)
        assert sorted(seen) == sorted(old), "a study vanished or doubled mid-update"
        for study_id, digests in seen.items():
            # every variable of a study comes from the same version: old or new, never a mix
            assert digests in (old[study_id], new_version[study_id]), study_id
        looks += 1
    assert writer.returncode == 0, writer.stderr.read()
    assert _digests(dest, every) == new_version
    assert looks, "the update finished before any reader looked"


def test_an_update_whose_lease_is_taken_over_stops_and_loses_nothing(stores, s3_server, tmp_path):
    # On S3 a lock holder can be frozen (a laptop asleep, a paused VM) while its lease expires.
    # Here the first updater (v1) freezes after its first commit (2 of 4 studies). A second (v2,
    # every study changed) takes the lease over, leaves the first one's unfinished slots alone
    # and commits all four. The first, resumed, writes its in-flight v1 batch into its own
    # slots and is fenced out at its commit: had the second reused those slots, the stale v1
    # writes would have overwritten committed v2 studies.
    _, v1, v2 = stores
    dest = _s3_dest(s3_server)
    short_lease = {**os.environ, "DASK_RGA__LEASE_SECONDS": "2"}
    pausing = (sys.executable, str(TESTS / "pausing_update.py"))
    frozen = _rga_update(v1, dest, script=pausing, env=short_lease)
    try:
        assert frozen.stderr.readline().strip() == "committed once"
        _wait_until_stopped(frozen.pid)
        with dask.config.set({"rga.lease-seconds": 2, "scheduler": "synchronous"}):
            second = update(v2, dest, SMALL, wait=True)
        assert (len(second.changed), len(second.added)) == (2, 2)
        os.kill(frozen.pid, signal.SIGCONT)
        _, err = frozen.communicate(timeout=300)
    finally:
        if frozen.poll() is None:
            os.kill(frozen.pid, signal.SIGCONT)
            frozen.kill()
    assert frozen.returncode == 1, err
    assert "was taken over by another process" in err and "run the update again" in err
    every = ("image", "mask", "footprint")
    with dask.config.set(scheduler="synchronous"):
        reference = StoreRef(str(tmp_path / "ref.zarr"))
        update(v2, reference, SMALL)
    assert _digests(dest, every) == _digests(reference, every)  # every study once, all v2
    with dask.config.set(scheduler="synchronous"):
        assert update(v2, dest, SMALL).built == []  # nothing left to do, nothing to repair
    assert _digests(dest, every) == _digests(reference, every)


def _wait_until_stopped(pid: int, timeout: float = 60.0) -> None:
    """Until the process is in the stopped state (it sends itself SIGSTOP)."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "T":
        assert time.monotonic() < deadline, "the updater never froze"
        time.sleep(0.05)
