"""The tables of clinical measurements: per study, a summary by grade, the exclusion reasons,
and agreement with reference grades (with one confusion table per condition).

``measured`` is the per-study measurement variables (``flows.measure``; an in-memory
``xarray.Dataset`` read through ``[name].values``); agreement comes as
``flows.maths.grade_agreement.Agreement``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flows.maths.agreement import AGREEMENT, N_GRADES
from flows.maths.grade_agreement import Agreement
from flows.maths.measurements import CONDITION_OF, GRADES, MEASUREMENTS, CutPoints
from flows.reports.tables import Table, Variables


def grade_name(grade: int) -> str:
    """ "negative" .. "severe", or "" for not graded."""
    return GRADES[grade] if 0 <= grade < len(GRADES) else ""


def per_study_table(measured: Variables) -> Table:
    """One row per study: each measurement's value, grade and exclusion reason."""
    columns = ["study"]
    for name in MEASUREMENTS:
        condition = CONDITION_OF[name]
        columns += [name, f"{condition}_grade", f"{condition}_exclusion"]
    rows = []
    for s, study in enumerate(str(v) for v in measured["study"].values):
        row: list[Any] = [study]
        for name in MEASUREMENTS:
            condition = CONDITION_OF[name]
            row += [
                float(measured[name].values[s]),
                grade_name(int(measured[f"{condition}_grade"].values[s])),
                str(measured[f"{condition}_exclusion"].values[s]),
            ]
        rows.append(tuple(row))
    return Table("measurements", "Measurements per study", tuple(columns), tuple(rows))


def summary_table(measured: Variables, cut_points: CutPoints) -> Table:
    """Per measurement: studies measured and excluded, value summary, studies per grade."""
    rows = []
    for name in MEASUREMENTS:
        values = np.asarray(measured[name].values, float)
        ok = values[np.isfinite(values)]
        grades = cut_points.grades(name, values)
        counts = [int((grades == g).sum()) for g in range(len(GRADES))]
        quartiles = np.percentile(ok, [25, 50, 75]) if ok.size else [np.nan] * 3
        rows.append(
            (
                name,
                CONDITION_OF[name],
                int(ok.size),
                int(values.size - ok.size),
                float(ok.mean()) if ok.size else np.nan,
                *(float(q) for q in quartiles),
                *counts,
                " / ".join(f"{p:g}" for p in getattr(cut_points, name)),
            )
        )
    columns = ("measurement", "condition", "measured", "excluded", "mean", "q25", "median", "q75")
    columns += (*GRADES, "cut-points")
    return Table("measurement_summary", "Measurements and grades", columns, tuple(rows))


def exclusion_table(measured: Variables) -> Table:
    """How many studies each reason excluded from each measurement."""
    rows = []
    for name in MEASUREMENTS:
        variable = f"{CONDITION_OF[name]}_exclusion"  # flows.measure.EXCLUSION_VARIABLES
        reasons = [str(r) for r in measured[variable].values if str(r)]
        for reason in sorted(set(reasons)):
            rows.append((name, reason, reasons.count(reason)))
    return Table(
        "exclusions",
        "Studies excluded from a measurement",
        ("measurement", "reason", "studies"),
        tuple(rows),
    )


def agreement_tables(results: Sequence[Agreement], level: float = 0.95) -> list[Table]:
    """The agreement table (one row per condition) and each condition's confusion table."""
    metrics = tuple(AGREEMENT)
    columns = ["condition", "reference", "paired", "excluded", "missing"]
    for m in metrics:
        columns += [m, f"{m}_low", f"{m}_high"]
    rows = []
    for a in results:
        row: list[Any] = [a.condition, a.reference, a.paired, a.excluded, a.missing]
        for m in metrics:
            e = a.estimates.get(m)
            row += [e.value, e.low, e.high] if e else [np.nan] * 3
        rows.append(tuple(row))
    note = f"Intervals: {level:.0%} percentile bootstrap over studies."
    tables = [
        Table("agreement", "Agreement with reference grades", tuple(columns), tuple(rows), (note,))
    ]
    for a in results:
        body = tuple(
            (f"reference {GRADES[r]}", *(int(v) for v in a.confusion[r])) for r in range(N_GRADES)
        )
        tables.append(
            Table(
                f"confusion_{a.condition}",
                f"{a.condition}: reference (rows) against measured (columns)",
                ("", *GRADES),
                body,
            )
        )
    return tables
