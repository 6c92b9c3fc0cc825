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

STUDIES = 300
FEW = 2 * 32  # two full batches: the peak of a small build
BATCH = 32
SIDE = 16
TINY = BuildParameters(canvas=SIDE)
MASKED = ("heart", "left lung", "right lung", "aorta")


class PeakTasks(SchedulerPlugin):
    """Records the most tasks the scheduler ever held at once (checked on every transition)."""

    name = "peak-tasks"

    def __init__(self) -> None:
        self.peak = 0

    async def start(self, scheduler) -> None:
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        self.peak = max(self.peak, len(self.scheduler.tasks))


def _tiny_sources(ref: StoreRef, count: int) -> None:
    """``count`` real but tiny studies (16^3 CT, a few box masks) written straight to the store."""
    taxonomy = load_taxonomy()
    root = create_sources(ref, taxonomy.names)
    rng = np.random.default_rng(0)
    for n in range(count):
        ct = rng.integers(-1000, 1000, (SIDE, SIDE, SIDE), dtype=np.int16)
        masks = [
            (taxonomy.index(name), (i, 2, 2), np.ones((4, 8, 8), bool))
            for i, name in enumerate(MASKED)
        ]
        write_study(
            root,
            f"s{n:04d}",
            ct=ct,
            spacing=(2.0, 2.0, 2.0),
            affine=np.diag([2.0, 2.0, 2.0, 1.0]),
            masks=masks,
            attrs={"split": "train"},
        )


@pytest.fixture(scope="module")
def client():
    """A two-worker local cluster on loopback, with the peak-task recorder on its scheduler."""
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
        as cluster,
        Client(cluster) as client,
    ):
        yield client


def _peak_tasks_of_update(client: Client, tmp_path, count: int) -> int:
    tmp_path.mkdir()
    sources, dest = StoreRef(str(tmp_path / "s.zarr")), StoreRef(str(tmp_path / "d.zarr"))
    with dask.config.set(scheduler="synchronous"):
        _tiny_sources(sources, count)
    client.register_plugin(PeakTasks())  # replaces the previous recorder: a fresh peak
    summary = update(sources, dest, TINY, batch_size=BATCH, rebuild=True)
    assert len(summary.added) == count and not summary.failed
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins["peak-tasks"].peak)


def test_tasks_in_flight_do_not_grow_with_the_number_of_studies(client, tmp_path):
    few = _peak_tasks_of_update(client, tmp_path / "few", FEW)
    many = _peak_tasks_of_update(client, tmp_path / "many", STUDIES)
    print(f"peak tasks on the scheduler: {few} for {FEW} studies, {many} for {STUDIES}")
    assert 0 < many <= few  # 300 studies hold no more tasks at once than 64 do
    # And a batch is a batch: far fewer tasks than one graph of every study would hold.
    assert many < STUDIES * few / FEW
