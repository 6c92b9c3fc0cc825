"""Dataset statistics (paper Table 2, Table A4, label prevalence, measurements) from the
stored per-study arrays only: ``footprint``, ``available``, ``pixel_spacing``, the measurement
variables and the coordinates. No image, mask or region-mask chunk is ever read.

Definitions (docs/DESIGN.md):
- A projection is stored when its ``pixel_spacing`` is written (finite).
- Masks are counted three ways: stored (every class has a 2D mask per stored projection),
  available (the input provided the class) and non-empty (``footprint`` > 0). A region mask is
  available when any of its system's classes is, non-empty when any of their masks is.
- Mean footprint of a system and view: the mean pixel count of its non-empty masks of available
  classes; its interval is a cluster bootstrap over studies (``flows.maths.bootstrap``). Share of
  image: mean / (y * x). PA/LL: the ratio of the two means.
- Prevalence of a class in a view: studies where its mask is non-empty / studies where it is
  available.

This module loads the arrays (``flows.maths.footprints.StudyArrays``); the footprint summary is
computed by ``flows.maths.footprints`` and the tables are rendered by
``flows.reports.statistics`` and ``flows.reports.measurement``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from flows.maths.bootstrap import RESAMPLES, SEED
from flows.maths.footprints import FootprintSummary, StudyArrays, footprint_summary
from flows.maths.measurements import DEFAULT_CUT_POINTS, CutPoints
from flows.measure import MEASUREMENT_VARIABLES
from flows.reports.measurement import exclusion_table, summary_table
from flows.reports.statistics import footprint_table, inventory_table, prevalence_table
from flows.reports.tables import Table

READ_VARIABLES: tuple[str, ...] = ("footprint", "available", "pixel_spacing")


@dataclass(frozen=True)
class DatasetStatistics:
    """Every statistics table of a dataset and the values its figures draw."""

    tables: tuple[Table, ...]
    footprint: FootprintSummary
    measured: xr.Dataset | None  # the per-study measurement variables, if the store has them
    cut_points: CutPoints


def dataset_statistics(
    ds: xr.Dataset,
    cut_points: CutPoints = DEFAULT_CUT_POINTS,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> DatasetStatistics:
    """Statistics of a catalog (``open_catalog``: committed studies) from its small arrays."""
    if ds.sizes["study"] == 0:
        raise ValueError("the dataset has no committed study to describe")
    arrays = _load(ds)
    footprint = footprint_summary(arrays, resamples, seed)
    tables = [inventory_table(arrays), footprint_table(footprint, resamples)]
    measured = None
    if all(name in ds for name in MEASUREMENT_VARIABLES):
        measured = ds[list(MEASUREMENT_VARIABLES)].compute()
        tables += [summary_table(measured, cut_points), exclusion_table(measured)]
    tables.append(prevalence_table(arrays))
    return DatasetStatistics(tuple(tables), footprint, measured, cut_points)


def _load(ds: xr.Dataset) -> StudyArrays:
    small = ds[list(READ_VARIABLES)].compute()
    return StudyArrays(
        footprint=np.asarray(small["footprint"].values, np.int64),
        available=np.asarray(small["available"].values, bool),
        stored=np.isfinite(np.asarray(small["pixel_spacing"].values, float)),
        split=np.array([str(s) for s in ds["split"].values], object),
        system=np.array([str(s) for s in ds["system"].values], object),
        labels=tuple(str(v) for v in ds["label"].values),
        levels=tuple(str(v) for v in ds["level"].values),
        views=tuple(str(v) for v in ds["view"].values),
        image_pixels=int(ds.sizes["y"] * ds.sizes["x"]),
    )
