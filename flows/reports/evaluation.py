"""The tables of an evaluation (paper Tables 3 and 4): class-balanced means by partition, per
class, and of each model.

They render what ``flows.aggregate`` computed: ``Row`` objects of ``flows.maths.balanced`` and
the per-class means (an in-memory ``xarray.Dataset``, read only through ``[name].values``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from flows.maths.balanced import Row
from flows.maths.metrics import LOWER_IS_BETTER, METRICS
from flows.reports.tables import Table, Variables


def summary_table(rows: Sequence[Row], title: str, metrics: Sequence[str] = METRICS) -> Table:
    """The partition rows as a report table (columns named as the results' variables)."""
    columns = ("partition", "group", "classes", "cases", *metrics)
    cells = tuple(
        (row.partition, row.group, row.classes, row.cases, *(row.values[m] for m in metrics))
        for row in rows
    )
    return Table("summary", title, columns, cells, notes=(direction_note(metrics),))


def overall_by_model_table(
    overall: Mapping[str, Row], metrics: Sequence[str], studies: int
) -> Table:
    """Table 3: each model's overall row (class-balanced means), all on the same ``studies``."""
    rows = []
    for name, row in overall.items():
        values = (row.values[m] for m in metrics)
        rows.append((name, row.classes, row.cases, *values))
    title = f"Overall class-balanced means of each model on the {studies} common studies"
    columns = ("model", "classes", "cases", *metrics)
    return Table("models", title, columns, tuple(rows), notes=(direction_note(metrics),))


def per_class_table(per_class: Variables, metrics: Sequence[str] = METRICS) -> Table:
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
