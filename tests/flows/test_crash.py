"""Crashes for real: kill -9 of `rga update` at many points, and a worker killed mid-build."""

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from digests import tree_digest
from distributed import Client, LocalCluster

from catalog import open_catalog
from flows.build import BuildParameters
from flows.ingest import ingest
from flows.phantom import PhantomInput, phantom_inputs
from flows.update import update
from storage.location import StoreRef

TESTS = Path(__file__).resolve().parents[1]  # where the helper scripts are
SHAPE = (64, 64, 64)
KILL_POINTS = 12
SMALL = BuildParameters(canvas=64)  # small images keep twelve crash-and-rerun rounds quick


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """A committed store of 3 studies, and sources with 3 new studies and 1 changed one."""
    root = tmp_path_factory.mktemp("crash")
    inputs = phantom_inputs(6, SHAPE, seed=3)
    old_sources, new_sources = StoreRef(str(root / "old.zarr")), StoreRef(str(root / "new.zarr"))
    baseline, reference = StoreRef(str(root / "base.zarr")), StoreRef(str(root / "ref.zarr"))
    changed = PhantomInput(inputs[1].study_id, "train", SHAPE, 99, inputs[1].geometry)
    with dask.config.set(scheduler="synchronous"):
        ingest(inputs[:3], old_sources)
        ingest([*inputs[:1], changed, *inputs[2:]], new_sources)
        update(old_sources, baseline, SMALL)
        shutil.copytree(root / "base.zarr", root / "ref.zarr")
        update(new_sources, reference, SMALL)
    return root, new_sources, baseline, reference


def _committed_studies(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Each committed study's data, by id; checks the store opens with plain xarray too."""
    xr.open_zarr(path).close()
    ds = open_catalog(str(path)).load()
    assert np.array_equal(ds.footprint.values, ds.mask.sum(("y", "x")).values)
    names = ("image", "mask", "region_mask", "footprint", "available", "pixel_spacing")
    return {
        str(s): {n: ds[n].isel(study=i).values for n in names}
        for i, s in enumerate(ds.study.values)
    }


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[s][n], b[s][n], equal_nan=True) for s in a for n in a[s]
    )


def _run_crashing(kill_at: int, sources: StoreRef, dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *(sys.executable, str(TESTS / "crashing_update.py"), str(kill_at)),
            *(sources.url, str(dest), "--image-size", str(SMALL.canvas)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_kill_9_at_many_points_loses_nothing_and_rerun_completes(scenario, tmp_path):
    root, new_sources, _, _ = scenario
    before = _committed_studies(root / "base.zarr")
    expected = _committed_studies(root / "ref.zarr")
    probe = tmp_path / "probe.zarr"
    shutil.copytree(root / "base.zarr", probe)
    dry = _run_crashing(0, new_sources, probe)
    assert dry.returncode == 0, dry.stderr
    writes = int(dry.stdout.rsplit("writes=", 1)[1])
    assert writes > 2 * KILL_POINTS
    points = np.linspace(1, writes, KILL_POINTS, dtype=int)
    base_shards = {k: v for k, v in tree_digest(root / "base.zarr").items() if "/c/" in k}
    for kill_at in points:
        dest = tmp_path / f"killed-{kill_at}.zarr"
        shutil.copytree(root / "base.zarr", dest)
        crashed = _run_crashing(int(kill_at), new_sources, dest)
        assert crashed.returncode == -9, (kill_at, crashed.stderr[-2000:])
        seen = _committed_studies(dest)
        # every study committed before the crash is still there, byte for byte, or (study 1)
        # already swapped for its new version by a completed commit
        for study_id, data in before.items():
            assert _same({study_id: seen[study_id]}, {study_id: data}) or _same(
                {study_id: seen[study_id]}, {study_id: expected[study_id]}
            ), (kill_at, study_id)
        after = tree_digest(dest)
        for key, digest in base_shards.items():
            if key.split("/")[0] in ("image", "mask", "region_mask"):
                assert after.get(key) == digest, (kill_at, key)  # old shards never rewritten
        with dask.config.set(scheduler="synchronous"):
            rerun = update(new_sources, StoreRef(str(dest)), SMALL)
        assert not rerun.failed
        assert _same(_committed_studies(dest), expected), kill_at


def test_worker_killed_mid_build_still_completes(scenario, tmp_path):
    _, new_sources, _, reference = scenario
    dest = StoreRef(str(tmp_path / "d.zarr"))
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        result = {}
        builder = threading.Thread(
            target=lambda: result.update(summary=update(new_sources, dest, SMALL, batch_size=6))
        )
        builder.start()
        killed = False
        deadline = time.monotonic() + 120
        while builder.is_alive() and not killed and time.monotonic() < deadline:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                nanny = next(n for n in cluster.workers.values() if n.worker_address == busy[0])
                nanny.process.process.kill()  # SIGKILL the worker process itself
                killed = True
            time.sleep(0.02)
        builder.join()
        summary = result["summary"]
    assert killed, "no worker was busy long enough to be killed"
    assert not summary.failed and len(summary.added) == 6
    assert _same(_committed_studies(tmp_path / "d.zarr"), _committed_studies(Path(reference.url)))
