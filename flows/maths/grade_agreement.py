"""Agreement of measured grades with reference grades, condition by condition: pure numpy.

Per condition (cardiomegaly, scoliosis, kyphosis) the pairs are the studies with both a
reference grade and a measured grade (not excluded); the statistics and their bootstrap
intervals are ``flows.maths.agreement``'s. The studies with a reference grade are counted by
what became of them: paired, excluded from the measurement, or without masks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from flows.maths.agreement import N_GRADES, Estimate, agreement, confusion
from flows.maths.measurements import CONDITIONS


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


def condition_agreements(
    studies: Sequence[str],
    grades: Mapping[str, np.ndarray],
    reference: Mapping[tuple[str, str], int],
    resamples: int,
    seed: int,
) -> list[Agreement]:
    """Agreement per condition over the studies with both a reference and a measured grade.

    ``studies`` names the measured studies; ``grades`` maps a condition to its measured grade
    per study (-1: not graded), needed for every condition ``reference`` grades;
    ``reference`` maps (study, condition) to a grade. Conditions without a reference grade
    are left out.
    """
    index = {s: i for i, s in enumerate(studies)}
    out = []
    for condition in CONDITIONS:
        wanted = {s: g for (s, c), g in reference.items() if c == condition}
        if not wanted:
            continue
        graded = np.asarray(grades[condition])
        present = [s for s in wanted if s in index]
        pairs = [(wanted[s], int(graded[index[s]])) for s in present if graded[index[s]] >= 0]
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
