"""The measurement graph: clinical measurements as lazy per-study arrays, and ``rga measure``.

``measurement_variables`` turns a (study, view, label, y, x) mask array into the dataset's
per-study measurement variables with one task per study block, so the build derives them from
the same mask blocks it writes (no second read) and ``rga measure`` runs the very same code on
predicted masks, given in the dataset schema or as a folder of PNG masks.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from catalog.reader import open_catalog
from catalog.taxonomy import load_taxonomy
from flows.maths.agreement import AGREEMENT, N_GRADES, Estimate, agreement, confusion
from flows.maths.measurements import (
    CONDITION_OF,
    CONDITIONS,
    DEFAULT_CUT_POINTS,
    GRADES,
    MEASUREMENTS,
    NOT_GRADED,
    REQUIRED_LABELS,
    CutPoints,
    Measurement,
    MeasurementLabels,
    StudyMeasurements,
    measure_study,
)
from flows.maths.projection import VIEWS
from flows.reports.tables import Table
from storage.location import StoreRef
from storage.masks import PngFolder

log = logging.getLogger(__name__)

GRADE_VARIABLES: tuple[str, ...] = tuple(f"{c}_grade" for c in CONDITIONS)
EXCLUSION_VARIABLES: tuple[str, ...] = tuple(f"{c}_exclusion" for c in CONDITIONS)
MEASUREMENT_VARIABLES: tuple[str, ...] = (*MEASUREMENTS, *GRADE_VARIABLES, *EXCLUSION_VARIABLES)
"""The dataset's per-study measurement variables (dims ``("study",)``), in schema order."""


# ---------------------------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------------------------


def measurement_variables(
    mask: da.Array,
    pixel_spacing: da.Array,
    available: da.Array,
    label_names: Sequence[str],
    cut_points: CutPoints = DEFAULT_CUT_POINTS,
    errors: da.Array | None = None,
) -> dict[str, tuple[tuple[str, ...], da.Array]]:
    """The per-study measurement variables of lazy masks, one measuring task per study block.

    ``mask`` is (study, view, label, y, x) over ``label_names`` with views PA, LL;
    ``pixel_spacing`` (study, view) mm; ``available`` (study, label). Only the classes the
    measurements need are passed on. ``errors`` (study,), if given, holds a reason (or None)
    per study that excludes it from every measurement (e.g. an unreadable prediction).
    """
    names = [str(n) for n in label_names]
    missing = [n for n in REQUIRED_LABELS if n not in names]
    if missing:
        raise KeyError(f"the masks lack the class {missing[0]!r} that the measurements need")
    positions = [names.index(n) for n in REQUIRED_LABELS]
    needed = mask[:, :, positions].rechunk({1: -1, 2: -1, 3: -1, 4: -1})
    studies = needed.chunks[0]
    spacing = pixel_spacing.rechunk((studies, -1))
    present = available[:, positions].rechunk((studies, -1))
    if errors is None:
        errors = da.full(len(mask), None, dtype=object, chunks=(studies,))
    results = da.blockwise(
        _measure_block,
        "s",
        needed,
        "svlyx",
        spacing,
        "sv",
        present,
        "sl",
        errors.rechunk((studies,)),
        "s",
        dtype=object,
        concatenate=True,
        meta=np.empty((0,), object),
        cut_points=cut_points,
    )
    out: dict[str, tuple[tuple[str, ...], da.Array]] = {}
    for i, name in enumerate(MEASUREMENTS):
        out[name] = (("study",), results.map_blocks(_values, i, dtype=np.float32))
    for i, name in enumerate(GRADE_VARIABLES):
        out[name] = (("study",), results.map_blocks(_grades, i, dtype=np.int8))
    for i, name in enumerate(EXCLUSION_VARIABLES):
        out[name] = (("study",), results.map_blocks(_exclusions, i, dtype=object))
    return {name: out[name] for name in MEASUREMENT_VARIABLES}


_LABELS = MeasurementLabels.from_names(REQUIRED_LABELS)


def _measure_block(
    mask: np.ndarray,
    spacing: np.ndarray,
    available: np.ndarray,
    errors: np.ndarray,
    cut_points: CutPoints,
) -> np.ndarray:
    """Measure each study of a block; any failure becomes that study's exclusion reason."""
    out = np.empty(len(mask), object)
    for s in range(len(mask)):
        if errors[s] is not None:
            out[s] = excluded_everywhere(str(errors[s]))
            continue
        try:
            out[s] = measure_study(mask[s], spacing[s], _LABELS, available[s], cut_points, VIEWS)
        except Exception as error:  # a measurement bug must not fail the build graph
            log.exception("measuring a study failed")
            out[s] = excluded_everywhere(f"measurement failed: {type(error).__name__}: {error}")
    return out


def excluded_everywhere(reason: str) -> StudyMeasurements:
    """A study excluded from every measurement for one reason."""
    return StudyMeasurements(
        tuple(Measurement(name, float("nan"), NOT_GRADED, reason) for name in MEASUREMENTS)
    )


def _values(results: np.ndarray, i: int) -> np.ndarray:
    return np.array([r.values()[i] for r in results], np.float32)


def _grades(results: np.ndarray, i: int) -> np.ndarray:
    return np.array([r.grades()[i] for r in results], np.int8)


def _exclusions(results: np.ndarray, i: int) -> np.ndarray:
    return np.array([r.exclusions()[i] for r in results], object)


# ---------------------------------------------------------------------------------------------
# rga measure: predicted masks in, a per-study table (and agreement) out
# ---------------------------------------------------------------------------------------------


@dataclass
class MeasureResult:
    """Measurements of a set of studies, and the studies whose masks could not be read."""

    source: str
    measured: xr.Dataset  # per-study MEASUREMENT_VARIABLES, coordinate ``study``
    failed: dict[str, str] = field(default_factory=dict)


def open_predictions(
    pred: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    reference: xr.Dataset | None = None,
    pixel_spacing: float | None = None,
    image_size: int | None = None,
) -> xr.Dataset:
    """Predicted masks as a lazy dataset: ``mask`` (study, view, label, y, x) over the classes
    the measurements need, ``pixel_spacing`` (study, view), ``available``, ``error``.

    ``pred`` is a dataset-schema store or a folder ``<study>/<view>/<label>.png``. Pixel
    spacing is ``pixel_spacing`` if given, else the ``reference`` dataset's (by study), else
    the store's own; a PNG folder needs one of the first two.
    """
    options = dict(storage_options or {})
    store = StoreRef(pred, options)
    if store.exists():
        ds = _from_dataset(store)
    else:
        folder = PngFolder(pred, options)
        if not folder.exists():
            raise FileNotFoundError(f"no dataset store or folder of PNG masks at {pred}")
        if pixel_spacing is None and reference is None:
            raise ValueError(
                "a folder of PNG masks has no pixel spacing: give --pixel-spacing MM or "
                "--dest DATASET (the dataset the masks were predicted for)"
            )
        size = _image_size(reference, image_size)
        ds = _from_png_folder(folder, (size, size))
    return _with_spacing(ds, reference, pixel_spacing)


def _from_dataset(store: StoreRef) -> xr.Dataset:
    ds = open_catalog(store)
    labels = [str(n) for n in ds["label"].values]
    missing = [n for n in REQUIRED_LABELS if n not in labels]
    if missing:
        raise KeyError(f"{store.url} has no class {missing[0]!r}, which the measurements need")
    sub = ds[["mask", "pixel_spacing", "available"]].sel(label=list(REQUIRED_LABELS))
    sub = sub.drop_vars([c for c in sub.coords if c not in ("study", "view", "label")])
    error = da.full(sub.sizes["study"], None, dtype=object, chunks=1)
    return sub.assign(error=("study", error))


def _image_size(reference: xr.Dataset | None, image_size: int | None) -> int:
    if image_size is not None:
        return image_size
    if reference is not None:
        return int(reference.sizes["y"])
    from flows.maths.projection import CANVAS

    return CANVAS


def _from_png_folder(folder: PngFolder, shape: tuple[int, int]) -> xr.Dataset:
    """One lazy read per study; a study whose PNGs cannot be read carries its error."""
    studies = folder.studies()
    if not studies:
        raise ValueError(f"{folder.url} holds no study folder")
    names = load_taxonomy().names
    positions = [names.index(n) for n in REQUIRED_LABELS]
    n_views, n_labels = len(VIEWS), len(REQUIRED_LABELS)
    reads = [
        dask.delayed(_read_png_study, pure=True)(folder, s, names, positions, shape)
        for s in studies
    ]
    masks = da.concatenate(
        [da.from_delayed(r[0], (n_views, n_labels, *shape), dtype=bool)[None] for r in reads]
    )
    errors = da.concatenate([da.from_delayed(r[1], (), dtype=object)[None] for r in reads])
    # a missing PNG is an empty mask (the folder convention), so every class counts as given
    available = np.ones((len(studies), n_labels), bool)
    return xr.Dataset(
        {
            "mask": (("study", "view", "label", "y", "x"), masks),
            "available": (("study", "label"), available),
            "pixel_spacing": (("study", "view"), np.full((len(studies), n_views), np.nan)),
            "error": (("study",), errors),
        },
        coords={"study": studies, "view": list(VIEWS), "label": list(REQUIRED_LABELS)},
    )


def _read_png_study(
    folder: PngFolder,
    study: str,
    names: Sequence[str],
    positions: Sequence[int],
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """The needed masks of one study and None, or empty masks and the reason they are not."""
    try:
        masks = folder.read(study, VIEWS, names, shape)[:, positions]
        return masks, np.array(None, object)
    except Exception as error:
        log.exception("reading the predicted masks of study %s failed", study)
        empty = np.zeros((len(VIEWS), len(positions), *shape), bool)
        return empty, np.array(f"masks unreadable: {error}", object)


def _with_spacing(
    ds: xr.Dataset, reference: xr.Dataset | None, pixel_spacing: float | None
) -> xr.Dataset:
    if pixel_spacing is not None:
        if not pixel_spacing > 0:
            raise ValueError(
                f"the pixel spacing must be a positive number of mm, not {pixel_spacing}"
            )
        spacing = np.full((ds.sizes["study"], len(VIEWS)), float(pixel_spacing), np.float32)
        return ds.assign(pixel_spacing=(("study", "view"), spacing))
    if reference is None:
        return ds
    by_study = {str(s): i for i, s in enumerate(reference["study"].values)}
    known = np.asarray(reference["pixel_spacing"].sel(view=list(VIEWS)).values, np.float32)
    spacing = np.full((ds.sizes["study"], len(VIEWS)), np.nan, np.float32)
    for i, study in enumerate(str(s) for s in ds["study"].values):
        if study in by_study:
            spacing[i] = known[by_study[study]]
    return ds.assign(pixel_spacing=(("study", "view"), spacing))


def measure(
    predictions: xr.Dataset, cut_points: CutPoints = DEFAULT_CUT_POINTS, source: str = ""
) -> MeasureResult:
    """Run the measurements over every study of ``predictions`` (``open_predictions``)."""
    variables = measurement_variables(
        predictions["mask"].data,
        da.asarray(predictions["pixel_spacing"].values).rechunk((1, -1)),
        da.asarray(np.asarray(predictions["available"].values, bool)).rechunk((1, -1)),
        [str(n) for n in predictions["label"].values],
        cut_points,
        errors=predictions["error"].data,
    )
    names = list(variables)
    # only dask arrays in this compute (dask 2026.8 misorders mixed collections)
    *values, errors = dask.compute(
        *(variables[n][1] for n in names), da.asarray(predictions["error"].data)
    )
    studies = [str(s) for s in predictions["study"].values]
    measured = xr.Dataset(
        {n: ("study", v) for n, v in zip(names, values, strict=True)},
        coords={"study": studies},
    )
    failed = {s: str(e) for s, e in zip(studies, errors, strict=True) if e is not None}
    return MeasureResult(source, measured, failed)


def grade_name(grade: int) -> str:
    """ "negative" .. "severe", or "" for not graded."""
    return GRADES[grade] if 0 <= grade < len(GRADES) else ""


def per_study_table(measured: xr.Dataset) -> Table:
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


def summary_table(measured: xr.Dataset, cut_points: CutPoints) -> Table:
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


def exclusion_table(measured: xr.Dataset) -> Table:
    """How many studies each reason excluded from each measurement."""
    rows = []
    for name, variable in zip(MEASUREMENTS, EXCLUSION_VARIABLES, strict=True):
        reasons = [str(r) for r in measured[variable].values if str(r)]
        for reason in sorted(set(reasons)):
            rows.append((name, reason, reasons.count(reason)))
    return Table(
        "exclusions",
        "Studies excluded from a measurement",
        ("measurement", "reason", "studies"),
        tuple(rows),
    )


# ---------------------------------------------------------------------------------------------
# Agreement with reference grades
# ---------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Agreement:
    """Agreement of one condition's measured grades with its reference grades."""

    condition: str
    reference: int  # studies with a reference grade
    paired: int  # ... that were also measured
    excluded: int  # ... whose measurement was excluded
    missing: int  # ... without masks
    estimates: Mapping[str, Estimate]
    confusion: np.ndarray  # rows reference, columns measured


def agreement_by_condition(
    measured: xr.Dataset,
    reference: Mapping[tuple[str, str], int],
    resamples: int,
    seed: int,
) -> list[Agreement]:
    """Agreement per condition over the studies with both a reference and a measured grade."""
    studies = {str(s): i for i, s in enumerate(measured["study"].values)}
    out = []
    for condition, variable in zip(CONDITIONS, GRADE_VARIABLES, strict=True):
        wanted = {s: g for (s, c), g in reference.items() if c == condition}
        if not wanted:
            continue
        grades = np.asarray(measured[variable].values)
        present = [s for s in wanted if s in studies]
        pairs = [(wanted[s], int(grades[studies[s]])) for s in present if grades[studies[s]] >= 0]
        ref = np.array([p[0] for p in pairs], int)
        got = np.array([p[1] for p in pairs], int)
        estimates = agreement(ref, got, resamples, seed) if pairs else {}
        out.append(
            Agreement(
                condition,
                len(wanted),
                len(pairs),
                len(present) - len(pairs),
                len(wanted) - len(present),
                estimates,
                confusion(ref, got, N_GRADES),
            )
        )
    return out


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
