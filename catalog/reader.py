"""The read side: open a dataset store lazily and select by label, system, level and view."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from storage.dataset import open_dataset
from storage.location import StoreRef

Names = str | Sequence[str]


def open_catalog(
    store: str | StoreRef | Any,
    storage_options: Mapping[str, Any] | None = None,
    *,
    include_uncommitted: bool = False,
) -> xr.Dataset:
    """The dataset as a lazy ``xarray.Dataset``, holding only committed studies.

    ``store`` is a path, an fsspec URL (``s3://...`` with ``storage_options``), a ``StoreRef``
    or a zarr store object. Nothing but metadata and the ``committed`` flags is read here.
    """
    if isinstance(store, str):
        store = StoreRef(store, dict(storage_options or {}))
    ds = open_dataset(store)
    if include_uncommitted:
        return ds
    return ds.isel(study=np.flatnonzero(ds["committed"].values))


def select(
    ds: xr.Dataset,
    *,
    label: Names | None = None,
    system: Names | None = None,
    organ: Names | None = None,
    level: Names | None = None,
    view: Names | None = None,
    study: Names | None = None,
    split: Names | None = None,
) -> xr.Dataset:
    """Narrow a catalog lazily; each argument is one name or a list, combined with AND.

    ``system`` also narrows the ``region`` axis to those systems.
    """
    for dim, wanted in (("label", label), ("view", view), ("study", study)):
        if wanted is not None:
            ds = ds.sel({dim: _checked(ds, dim, _as_list(wanted))})
    for coord, wanted in (("system", system), ("organ", organ), ("level", level)):
        if wanted is not None:
            ds = ds.isel(label=_matching(ds, coord, _as_list(wanted)))
    if system is not None and "region" in ds.dims:
        ds = ds.sel(region=_checked(ds, "region", _as_list(system)))
    if split is not None:
        ds = ds.isel(study=_matching(ds, "split", _as_list(split)))
    return ds


def _as_list(names: Names) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _checked(ds: xr.Dataset, dim: str, names: list[str]) -> list[str]:
    known = [str(v) for v in ds[dim].values]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(f"no {dim} named {name!r} in this dataset{hint}")
    return names


def _matching(ds: xr.Dataset, coord: str, values: list[str]) -> np.ndarray:
    names = [str(v) for v in ds[coord].values]
    unknown = [v for v in values if v not in set(names)]
    if unknown and names:
        raise KeyError(f"no {coord} {unknown[0]!r}; known: {', '.join(sorted(set(names)))}")
    return np.flatnonzero([name in values for name in names])
