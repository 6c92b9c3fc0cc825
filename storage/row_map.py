"""Some rows of a stored array, read by slices only: what the catalog wraps in Dask arrays.

Readers see only committed studies, a subset of the store's rows. Selecting them with an index
array costs at either level: a Dask ``isel`` plans every chunk (minutes at 100,000 studies), and
zarr's orthogonal indexing with an array on a sharded array decodes chunk by chunk (30 s and
6.8 GB to read one study's masks here, against 0.3 s by slice). ``RowMap`` maps the rows Dask
asks for to runs of consecutive store rows and reads each run with a basic slice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr


class RowMap:
    """``variable`` restricted to ``rows`` along its first axis; an input of ``da.from_array``."""

    def __init__(self, variable: xr.Variable, rows: np.ndarray, token: str) -> None:
        self.variable = variable
        self.rows = np.asarray(rows, dtype=np.int64)
        self.shape = (len(self.rows), *variable.shape[1:])
        self.dtype = variable.dtype
        self.ndim = variable.ndim
        self.token = token

    def __dask_tokenize__(self) -> str:
        return self.token

    def __getitem__(self, key: Any) -> np.ndarray:
        first, *rest = key if isinstance(key, tuple) else (key,)
        picked = self.rows[first]
        if np.ndim(picked) == 0:
            return np.asarray(self.variable[(int(picked), *rest)].values)
        runs = consecutive_runs(picked)
        if not runs:  # an empty selection still has the right shape and dtype
            runs = [slice(0, 0)]
        return np.concatenate([self.variable[(run, *rest)].values for run in runs], axis=0)


def consecutive_runs(positions: np.ndarray) -> list[slice]:
    """``positions`` as slices of consecutive ascending integers, in order."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size == 0:
        return []
    parts = np.split(positions, np.flatnonzero(np.diff(positions) != 1) + 1)
    return [slice(int(part[0]), int(part[-1]) + 1) for part in parts]
