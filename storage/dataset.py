"""The dataset store: its schema, its template, and the commit protocol.

The schema is the public contract (see docs/DESIGN.md). Heavy per-study arrays are sharded one
shard per study, so that exactly one task writes each study's object; inner chunks hold one
(study, view, label) mask, so that reading one class of one study costs one chunk. Small
per-study arrays are chunked across many studies and written by the client only.

Commit protocol (one writer at a time, see storage/lock.py):
1. Slots: new rows are appended from a lazy template (metadata, study ids, ``committed`` False),
   then the metadata is consolidated. The consolidated root document is the readers' table of
   contents and is replaced in one atomic write, so readers see either the old shapes or the new.
2. Data: workers write each slot's heavy shard; the client writes the small per-study arrays.
3. Commit: the client rewrites ``committed``, a single-chunk array (one object, so the flags of
   many studies flip in one atomic write). A changed study is rebuilt in a spare slot and the
   flip retires its old slot in the same write. Readers filter on ``committed``.
A crash leaves only uncommitted slots (reused by the next run) or, mid-append, arrays of unequal
length, which ``repair`` evens out; readers keep the consistent consolidated view meanwhile.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import fsspec
import numpy as np
import xarray as xr
import zarr
from dask.base import tokenize
from dask.delayed import Delayed

from storage.location import StoreRef
from storage.row_map import RowMap

DATASET_FORMAT = 1
SMALL_CHUNK = 512  # studies per chunk of the small per-study arrays
COMMITTED_CHUNK = 1 << 20  # all flags in one object, so a commit is one atomic write


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
    # clinical measurements (flows/measure.py): NaN, grade -1 and a reason when excluded
    "cardiothoracic_ratio": Variable(("study",), np.float32, np.nan, False),
    "spinal_curvature_deg": Variable(("study",), np.float32, np.nan, False),
    "kyphosis_deg": Variable(("study",), np.float32, np.nan, False),
    "cardiomegaly_grade": Variable(("study",), np.int8, -1, False),
    "scoliosis_grade": Variable(("study",), np.int8, -1, False),
    "kyphosis_grade": Variable(("study",), np.int8, -1, False),
    "cardiomegaly_exclusion": Variable(("study",), object, "", False),
    "scoliosis_exclusion": Variable(("study",), object, "", False),
    "kyphosis_exclusion": Variable(("study",), object, "", False),
    "input_hash": Variable(("study",), object, "", False),
    "committed": Variable(("study",), np.bool_, False, False),
}
HEAVY: tuple[str, ...] = tuple(n for n, v in SCHEMA.items() if v.per_study_shard)
SMALL: tuple[str, ...] = (
    "footprint",
    "available",
    "pixel_spacing",
    "cardiothoracic_ratio",
    "spinal_curvature_deg",
    "kyphosis_deg",
    "cardiomegaly_grade",
    "scoliosis_grade",
    "kyphosis_grade",
    "cardiomegaly_exclusion",
    "scoliosis_exclusion",
    "kyphosis_exclusion",
)


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
        if name == "committed" or var.dtype is object:
            # written eagerly: every row starts uncommitted, and strings cannot be lazy here
            data: Any = np.full(shape, var.fill, dtype=var.dtype)
        else:
            data = da.full(shape, var.fill, dtype=var.dtype, chunks=_chunks(var, shape))
        variables[name] = (var.dims, data)
    all_coords = {"study": ("study", np.array(studies, dtype=object)), **coords}
    return xr.Dataset(variables, coords=all_coords, attrs=dict(attrs))


def _chunks(var: Variable, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Zarr chunks: fixed sizes, so that any sequence of appends gives the same bytes."""
    if var.per_study_shard:
        return (1, *shape[1:])
    if var is SCHEMA["committed"]:
        return (COMMITTED_CHUNK,)
    return (SMALL_CHUNK, *shape[1:])


def encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Zarr chunks, shards and fill values for every variable of ``ds``."""
    enc: dict[str, dict[str, Any]] = {
        name: {"chunks": (SMALL_CHUNK,)} for name in ds.coords if ds[name].dims == ("study",)
    }
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
    _to_zarr(lazy_template, ref, mode="w", compute=False, encoding=encoding(lazy_template))
    consolidate(ref)


def append(ref: StoreRef, study_ids: Sequence[str], splits: Sequence[str]) -> None:
    """Add uncommitted slots (ids and split, no data) at the end, then publish the new shapes.

    Done with zarr directly: xarray's append mode rewrites the root document (attributes),
    which would drop the consolidated metadata readers rely on until the next consolidation.
    """
    root = zarr.open_group(ref.open(), mode="r+", use_consolidated=False)
    old = root["study"].shape[0]
    new = old + len(study_ids)
    for array in _along_study(root):
        array.resize((new, *array.shape[1:]))
    name_slots(ref, range(old, new), study_ids, splits)
    consolidate(ref)


def name_slots(
    ref: StoreRef, slots: Sequence[int], study_ids: Sequence[str], splits: Sequence[str]
) -> None:
    """Write the study id and split of (uncommitted) slots before their data is built.

    With zarr directly: xarray's region writes leave index coordinates such as ``study`` alone.
    """
    if not len(slots):
        return
    root = zarr.open_group(ref.open(), mode="r+", use_consolidated=False)
    index = np.asarray(slots, dtype=np.int64)
    root["study"].oindex[index] = np.array(study_ids, dtype=object)
    root["split"].oindex[index] = np.array(splits, dtype=object)


def _along_study(root: zarr.Group) -> list[zarr.Array]:
    with _quiet_listing():
        arrays = [array for _, array in root.arrays()]
    return [a for a in arrays if (a.metadata.dimension_names or ())[:1] == ("study",)]


def is_complete(ref: StoreRef) -> bool:
    """Whether the store's creation finished (its root document carries the consolidated
    metadata, written last by ``create``; later writes never touch the root document)."""
    try:
        zarr.open_group(ref.open(read_only=True), mode="r", use_consolidated=True)
    except ValueError:  # zarr: "Consolidated metadata requested ... but not found"
        return False
    return True


def consolidate(ref: StoreRef) -> None:
    """Rewrite the readers' table of contents (one atomic write of the root document)."""
    with _quiet_listing():
        zarr.consolidate_metadata(ref.open(), zarr_format=3)


def write_heavy(ref: StoreRef, projected: xr.Dataset, region: slice) -> Delayed:
    """A delayed write of the heavy arrays of slots ``region`` (one shard per dask chunk)."""
    heavy = _region_only(projected[list(HEAVY)])
    return _to_zarr(heavy, ref, region={"study": region}, compute=False)


def write_small(ref: StoreRef, values: xr.Dataset, region: slice) -> None:
    """Write small per-study arrays (footprints, spacing, ids, ...) from the client."""
    _to_zarr(_region_only(values), ref, region={"study": region})


def _to_zarr(ds: xr.Dataset, ref: StoreRef, **options: Any) -> Delayed | None:
    """Every write goes here: zarr v3, and never consolidated implicitly (see ``consolidate``)."""
    with _quiet_listing():
        return ds.to_zarr(ref.open(), consolidated=False, zarr_format=3, **options)


@contextlib.contextmanager
def _quiet_listing() -> Iterator[None]:
    """Zarr warns about the build log (a plain object beside the arrays) when it lists the
    hierarchy, and that consolidated metadata is not in the v3 spec yet (xarray reads it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        warnings.filterwarnings("ignore", message="Object at .* is not recognized")
        yield


def set_committed(ref: StoreRef, flags: Mapping[int, bool]) -> None:
    """Set the ``committed`` flag of each slot in ``flags`` in one write: the commit point."""
    if not flags:
        return
    committed = zarr.open_array(ref.open(), path="committed", mode="r+")
    values = committed[...]
    for slot, flag in flags.items():
        values[slot] = flag
    committed[...] = values


def erase(ref: StoreRef, slots: Sequence[int]) -> None:
    """Delete the heavy shards of uncommitted slots (their objects, not just their values)."""
    fs, root = fsspec.core.url_to_fs(ref.url, **dict(ref.storage_options))
    for name in HEAVY:
        for slot in slots:
            shard_prefix = f"{root.rstrip('/')}/{name}/c/{slot}"  # zarr v3 default chunk keys
            if fs.exists(shard_prefix):
                fs.rm(shard_prefix, recursive=True)


@dataclass(frozen=True)
class StoreIndex:
    """What a store holds per slot, read from its small arrays only."""

    study: tuple[str, ...]
    committed: np.ndarray
    input_hash: tuple[str, ...]
    attrs: Mapping[str, Any]


def read_index(ref: StoreRef) -> StoreIndex:
    """Slots, their ids, commit flags and input hashes (writers' view, not consolidated)."""
    root = zarr.open_group(ref.open(read_only=True), mode="r", use_consolidated=False)
    n = root["study"].shape[0]
    return StoreIndex(
        study=tuple(str(v) for v in root["study"][...]),
        committed=np.asarray(root["committed"][:n], bool),
        input_hash=tuple(str(v) for v in root["input_hash"][:n]),
        attrs=dict(root.attrs),
    )


def repair(ref: StoreRef) -> bool:
    """Finish an append a crash interrupted: even out the arrays' lengths and publish them.

    Returns True if there was anything to repair. Must run before anything is committed, so
    that every committed slot lies within the shapes readers see.
    """
    root = zarr.open_group(ref.open(), mode="r+", use_consolidated=False)
    along_study = _along_study(root)
    longest = max(a.shape[0] for a in along_study)
    short = [a for a in along_study if a.shape[0] != longest]
    for array in short:
        array.resize((longest, *array.shape[1:]))
    published = zarr.open_group(ref.open(read_only=True), mode="r", use_consolidated=True)
    stale = published["study"].shape[0] != longest
    if short or stale:
        consolidate(ref)
    return bool(short or stale)


def _region_only(ds: xr.Dataset) -> xr.Dataset:
    """Drop everything without a study dimension: region writes may only touch the region."""
    keep = [name for name in ds.variables if "study" in ds[name].dims]
    return ds[[v for v in ds.data_vars if v in keep]].drop_vars(
        [c for c in ds.coords if c not in keep]
    )


def open_dataset(ref: StoreRef | Any, *, committed_only: bool = True) -> xr.Dataset:
    """Open a dataset store lazily through its consolidated metadata (the readers' view).

    Only the ``committed`` flags and the coordinates are read. Every variable is a Dask array
    chunked like the store's write unit: one chunk per study shard, ``SMALL_CHUNK`` studies
    for the small arrays. A chunk per (study, view, label) mask would be 42 million chunks at
    100,000 studies, and Dask materialises them all on the first slicing (61 s, 6.5 GB). One
    slicing of a chunk is fused into its read, so ``catalog.select`` narrows in one ``isel``.
    The rows are chosen before Dask sees them (storage/row_map.py).
    """
    store = ref.open(read_only=True) if isinstance(ref, StoreRef) else ref
    ds = xr.open_dataset(
        store, engine="zarr", consolidated=True, zarr_format=3, chunks=None, cache=False
    )
    committed = ds["committed"].values
    rows = np.flatnonzero(committed) if committed_only else np.arange(committed.size)
    source = ref.url if isinstance(ref, StoreRef) else repr(store)
    variables = {
        name: xr.Variable(SCHEMA[name].dims, _read_lazily(ds, name, rows, source), ds[name].attrs)
        for name in SCHEMA
        if name in ds
    }
    return ds.drop_vars(list(variables)).isel(study=rows).assign(variables)


def _read_lazily(ds: xr.Dataset, name: str, rows: np.ndarray, source: str) -> da.Array:
    """Variable ``name``'s ``rows`` as a Dask array with the store's chunks."""
    var, stored = SCHEMA[name], ds[name].variable
    shape = (len(rows), *stored.shape[1:])
    chunks = _chunks(var, shape)
    token = tokenize(source, name, rows)
    return da.from_array(RowMap(stored, rows, token), chunks=chunks, name=f"{name}-{token}")
