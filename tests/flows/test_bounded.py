"""Bounded submission: a build of hundreds of studies never has more than a batch on the cluster."""

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

from catalog.taxonomy import load_taxonomy
from flows.build import BuildParameters
from flows.update import update
from storage.location import StoreRef
from storage.sources import create_sources, write_study

STUDIES = 200  # "a few hundred": 7 batches; 300 adds ~15 s of store writes, no insight
BATCH = 32
SIDE = 16
TINY = BuildParameters(canvas=SIDE)
MASKED = ("heart", "left lung", "right lung", "aorta")


class PeakTasks(SchedulerPlugin):
    """Records the most tasks the scheduler ever held at once (checked on every transition)."""

    name = "peak-tasks"

    def __init__(self) -> None:
        self.held: set = set()  # keys the scheduler knows and has not forgotten
        self.peak = 0

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if finish == "forgotten":
            self.held.discard(key)
        else:
            self.held.add(key)
        self.peak = max(self.peak, len(self.held))


def _tiny_sources(ref: StoreRef, numbers: range) -> None:
    """Real but tiny studies (16^3 CT, a few box masks) written straight to the sources store."""
    taxonomy = load_taxonomy()
    create_sources(ref, taxonomy.names)
    for n in numbers:
        ct = np.random.default_rng(n).integers(-1000, 1000, (SIDE,) * 3, dtype=np.int16)
        masks = [
            (taxonomy.index(name), (i, 2, 2), np.ones((4, 8, 8), bool), False)
            for i, name in enumerate(MASKED)
        ]
        write_study(
            ref,
            f"s{n:04d}",
            ct=ct,
            spacing=(2.0, 2.0, 2.0),
            affine=np.diag([2.0, 2.0, 2.0, 1.0]),
            masks=masks,
            attrs={"split": "train"},
        )


@pytest.fixture(scope="module")
def client():
    """A two-worker local cluster on loopback, with the peak recorder on its scheduler."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(PeakTasks())
        yield client


def _reset_peak(dask_scheduler) -> None:
    dask_scheduler.plugins[PeakTasks.name].peak = 0


def _recorded_peak(dask_scheduler) -> int:
    return dask_scheduler.plugins[PeakTasks.name].peak


def _peak_tasks(client: Client, sources: StoreRef, dest: StoreRef) -> tuple[int, int]:
    """Studies built by an update of ``dest``, and the most tasks the scheduler held meanwhile."""
    client.run_on_scheduler(_reset_peak)
    summary = update(sources, dest, TINY, batch_size=BATCH)
    assert not summary.failed
    return len(summary.added), client.run_on_scheduler(_recorded_peak)


def test_tasks_in_flight_do_not_grow_with_the_number_of_studies(client, tmp_path):
    sources, dest = StoreRef(str(tmp_path / "s.zarr")), StoreRef(str(tmp_path / "d.zarr"))
    with dask.config.set(scheduler="synchronous"):
        _tiny_sources(sources, range(BATCH))
    one_batch = _peak_tasks(client, sources, dest)
    with dask.config.set(scheduler="synchronous"):
        _tiny_sources(sources, range(BATCH, STUDIES))
    many_batches = _peak_tasks(client, sources, dest)
    print(f"peak tasks on the scheduler (studies, peak): {one_batch}, {many_batches}")
    assert one_batch[0] == BATCH and many_batches[0] == STUDIES - BATCH
    assert one_batch[1] >= BATCH  # at least a task per study: the recorder sees the work
    # Independent of the number of studies: one batch, plus at most the tail of the one before
    # (the scheduler forgets released tasks asynchronously). All at once would be ~5 batches.
    assert many_batches[1] <= 2 * one_batch[1]
