"""Shared fixtures: one small demo build (real local cluster) reused by the read-side tests."""

from pathlib import Path

import pytest
from distributed import LocalCluster
from faultproxy import loopback_s3

from flows.cli import main

DEMO_SHAPE = ("64", "64", "96")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A demo build of three phantom studies, made through the CLI on a local Dask cluster."""
    folder = tmp_path_factory.mktemp("demo")
    code = main(["demo", str(folder), "--studies", "3", "--shape", *DEMO_SHAPE, "--workers", "2"])
    assert code == 0
    return folder


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto) on loopback; yields storage options that reach it.

    Buckets are created without a region, as moto's server expects; each test makes its own.
    """
    with loopback_s3() as options:
        yield options


@pytest.fixture(scope="session")
def scheduler() -> str:
    """The address of a real local Dask cluster (two worker processes on loopback)."""
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster.scheduler_address
