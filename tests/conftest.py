"""Shared fixtures: one small demo build (real local cluster) reused by the read-side tests."""

from pathlib import Path

import pytest

from flows.cli import main

DEMO_SHAPE = ("64", "64", "96")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A demo build of three phantom studies, made through the CLI on a local Dask cluster."""
    folder = tmp_path_factory.mktemp("demo")
    code = main(["demo", str(folder), "--studies", "3", "--shape", *DEMO_SHAPE, "--workers", "2"])
    assert code == 0
    return folder
