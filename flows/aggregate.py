"""Aggregate per-case metrics into the paper's tables (Tables 3 and 4): class-balanced means.

A class is one (view, label) cell. Its per-class mean is the mean over studies of the cases
where the metric is defined (NaN, e.g. both masks empty or the class unavailable, is skipped).
A partition's value is the mean over its classes of their per-class means (class-balanced: a
large class with many studies weighs as much as a rare one), over the classes where the
per-class mean is defined (``flows.maths.balanced``). Partitions: overall, view, hierarchy
level, pathology, system. ``flows.reports.evaluation`` renders the rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from catalog.taxonomy import LEVELS, SYSTEMS
from flows.maths.balanced import Row, balanced_row
from flows.maths.metrics import METRICS
from flows.reports.evaluation import overall_by_model_table
from flows.reports.tables import Table

PARTITIONS: tuple[str, ...] = ("overall", "view", "level", "pathology", "system")
HEADLINE: tuple[str, ...] = ("overall", "view")


def class_means(results: xr.Dataset, metrics: Sequence[str] = METRICS) -> xr.Dataset:
    """Per (view, label) mean over studies of each metric, and ``n_<metric>`` defined cases."""
    values = results[list(metrics)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN classes mean to NaN, as meant
        means = values.mean("study", skipna=True)
    counts = values.notnull().sum("study").rename({m: f"n_{m}" for m in metrics})
    return xr.merge([means, counts]).compute()


def partition_rows(
    per_class: xr.Dataset,
    metrics: Sequence[str] = METRICS,
    partitions: Sequence[str] = PARTITIONS,
) -> list[Row]:
    """Class-balanced means of ``per_class`` (from ``class_means``) for each partition group."""
    rows = []
    for partition in partitions:
        for group, cells in _groups(per_class, partition):
            rows.append(_row(per_class, metrics, partition, group, cells))
    return rows


def models_table(results: Mapping[str, xr.Dataset], studies: Sequence[str]) -> Table:
    """Table 3: each model's overall class-balanced means, all on the same ``studies``."""
    metrics = [m for m in METRICS if all(m in ds for ds in results.values())]
    overall = {}
    for name, ds in results.items():
        per_class = class_means(ds.sel(study=list(studies)), metrics)
        (overall[name],) = partition_rows(per_class, metrics, partitions=("overall",))
    return overall_by_model_table(overall, metrics, len(studies))


def _groups(per_class: xr.Dataset, partition: str) -> list[tuple[str, np.ndarray]]:
    """(group name, boolean (view, label) cell selection) for each group of a partition."""
    views = [str(v) for v in per_class["view"].values]
    shape = (len(views), per_class.sizes["label"])

    def on_label(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values[None, :], shape)

    if partition == "overall":
        return [("all classes", np.ones(shape, bool))]
    if partition == "view":
        view_index = np.arange(len(views))[:, None]
        return [(view, np.broadcast_to(view_index == i, shape)) for i, view in enumerate(views)]
    if partition in ("level", "system"):
        names = np.array([str(v) for v in per_class[partition].values])
        order = LEVELS if partition == "level" else SYSTEMS
        present = [g for g in order if g in set(names)]
        return [(group, on_label(names == group)) for group in present]
    if partition == "pathology":
        flags = np.asarray(per_class["pathology"].values, bool)
        return [("pathology", on_label(flags)), ("non-pathology", on_label(~flags))]
    raise ValueError(f"unknown partition {partition!r}; choose from {', '.join(PARTITIONS)}")


def _row(
    per_class: xr.Dataset, metrics: Sequence[str], partition: str, group: str, cells: np.ndarray
) -> Row:
    means = {metric: per_class[metric].values for metric in metrics}
    dice_cases = per_class["n_dice"].values if "n_dice" in per_class else None
    return balanced_row(partition, group, means, cells, dice_cases)
