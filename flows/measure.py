"""The measurement graph: clinical measurements as lazy per-study arrays, and ``rga measure``.

``measurement_variables`` turns a (study, view, label, y, x) mask array into the dataset's
per-study measurement variables with one task per study block, so the build derives them from
the same mask blocks it writes (no second read) and ``measure`` runs the very same code on
predicted masks (opened by ``flows.predictions``, in the dataset schema or as a folder of PNG
masks). The measurements themselves are ``flows.maths.measurements``; their tables are
``flows.reports.measurement``; agreement with reference grades is ``flows.references``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np
import xarray as xr

from flows.maths.measurements import (
    CONDITIONS,
    DEFAULT_CUT_POINTS,
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
# rga measure: predicted masks in, per-study measurements out
# ---------------------------------------------------------------------------------------------


@dataclass
class MeasureResult:
    """Measurements of a set of studies, and the studies whose masks could not be read."""

    source: str
    measured: xr.Dataset  # per-study MEASUREMENT_VARIABLES, coordinate ``study``
    failed: dict[str, str] = field(default_factory=dict)


def measure(
    predictions: xr.Dataset, cut_points: CutPoints = DEFAULT_CUT_POINTS, source: str = ""
) -> MeasureResult:
    """Run the measurements over every study of ``predictions`` (``flows.predictions``)."""
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
