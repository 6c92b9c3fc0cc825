"""A small phantom dataset built in-process: the fault-free reference many tests compare to."""

from pathlib import Path

import dask

from flows.build import BuildParameters
from flows.ingest import ingest
from flows.phantom import phantom_inputs
from flows.update import build
from storage.location import StoreRef


def reference_build(
    root: Path, studies: int, shape: tuple[int, int, int], params: BuildParameters
) -> tuple[StoreRef, StoreRef]:
    """``studies`` phantoms (seed 5) ingested into ``root/sources.zarr`` and built into
    ``root/reference.zarr`` on the synchronous scheduler; returns (sources, reference)."""
    sources = StoreRef(str(root / "sources.zarr"))
    reference = StoreRef(str(root / "reference.zarr"))
    with dask.config.set(scheduler="synchronous"):
        ingest(phantom_inputs(studies, shape, seed=5), sources)
        build(sources, reference, params)
    return sources, reference
