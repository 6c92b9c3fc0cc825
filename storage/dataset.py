"""The dataset store: its schema, its template, and the commit protocol.

The schema is the public contract (see docs/DESIGN.md). Heavy per-study arrays are sharded one
shard per study, so that exactly one task writes each study's object; inner chunks hold one
(study, view, label) mask, so that reading one class of one study costs one chunk. Small
per-study arrays are chunked across many studies and written by the client only.

Commit protocol: the store is first laid out from a lazy template (metadata and coordinates
only, ``committed`` all False); workers then write heavy shards into their study's region; the
client writes the small arrays; ``committed`` is set last. Readers filter on ``committed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.delayed import Delayed

from storage.location import StoreRef

DATASET_FORMAT = 1
SMALL_CHUNK = 512  # studies per chunk of the small per-study arrays


@dataclass(frozen=True)
class Variable:
    """One data variable of the contract."""

    dims: tuple[str, ...]
    dtype: type
    fill: Any
    per_study_shard: bool  # heavy arrays: one shard per study, written by workers


SCHEMA: dict[str, Variable] = {
    "image": Variable(("study", "view", "y", "x"), np.uint8, 0, True),
    "mask": Variable(("study", "view", "label", "y", "x"), np.bool_, False, True),
    "region_mask": Variable(("study", "view", "region", "y", "x"), np.bool_, False, True),
    "footprint": Variable(("study", "view", "label"), np.int32, -1, False),
    "available": Variable(("study", "label"), np.bool_, False, False),
    "pixel_spacing": Variable(("study", "view"), np.float32, np.nan, False),
    "committed": Variable(("study",), np.bool_, False, False),
}
HEAVY: tuple[str, ...] = tuple(n for n, v in SCHEMA.items() if v.per_study_shard)
SMALL: tuple[str, ...] = ("footprint", "available", "pixel_spacing")


def template(
    studies: Sequence[str],
    canvas: int,
    coords: Mapping[str, Any],
    attrs: Mapping[str, Any],
) -> xr.Dataset:
    """A lazy dataset with the contract's shape; nothing in it is ever computed.

    ``coords`` maps names to (dim, values): the dimension coordinates ``view``, ``label``,
    ``region``, and any
    non-dimension ones (e.g. ``system`` on ``label``, ``split`` on ``study``).
    """
    sizes = {"study": len(studies), "y": canvas, "x": canvas}
    sizes.update({dim: len(coords[dim][1]) for dim in ("view", "label", "region")})
    variables = {}
    for name, var in SCHEMA.items():
        shape = tuple(sizes[d] for d in var.dims)
        if name == "committed":
            data: Any = np.zeros(shape, bool)  # written eagerly: every row starts uncommitted
        else:
            data = da.full(shape, var.fill, dtype=var.dtype, chunks=_chunks(var, shape))
        variables[name] = (var.dims, data)
    all_coords = {"study": ("study", np.array(studies, dtype=object)), **coords}
    return xr.Dataset(variables, coords=all_coords, attrs=dict(attrs))


def _chunks(var: Variable, shape: tuple[int, ...]) -> tuple[int, ...]:
    if var.per_study_shard:
        return (1, *shape[1:])
    return (min(SMALL_CHUNK, max(shape[0], 1)), *shape[1:])


def encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Zarr chunks, shards and fill values for every data variable of ``ds``."""
    enc: dict[str, dict[str, Any]] = {}
    for name, var in SCHEMA.items():
        if name not in ds:
            continue
        shape = ds[name].shape
        entry: dict[str, Any] = {"fill_value": var.fill}
        if var.per_study_shard:
            # one inner chunk per 2D image/mask; the shard is the whole study
            entry["chunks"] = (*(1,) * (len(shape) - 2), *shape[-2:])
            entry["shards"] = (1, *shape[1:])
        else:
            entry["chunks"] = _chunks(var, shape)
        enc[name] = entry
    return enc


def create(ref: StoreRef, lazy_template: xr.Dataset) -> None:
    """Lay out a new store: metadata, coordinates and ``committed`` = False; no data."""
    lazy_template.to_zarr(
        ref.open(),
        mode="w",
        compute=False,
        encoding=encoding(lazy_template),
        consolidated=False,
        zarr_format=3,
    )


def write_heavy(ref: StoreRef, projected: xr.Dataset, region: slice) -> Delayed:
    """A delayed write of the heavy arrays of studies ``region`` (one shard per dask chunk)."""
    heavy = _region_only(projected[list(HEAVY)])
    return heavy.to_zarr(
        ref.open(), region={"study": region}, compute=False, consolidated=False, zarr_format=3
    )


def write_small(ref: StoreRef, values: xr.Dataset, region: slice) -> None:
    """Write small per-study arrays (footprints, spacing, ...) from the client."""
    _region_only(values).to_zarr(
        ref.open(), region={"study": region}, consolidated=False, zarr_format=3
    )


def mark_committed(ref: StoreRef, region: slice, committed: np.ndarray) -> None:
    """Set the ``committed`` flags of ``region``: the last write of a build."""
    flags = xr.Dataset({"committed": ("study", np.asarray(committed, bool))})
    flags.to_zarr(ref.open(), region={"study": region}, consolidated=False, zarr_format=3)


def _region_only(ds: xr.Dataset) -> xr.Dataset:
    """Drop everything without a study dimension: region writes may only touch the region."""
    keep = [name for name in ds.variables if "study" in ds[name].dims]
    return ds[[v for v in ds.data_vars if v in keep]].drop_vars(
        [c for c in ds.coords if c not in keep]
    )


def open_dataset(ref: StoreRef | Any) -> xr.Dataset:
    """Open a dataset store lazily (dask-backed, one dask chunk per zarr chunk)."""
    store = ref.open(read_only=True) if isinstance(ref, StoreRef) else ref
    return xr.open_zarr(store, consolidated=False, zarr_format=3)
