"""Reference grades for ``rga measure --reference``: the CSV file, and the agreement of the
measured grades with it per condition (``flows.maths.grade_agreement``; rendered by
``flows.reports.measurement.agreement_tables``).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import xarray as xr

from flows.maths.grade_agreement import Agreement, condition_agreements
from flows.maths.measurements import CONDITIONS, GRADES
from flows.measure import GRADE_VARIABLES


def read_reference_grades(path: str | Path) -> dict[tuple[str, str], int]:
    """Reference grades from a CSV with columns study, condition, grade.

    ``condition`` is cardiomegaly, scoliosis or kyphosis; ``grade`` a name (negative, mild,
    moderate, severe; any case) or its number 0..3. Errors name the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no reference grades file at {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [c.strip().lower() for c in reader.fieldnames or []]
        if not {"study", "condition", "grade"} <= set(header):
            raise ValueError(
                f"{path.name}: needs the columns study, condition, grade; has {header}"
            )
        grades: dict[tuple[str, str], int] = {}
        for line, raw in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            key = (row["study"], row["condition"].lower())
            if not key[0]:
                raise ValueError(f"{path.name} line {line}: no study")
            if key[1] not in CONDITIONS:
                raise ValueError(
                    f"{path.name} line {line}: unknown condition {row['condition']!r} "
                    f"(expected {', '.join(CONDITIONS)})"
                )
            if key in grades:
                raise ValueError(f"{path.name} line {line}: a second grade for {key[0]} {key[1]}")
            grades[key] = _parse_grade(row["grade"], f"{path.name} line {line}")
    return grades


def _parse_grade(text: str, where: str) -> int:
    lowered = text.lower()
    if lowered in GRADES:
        return GRADES.index(lowered)
    if lowered.isdigit() and int(lowered) < len(GRADES):
        return int(lowered)
    raise ValueError(f"{where}: grade {text!r} is not one of {', '.join(GRADES)} (or 0..3)")


def agreement_by_condition(
    measured: xr.Dataset,
    reference: Mapping[tuple[str, str], int],
    resamples: int,
    seed: int,
) -> list[Agreement]:
    """Agreement per condition over the studies with both a reference and a measured grade."""
    studies = [str(s) for s in measured["study"].values]
    graded = {c for _, c in reference}  # read only the grades of conditions with a reference
    grades = {
        condition: measured[variable].values
        for condition, variable in zip(CONDITIONS, GRADE_VARIABLES, strict=True)
        if condition in graded
    }
    return condition_agreements(studies, grades, reference, resamples, seed)
