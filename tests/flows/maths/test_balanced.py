"""Class-balanced means (flows/maths/balanced.py): every class weighs the same."""

import math

import numpy as np
import pytest

from flows.maths.balanced import balanced_row


def test_a_group_mean_is_the_mean_of_its_defined_classes():
    dice = np.array([[0.2, 0.4, np.nan], [0.9, 1.0, 0.6]])  # (view, label)
    cases = np.array([[3, 1, 0], [2, 5, 4]])
    cells = np.array([[True, True, True], [False, False, False]])
    row = balanced_row("view", "PA", {"dice": dice}, cells, cases)
    assert row.values["dice"] == pytest.approx(0.3)  # (0.2 + 0.4) / 2: the NaN class is left out
    assert (row.partition, row.group, row.classes, row.cases) == ("view", "PA", 2, 4)


def test_no_defined_class_gives_nan_and_no_counts_give_zero():
    row = balanced_row(
        "overall", "all classes", {"hd95": np.full((2, 2), np.nan)}, np.ones((2, 2), bool)
    )
    assert math.isnan(row.values["hd95"]) and (row.classes, row.cases) == (0, 0)
