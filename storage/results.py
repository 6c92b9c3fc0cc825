"""The evaluation results store: per (study, view, label) metric values, flags, commit flags.

An evaluation folder holds ``metrics.zarr`` (this schema), ``metrics.csv`` (the same values,
one row per study, view and class) and the aggregate tables. Layout of ``metrics.zarr``:

- one float64 variable per metric name, dims (study, view, label), NaN where undefined;
- ``gt_empty``, ``pred_empty`` (study, view, label) bool; ``gt_components``,
  ``pred_components`` (study, view, label) int32 (-1: not evaluated);
- ``gt_available`` (study, label) bool; ``pixel_spacing`` (study, view) float32 mm;
- ``evaluated`` (study,) bool, written last for each batch: readers skip the other rows.

Arrays are chunked ``STUDY_CHUNK`` studies per chunk and written by the client only, a batch
at a time, so one writer touches each chunk. Like the dataset store, the store is laid out
first from a lazy template (metadata and coordinates), then filled by region writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dask.array as da
import fsspec
import numpy as np
import xarray as xr
import zarr

from storage.location import StoreRef

RESULTS_FORMAT = 1
STUDY_CHUNK = 256
RESULTS_STORE = "metrics.zarr"
_CASE_DIMS = ("study", "view", "label")
FLAGS: dict[str, tuple[tuple[str, ...], type, Any]] = {
    "gt_empty": (_CASE_DIMS, np.bool_, False),
    "pred_empty": (_CASE_DIMS, np.bool_, False),
    "gt_components": (_CASE_DIMS, np.int32, -1),
    "pred_components": (_CASE_DIMS, np.int32, -1),
    "gt_available": (("study", "label"), np.bool_, False),
    "pixel_spacing": (("study", "view"), np.float32, np.nan),
}


def child(folder: StoreRef, name: str) -> StoreRef:
    """The address ``name`` inside ``folder`` (a path or URL prefix)."""
    return StoreRef(f"{folder.url.rstrip('/')}/{name}", folder.storage_options)


def results_template(
    studies: Sequence[str],
    metric_names: Sequence[str],
    coords: Mapping[str, Any],
    attrs: Mapping[str, Any],
) -> xr.Dataset:
    """A lazy results dataset (nothing computed); ``coords`` must hold ``view`` and ``label``."""
    sizes = {"study": len(studies), **{dim: len(coords[dim][1]) for dim in ("view", "label")}}
    schema = _schema(metric_names)
    variables = {}
    for name, (dims, dtype, fill) in schema.items():
        shape = tuple(sizes[d] for d in dims)
        chunks = (min(STUDY_CHUNK, max(sizes["study"], 1)), *shape[1:])
        variables[name] = (dims, da.full(shape, fill, dtype=dtype, chunks=chunks))
    variables["evaluated"] = (("study",), np.zeros(len(studies), bool))
    all_coords = {"study": ("study", np.array(studies, dtype=object)), **coords}
    full_attrs = {"rga_results_format": RESULTS_FORMAT, **attrs}
    return xr.Dataset(variables, coords=all_coords, attrs=full_attrs)


def _schema(metric_names: Iterable[str]) -> dict[str, tuple[tuple[str, ...], type, Any]]:
    metrics = {name: (_CASE_DIMS, np.float64, np.nan) for name in metric_names}
    clash = set(metrics) & set(FLAGS)
    if clash:
        raise ValueError(f"metric names clash with result variables: {sorted(clash)}")
    return {**metrics, **FLAGS}


def _encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    encoding = {}
    for name in ds.data_vars:
        shape = ds[name].shape
        encoding[name] = {
            "chunks": (min(STUDY_CHUNK, max(shape[0], 1)), *shape[1:]),
            "fill_value": _fill(ds[name].dtype),
        }
    return encoding


def _fill(dtype: np.dtype) -> Any:
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "i":
        return -1
    return False


def create_results(ref: StoreRef, template: xr.Dataset) -> None:
    """Lay out a new results store (replacing one there): metadata, coordinates, no values."""
    template.to_zarr(
        ref.open(),
        mode="w",
        compute=False,
        encoding=_encoding(template),
        consolidated=False,
        zarr_format=3,
    )


def write_results(ref: StoreRef, values: xr.Dataset, region: slice) -> None:
    """Write the values of studies ``region`` (variables on ``study``, no coordinates)."""
    values.drop_vars(list(values.coords)).to_zarr(
        ref.open(), region={"study": region}, consolidated=False, zarr_format=3
    )


def mark_evaluated(ref: StoreRef, region: slice, evaluated: np.ndarray) -> None:
    """Set the ``evaluated`` flags of ``region``: the last write of a batch."""
    flags = xr.Dataset({"evaluated": ("study", np.asarray(evaluated, bool))})
    flags.to_zarr(ref.open(), region={"study": region}, consolidated=False, zarr_format=3)


def open_results(ref: StoreRef, *, include_unevaluated: bool = False) -> xr.Dataset:
    """Open a results store, or the ``metrics.zarr`` of an evaluation folder, lazily."""
    if not _is_results(ref) and _is_results(child(ref, RESULTS_STORE)):
        ref = child(ref, RESULTS_STORE)
    if not _is_results(ref):
        raise FileNotFoundError(f"no evaluation results at {ref.url} (run `rga evaluate` first)")
    ds = xr.open_zarr(ref.open(read_only=True), consolidated=False, zarr_format=3)
    if include_unevaluated:
        return ds
    return ds.isel(study=np.flatnonzero(ds["evaluated"].values))


def _is_results(ref: StoreRef) -> bool:
    if not ref.exists():
        return False
    return "rga_results_format" in zarr.open_group(ref.open(read_only=True), mode="r").attrs


def write_text(ref: StoreRef, text: str) -> None:
    """Write a small text file (a table) at ``ref``'s address."""
    with open_text_for_writing(ref) as handle:
        handle.write(text)


def open_text_for_writing(ref: StoreRef) -> Any:
    """A text handle at ``ref``'s address (path or URL), for streaming a table row by row."""
    if ref.is_local:
        ref.local_path.parent.mkdir(parents=True, exist_ok=True)
        return open(ref.local_path, "w", encoding="utf-8", newline="")
    return fsspec.open(ref.url, "w", encoding="utf-8", newline="", **ref.storage_options).open()
