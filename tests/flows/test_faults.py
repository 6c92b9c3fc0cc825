"""Faults on the way to object storage: ingest, build and update through a proxy that drops
connections, loses answers, answers 5xx, stalls and truncates bodies at seeded random points
(tests/faultproxy.py) in front of the loopback S3 server. Every run either completes or fails
with a sentence naming the study or the store; no committed study is ever altered; reruns
finish the work, and the result equals a fault-free local build."""

import hashlib
import uuid

import dask
import numpy as np
import pytest
import s3fs
import xarray as xr
from faultproxy import FAULTS, FaultProxy
from phantoms import reference_build

from flows.build import BuildParameters
from flows.cli import main
from storage.location import StoreRef
from storage.lock import LEASE_SECONDS_CONFIG

SHAPE = (48, 48, 48)
SMALL = BuildParameters(canvas=48)
RATE = 0.01  # one request in a hundred meets a fault


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    """Digests of the four studies of a fault-free local build."""
    return _digests(reference_build(tmp_path_factory.mktemp("faults"), 4, SHAPE, SMALL)[1])


def _digests(dest: StoreRef) -> dict[str, str]:
    """Per committed study, a digest of everything a reader gets for it."""
    names = ["image", "mask", "region_mask", "footprint", "available", "pixel_spacing"]
    # Without Dask chunks zarr reads each shard whole: one request, not one per label.
    ds = xr.open_zarr(dest.open(read_only=True), consolidated=True, chunks=None)
    ds = ds.isel(study=np.flatnonzero(ds["committed"].values))[names].load()
    return {
        str(study): hashlib.sha256(
            b"".join(ds[name].isel(study=i).values.tobytes() for name in names)
        ).hexdigest()
        for i, study in enumerate(ds.study.values)
    }


def _run(argv: list[str], capsys) -> int:
    """``rga argv`` in this process; a failure must be one sentence per problem, exit 1."""
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    if code:
        assert code == 1, err
        assert "phantom-" in err or "stopped" in err, err  # the study, or the store
    return code


class Store:
    """A dataset location on the S3 server, checked around the proxy after every run."""

    def __init__(self, s3_server: dict, reference: dict[str, str]):
        self.bucket = f"faults-{uuid.uuid4().hex[:8]}"
        self.fs = s3fs.S3FileSystem(**s3_server)
        self.fs.mkdir(self.bucket)
        self.direct = StoreRef(f"s3://{self.bucket}/d.zarr", s3_server)
        self.reference = reference
        self.seen: dict[str, str] = {}

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{name}"

    def never_altered(self) -> None:
        """Every committed study is as a clean build has it and as it was when first seen."""
        if not self.fs.exists(f"{self.bucket}/d.zarr/zarr.json"):
            return
        now = _digests(self.direct)
        assert all(now[s] == self.reference[s] for s in now), "a committed study is not as built"
        assert all(now.get(s) == d for s, d in self.seen.items()), "a committed study changed"
        self.seen.update(now)


def _flags(s3_server: dict, proxy: FaultProxy, **extra: str) -> list[str]:
    options = {**s3_server, **proxy.options, **extra}
    flags = [f"--storage-option={key}={value}" for key, value in options.items()]
    return ["--scheduler", "synchronous", *flags]


PHANTOM = ["--layout", "phantom", "--shape", *map(str, SHAPE), "--seed", "5"]
SIZE = ["--image-size", str(SMALL.canvas)]


def test_with_the_clients_retries_every_run_completes_through_faults(reference, s3_server, capsys):
    # s3fs and botocore retry refused connections, lost answers, 5xx and truncated bodies,
    # and the lease recognises its own writes whose answers were lost (storage/lock.py).
    store = Store(s3_server, reference)
    with FaultProxy(s3_server["endpoint_url"], seed=11, rate=RATE) as proxy:
        common = _flags(s3_server, proxy)
        v1, v2, dest = store.url("v1.zarr"), store.url("v2.zarr"), store.url("d.zarr")
        assert _run(["ingest", v1, *PHANTOM, "--studies", "3", *common], capsys) == 0
        assert _run(["update", v1, dest, *SIZE, *common], capsys) == 0
        store.never_altered()
        assert _run(["ingest", v2, *PHANTOM, "--studies", "4", *common], capsys) == 0
        assert _run(["update", v2, dest, *SIZE, *common], capsys) == 0
        store.never_altered()
    assert _digests(store.direct) == reference  # the same bytes as a fault-free local build
    assert set(proxy.injected) == set(FAULTS), proxy.injected  # every kind was met


@pytest.fixture
def short_lease():
    """A run whose lease release was lost leaves the lease held until it is stale; the next
    run waits that out (--wait) and takes over, so the lease is short here."""
    with dask.config.set({LEASE_SECONDS_CONFIG: 4}):
        yield


def test_without_retries_runs_fail_cleanly_and_a_rerun_repairs(
    reference, s3_server, capsys, short_lease
):
    # With no client retries every fault reaches rga: the runs fail, study by study or with
    # one sentence for the store, and never alter a committed study; a rerun finishes the work.
    store = Store(s3_server, reference)
    v1, v2, dest = store.url("v1.zarr"), store.url("v2.zarr"), store.url("d.zarr")
    with FaultProxy(s3_server["endpoint_url"], seed=7, rate=3 * RATE) as proxy:
        proxy.enabled = False  # clean sources, and a first build of three studies
        common = _flags(s3_server, proxy)
        for sources, studies in ((v1, "3"), (v2, "4")):
            assert _run(["ingest", sources, *PHANTOM, "--studies", studies, *common], capsys) == 0
        assert _run(["update", v1, dest, *SIZE, *common], capsys) == 0
        store.never_altered()
        proxy.enabled = True
        no_retries = '{"retries": {"max_attempts": 1}}'
        fragile = [*_flags(s3_server, proxy, config_kwargs=no_retries), "--wait"]
        codes = []
        for _ in range(5):
            codes.append(_run(["update", v2, dest, *SIZE, *fragile], capsys))
            store.never_altered()
        proxy.enabled = False
        assert _run(["update", v2, dest, *SIZE, *common, "--wait"], capsys) == 0
    assert sum(proxy.injected.values()) > 0, codes  # faults met the runs (s3fs's own retries
    # may still absorb them all: which runs fail depends on the order of concurrent requests)
    assert _digests(store.direct) == reference
