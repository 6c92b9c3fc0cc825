"""Two updaters on one store, and readers during an update (storage/lock.py, flows/update.py)."""

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest

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


def _rga_update(sources: StoreRef, dest: Path, *flags: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "flows.cli", "update", sources.url, str(dest)]
    command += ["--image-size", str(SMALL.canvas), "--scheduler", "synchronous", *flags]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _digests(dest: Path, variables=("image",)) -> dict[str, tuple[str, ...]]:
    """Per visible study, a digest of each variable; no study may be visible twice."""
    ds = open_catalog(str(dest))
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


def test_two_updaters_started_together_lose_nothing(stores, tmp_path):
    _, v1, _ = stores
    dest = tmp_path / "d.zarr"
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
