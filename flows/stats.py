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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from catalog.taxonomy import SYSTEMS
from flows.maths.bootstrap import LEVEL, RESAMPLES, SEED, ratio_of_sums_ci
from flows.maths.footprint import FootprintSummary
from flows.maths.measurements import DEFAULT_CUT_POINTS, CutPoints
from flows.measure import MEASUREMENT_VARIABLES, exclusion_table, summary_table
from flows.reports.tables import Table

READ_VARIABLES: tuple[str, ...] = ("footprint", "available", "pixel_spacing")


@dataclass(frozen=True)
class DatasetStatistics:
    """Every statistics table of a dataset and the values its figures draw."""

    tables: tuple[Table, ...]
    footprint: FootprintSummary
    measured: xr.Dataset | None  # the per-study measurement variables, if the store has them
    cut_points: CutPoints


@dataclass(frozen=True)
class _Arrays:
    """The small per-study arrays, loaded once."""

    footprint: np.ndarray  # (study, view, label) int
    available: np.ndarray  # (study, label) bool
    stored: np.ndarray  # (study, view) bool: projection written
    split: np.ndarray  # (study,) str
    system: np.ndarray  # (label,) str
    views: tuple[str, ...]
    image_pixels: int


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
    tables.append(prevalence_table(ds, arrays))
    return DatasetStatistics(tuple(tables), footprint, measured, cut_points)


def _load(ds: xr.Dataset) -> _Arrays:
    small = ds[list(READ_VARIABLES)].compute()
    return _Arrays(
        footprint=np.asarray(small["footprint"].values, np.int64),
        available=np.asarray(small["available"].values, bool),
        stored=np.isfinite(np.asarray(small["pixel_spacing"].values, float)),
        split=np.array([str(s) for s in ds["split"].values], object),
        system=np.array([str(s) for s in ds["system"].values], object),
        views=tuple(str(v) for v in ds["view"].values),
        image_pixels=int(ds.sizes["y"] * ds.sizes["x"]),
    )


def _splits(arrays: _Arrays) -> list[str]:
    """Splits in a stable order: train, valid(ation), test first, then others by name."""
    first = ["train", "valid", "validation", "val", "test"]
    present = sorted(set(arrays.split))
    return [s for s in first if s in present] + [s for s in present if s not in first]


def inventory_table(arrays: _Arrays) -> Table:
    """Paper Table 2: studies, projections and masks (stored, available, non-empty) by split."""
    splits = _splits(arrays)
    in_split = [arrays.split == s for s in splits] + [np.ones(len(arrays.split), bool)]
    region_members = np.array([arrays.system == s for s in SYSTEMS])  # (region, label)
    nonempty = arrays.footprint > 0  # (study, view, label)
    region_nonempty = (nonempty[:, :, None, :] & region_members[None, None]).any(axis=-1)
    region_available = (arrays.available[:, None, :] & region_members[None]).any(axis=-1)
    n_labels, n_regions = arrays.footprint.shape[-1], len(SYSTEMS)

    def count(values_by_view: np.ndarray, view: int | None) -> list[int]:
        """Sum over studies of each split (and all) for one view, or both views."""
        picked = values_by_view if view is None else values_by_view[:, view : view + 1]
        return [int(picked[rows].sum()) for rows in in_split]

    stored = arrays.stored.astype(np.int64)  # (study, view)
    available_per_view = arrays.available.sum(axis=1)[:, None] * arrays.stored
    regions_available = region_available.sum(axis=1)[:, None] * arrays.stored
    rows: list[tuple] = [("Studies", "", *count(np.ones((len(stored), 1), np.int64), None))]
    rows += [("Projections", view, *count(stored, v)) for v, view in enumerate(arrays.views)]
    sections = (
        ("Anatomy masks, stored", stored * n_labels),
        ("Anatomy masks, available", available_per_view),
        ("Anatomy masks, non-empty", (nonempty & arrays.stored[..., None]).sum(axis=-1)),
        ("Region masks, stored", stored * n_regions),
        ("Region masks, available", regions_available),
        ("Region masks, non-empty", (region_nonempty & arrays.stored[..., None]).sum(axis=-1)),
    )
    for title, per_view in sections:
        rows += [(title, view, *count(per_view, v)) for v, view in enumerate(arrays.views)]
        rows.append((title, "Total", *count(per_view, None)))
    columns = ("item", "view", *splits, "total")
    notes = (
        f"stored: every class has a mask per projection ({n_labels} classes, {n_regions} "
        "regions); available: the input provided the class; non-empty: footprint > 0.",
    )
    return Table("inventory", "Dataset inventory (paper Table 2)", columns, tuple(rows), notes)


def footprint_summary(
    arrays: _Arrays, resamples: int = RESAMPLES, seed: int = SEED
) -> FootprintSummary:
    """Mean non-empty footprint of available classes per system and view, with intervals."""
    counted = (arrays.footprint > 0) & arrays.available[:, None, :] & arrays.stored[..., None]
    pixels = np.where(counted, arrays.footprint, 0)
    members = np.array([arrays.system == s for s in SYSTEMS], np.int64).T  # (label, system)
    sums = np.einsum("svl,lg->sgv", pixels, members).astype(float)  # (study, system, view)
    counts = np.einsum("svl,lg->sgv", counted.astype(np.int64), members).astype(float)
    total_counts = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums.sum(axis=0) / total_counts
    low, high = ratio_of_sums_ci(sums, counts, resamples, seed)
    return FootprintSummary(
        systems=SYSTEMS,
        views=arrays.views,
        mean=mean,
        low=low,
        high=high,
        masks=total_counts.astype(np.int64),
        image_pixels=arrays.image_pixels,
    )


def footprint_table(summary: FootprintSummary, resamples: int = RESAMPLES) -> Table:
    """Paper Table A4: mean footprint per system and view, interval, share of image, PA/LL."""
    pa, ll = summary.views.index("PA"), summary.views.index("LL")
    order = np.argsort(-np.nan_to_num(summary.mean[:, pa], nan=-1.0), kind="stable")
    rows = []
    for g in order:
        m = summary.mean[g]
        ratio = m[pa] / m[ll] if m[ll] > 0 else np.nan
        rows.append(
            (
                summary.systems[g],
                float(m[pa]),
                float(summary.low[g, pa]),
                float(summary.high[g, pa]),
                float(m[ll]),
                float(summary.low[g, ll]),
                float(summary.high[g, ll]),
                float(100 * m[pa] / summary.image_pixels),
                float(100 * m[ll] / summary.image_pixels),
                float(ratio),
                int(summary.masks[g, pa]),
                int(summary.masks[g, ll]),
            )
        )
    columns = (
        "system",
        "PA mean px",
        "PA low",
        "PA high",
        "LL mean px",
        "LL low",
        "LL high",
        "PA % of image",
        "LL % of image",
        "PA/LL",
        "PA masks",
        "LL masks",
    )
    notes = (
        f"Means over non-empty masks of available classes; {LEVEL:.0%} intervals: bootstrap "
        f"over studies ({resamples} resamples, fixed seed).",
    )
    return Table(
        "footprint", "Mean footprint by system (paper Table A4)", columns, tuple(rows), notes
    )


def prevalence_table(ds: xr.Dataset, arrays: _Arrays) -> Table:
    """Per class: studies where available, where non-empty in each view, and the prevalence."""
    available = arrays.available.sum(axis=0)
    rows = []
    levels = [str(v) for v in ds["level"].values]
    for i, label in enumerate(str(v) for v in ds["label"].values):
        row: list = [label, arrays.system[i], levels[i], int(available[i])]
        for v in range(len(arrays.views)):
            present = int(((arrays.footprint[:, v, i] > 0) & arrays.available[:, i]).sum())
            row += [present, present / available[i] if available[i] else np.nan]
        rows.append(tuple(row))
    columns = ["label", "system", "level", "available"]
    for view in arrays.views:
        columns += [f"{view} non-empty", f"{view} prevalence"]
    return Table(
        "prevalence", "Label prevalence (non-empty among available)", tuple(columns), tuple(rows)
    )
