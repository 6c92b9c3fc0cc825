"""Class-balanced means (paper Tables 3 and 4): pure numpy.

A class is one (view, label) cell with its per-class mean over studies. A partition group's
value is the mean over its classes of their per-class means, over the classes where the
per-class mean is defined (finite): a large class with many studies weighs as much as a rare
one. ``flows.aggregate`` picks the groups' cells from the results; ``flows.reports.evaluation``
renders the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Row:
    """One line of an aggregate table."""

    partition: str
    group: str
    classes: int  # (view, label) cells with a defined per-class Dice
    cases: int  # (study, view, label) cases with a defined Dice
    values: dict[str, float]


def balanced_row(
    partition: str,
    group: str,
    class_means: Mapping[str, np.ndarray],
    cells: np.ndarray,
    dice_cases: np.ndarray | None = None,
) -> Row:
    """The class-balanced mean of each metric over the selected ``cells``.

    ``class_means`` maps metric -> per-class means (view, label); ``cells`` is a boolean
    (view, label) selection; ``dice_cases`` the defined Dice cases per class (view, label),
    which count the row's classes and cases (none given: zero of each).
    """
    values = {}
    for metric, means in class_means.items():
        chosen = means[cells]
        chosen = chosen[np.isfinite(chosen)]
        values[metric] = float(chosen.mean()) if chosen.size else float("nan")
    counts = dice_cases[cells] if dice_cases is not None else np.zeros(1)
    return Row(partition, group, int((counts > 0).sum()), int(counts.sum()), values)
