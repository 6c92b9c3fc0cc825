"""Agreement of ordinal grades with reference grades (paper Fig. 5-6, Table A3): pure numpy.

Grades are integers 0..k-1 (negative, mild, moderate, severe for k = 4). Definitions:

- accuracy: share of cases whose grades are equal; off-by-one: share within one grade.
- F1 of a grade: 2 TP / (2 TP + FP + FN). Macro-F1 averages it over the grades that occur in
  the reference or the measurement (as scikit-learn does); weighted F1 weighs each grade's F1
  by its count in the reference.
- Cohen's weighted kappa: 1 - sum(w * observed) / sum(w * expected), over the k x k table of
  proportions, expected being the outer product of the two marginals, with w = |i - j|
  (linear) or (i - j)^2 (quadratic). NaN when the expected disagreement is zero (both sides
  constant on the same grade).
Each comes with a percentile bootstrap interval over cases (``flows.maths.bootstrap``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from flows.maths.bootstrap import LEVEL, RESAMPLES, SEED, bootstrap_ci

N_GRADES = 4


def confusion(reference: np.ndarray, measured: np.ndarray, k: int = N_GRADES) -> np.ndarray:
    """k x k counts: rows are reference grades, columns measured grades."""
    reference, measured = _grades(reference, k), _grades(measured, k)
    return np.bincount(reference * k + measured, minlength=k * k).reshape(k, k)


def accuracy(reference: np.ndarray, measured: np.ndarray) -> float:
    """Share of cases with equal grades."""
    return float(np.mean(np.asarray(reference) == np.asarray(measured)))


def off_by_one(reference: np.ndarray, measured: np.ndarray) -> float:
    """Share of cases whose grades differ by at most one."""
    return float(np.mean(np.abs(np.asarray(reference) - np.asarray(measured)) <= 1))


def _f1_by_grade(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 of each grade and whether the grade occurs on either side."""
    tp = np.diag(table).astype(float)
    fp, fn = table.sum(axis=0) - tp, table.sum(axis=1) - tp
    occurs = (tp + fp + fn) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(occurs, 2 * tp / (2 * tp + fp + fn), 0.0)
    return f1, occurs


def macro_f1(reference: np.ndarray, measured: np.ndarray, k: int = N_GRADES) -> float:
    """Mean F1 over the grades present in the reference or the measurement."""
    f1, occurs = _f1_by_grade(confusion(reference, measured, k))
    return float(f1[occurs].mean())


def weighted_f1(reference: np.ndarray, measured: np.ndarray, k: int = N_GRADES) -> float:
    """F1 of each grade weighted by its count in the reference."""
    table = confusion(reference, measured, k)
    f1, _ = _f1_by_grade(table)
    support = table.sum(axis=1)
    return float((f1 * support).sum() / support.sum())


def weighted_kappa(
    reference: np.ndarray, measured: np.ndarray, weights: str = "linear", k: int = N_GRADES
) -> float:
    """Cohen's kappa with linear or quadratic disagreement weights; NaN if undefined."""
    table = confusion(reference, measured, k).astype(float)
    observed = table / table.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    distance = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
    if weights == "quadratic":
        distance = distance**2
    elif weights != "linear":
        raise ValueError(f"kappa weights are 'linear' or 'quadratic', not {weights!r}")
    chance = float((distance * expected).sum())
    if chance == 0.0:
        return float("nan")
    return 1.0 - float((distance * observed).sum()) / chance


AGREEMENT: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "off_by_one": off_by_one,
    "macro_f1": macro_f1,
    "weighted_f1": weighted_f1,
    "kappa_linear": lambda r, m: weighted_kappa(r, m, "linear"),
    "kappa_quadratic": lambda r, m: weighted_kappa(r, m, "quadratic"),
}


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval."""

    value: float
    low: float
    high: float


def agreement(
    reference: np.ndarray,
    measured: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, Estimate]:
    """Every agreement statistic of paired grades, each with a bootstrap interval over cases."""
    reference, measured = _grades(reference), _grades(measured)
    if reference.shape != measured.shape or reference.size == 0:
        raise ValueError(
            "agreement needs the same, non-zero number of reference and measured grades"
        )
    out = {}
    for name, fn in AGREEMENT.items():
        low, high = bootstrap_ci(
            lambda idx, fn=fn: fn(reference[idx], measured[idx]),
            len(reference),
            resamples,
            seed,
            level,
        )
        out[name] = Estimate(fn(reference, measured), low, high)
    return out


def _grades(values: np.ndarray, k: int = N_GRADES) -> np.ndarray:
    grades = np.asarray(values)
    if grades.size and (
        grades.min() < 0 or grades.max() >= k or not np.all(grades == np.round(grades))
    ):
        raise ValueError(f"grades must be whole numbers 0..{k - 1}")
    return grades.astype(np.int64)
