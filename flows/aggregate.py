"""Aggregate per-case metrics into the paper's tables (Tables 3 and 4): class-balanced means.

A class is one (view, label) cell. Its per-class mean is the mean over studies of the cases
where the metric is defined (NaN, e.g. both masks empty or the class unavailable, is skipped).
A partition's value is the mean over its classes of their per-class means (class-balanced: a
large class with many studies weighs as much as a rare one), over the classes where the
per-class mean is defined. Partitions: overall, view, hierarchy level, pathology, system.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from catalog.taxonomy import LEVELS, SYSTEMS
from flows.maths.metrics import LOWER_IS_BETTER, METRICS
from flows.reports.tables import Table

PARTITIONS: tuple[str, ...] = ("overall", "view", "level", "pathology", "system")
HEADLINE: tuple[str, ...] = ("overall", "view")


@dataclass(frozen=True)
class Row:
    """One line of an aggregate table."""

    partition: str
    group: str
    classes: int  # (view, label) cells with a defined per-class Dice
    cases: int  # (study, view, label) cases with a defined Dice
    values: dict[str, float]


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
    values = {}
    for metric in metrics:
        chosen = per_class[metric].values[cells]
        chosen = chosen[np.isfinite(chosen)]
        values[metric] = float(chosen.mean()) if chosen.size else float("nan")
    dice_cases = per_class["n_dice"].values[cells] if "n_dice" in per_class else np.zeros(1)
    return Row(partition, group, int((dice_cases > 0).sum()), int(dice_cases.sum()), values)


def summary_table(rows: Sequence[Row], title: str, metrics: Sequence[str] = METRICS) -> Table:
    """The partition rows as a report table (columns named as the results' variables)."""
    columns = ("partition", "group", "classes", "cases", *metrics)
    cells = tuple(
        (row.partition, row.group, row.classes, row.cases, *(row.values[m] for m in metrics))
        for row in rows
    )
    return Table("summary", title, columns, cells, notes=(direction_note(metrics),))


def models_table(results: Mapping[str, xr.Dataset], studies: Sequence[str]) -> Table:
    """Table 3: each model's overall class-balanced means, all on the same ``studies``."""
    metrics = [m for m in METRICS if all(m in ds for ds in results.values())]
    rows = []
    for name, ds in results.items():
        per_class = class_means(ds.sel(study=list(studies)), metrics)
        (overall,) = partition_rows(per_class, metrics, partitions=("overall",))
        values = (overall.values[m] for m in metrics)
        rows.append((name, overall.classes, overall.cases, *values))
    title = f"Overall class-balanced means of each model on the {len(studies)} common studies"
    columns = ("model", "classes", "cases", *metrics)
    return Table("models", title, columns, tuple(rows), notes=(direction_note(metrics),))


def per_class_table(per_class: xr.Dataset, metrics: Sequence[str] = METRICS) -> Table:
    """One row per (view, label): hierarchy, per-class means and defined-case counts."""
    columns = ("view", "label", "system", "level", "pathology", *metrics)
    columns += tuple(f"n_{m}" for m in metrics)
    labels = [str(v) for v in per_class["label"].values]
    systems = [str(v) for v in per_class["system"].values]
    levels = [str(v) for v in per_class["level"].values]
    pathology = [bool(v) for v in per_class["pathology"].values]
    rows = []
    for v, view in enumerate(str(x) for x in per_class["view"].values):
        for i, label in enumerate(labels):
            means = tuple(float(per_class[m].values[v, i]) for m in metrics)
            counts = tuple(int(per_class[f"n_{m}"].values[v, i]) for m in metrics)
            rows.append((view, label, systems[i], levels[i], str(pathology[i]), *means, *counts))
    return Table("per_class", "Per-class means over studies", columns, tuple(rows))


def direction_note(metrics: Sequence[str]) -> str:
    """Which way is better for each metric, and the units."""
    lower = [m for m in metrics if m in LOWER_IS_BETTER]
    higher = [m for m in metrics if m not in LOWER_IS_BETTER]
    parts = [f"higher is better: {', '.join(higher)}"] if higher else []
    parts += [f"lower is better: {', '.join(lower)} (mm)"] if lower else []
    return "; ".join(parts) + "."


def number(value: float) -> str:
    """A float for CSV: shortest round-trip text, empty when undefined (NaN)."""
    return "" if np.isnan(value) else repr(float(value))
