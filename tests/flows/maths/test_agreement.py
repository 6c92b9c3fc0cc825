"""Agreement statistics and the bootstrap, on cases computed by hand."""

import math

import numpy as np
import pytest

from flows.maths.agreement import (
    accuracy,
    agreement,
    confusion,
    macro_f1,
    off_by_one,
    weighted_f1,
    weighted_kappa,
)
from flows.maths.bootstrap import bootstrap_ci, percentile_interval, ratio_of_sums_ci, resamples_of

# reference vs measured; by hand: confusion rows (reference) 0: [1 1 0 0], 1: [0 2 0 0],
# 2: [0 0 0 1], 3: [0 0 0 1]
REFERENCE = np.array([0, 0, 1, 1, 2, 3])
MEASURED = np.array([0, 1, 1, 1, 3, 3])


def test_confusion_accuracy_and_off_by_one():
    assert confusion(REFERENCE, MEASURED).tolist() == [
        [1, 1, 0, 0],
        [0, 2, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 0, 1],
    ]
    assert accuracy(REFERENCE, MEASURED) == pytest.approx(4 / 6)
    assert off_by_one(REFERENCE, MEASURED) == 1.0
    assert off_by_one(np.array([0, 3]), np.array([2, 3])) == 0.5


def test_f1_scores():
    # F1 by grade: 0: 2/3 (TP 1, FN 1); 1: 4/5 (TP 2, FP 1); 2: 0 (FN 1); 3: 2/3 (TP 1, FP 1)
    assert macro_f1(REFERENCE, MEASURED) == pytest.approx((2 / 3 + 0.8 + 0 + 2 / 3) / 4)
    # weighted by reference counts 2, 2, 1, 1
    assert weighted_f1(REFERENCE, MEASURED) == pytest.approx((2 * 2 / 3 + 2 * 0.8 + 2 / 3) / 6)
    # grades absent from both sides do not dilute macro-F1
    assert macro_f1(np.array([0, 0, 1]), np.array([0, 0, 1])) == 1.0


def test_weighted_kappas():
    # marginals (x6) reference [2 2 1 1], measured [1 3 0 2]; two disagreements of one grade.
    # linear: expected disagreement 44/36, observed 12/36 -> 1 - 12/44
    assert weighted_kappa(REFERENCE, MEASURED, "linear") == pytest.approx(1 - 12 / 44)
    # quadratic: expected 90/36, observed 12/36 -> 1 - 12/90
    assert weighted_kappa(REFERENCE, MEASURED, "quadratic") == pytest.approx(1 - 12 / 90)
    assert weighted_kappa(REFERENCE, REFERENCE) == pytest.approx(1.0)
    constant = np.zeros_like(REFERENCE)
    assert weighted_kappa(REFERENCE, constant) == pytest.approx(0.0)  # chance agreement
    assert math.isnan(weighted_kappa(constant, constant))  # undefined, not perfect
    with pytest.raises(ValueError, match="linear' or 'quadratic"):
        weighted_kappa(REFERENCE, MEASURED, "cubic")


def test_agreement_has_every_statistic_with_a_deterministic_interval():
    first = agreement(REFERENCE, MEASURED, resamples=300, seed=1)
    assert set(first) == {
        "accuracy",
        "off_by_one",
        "macro_f1",
        "weighted_f1",
        "kappa_linear",
        "kappa_quadratic",
    }
    assert first["accuracy"].value == pytest.approx(4 / 6)
    assert first["accuracy"].low <= 4 / 6 <= first["accuracy"].high
    assert first["off_by_one"].low == first["off_by_one"].high == 1.0
    assert agreement(REFERENCE, MEASURED, resamples=300, seed=1) == first
    assert agreement(REFERENCE, MEASURED, resamples=300, seed=2) != first


def test_grades_outside_the_scale_are_rejected():
    with pytest.raises(ValueError, match=r"whole numbers 0\.\.3"):
        agreement(np.array([0, 4]), np.array([0, 1]))


def test_bootstrap_of_a_ratio_of_sums_by_hand():
    # two studies with means 1 and 3: a resample's mean is 1, 2 or 3 with odds 1:2:1
    low, high = ratio_of_sums_ci(np.array([1.0, 3.0]), np.array([1.0, 1.0]), resamples=2000)
    assert (low, high) == (1.0, 3.0)
    rows = np.array([[2.0, 4.0], [2.0, 4.0]])  # trailing columns share the resamples
    interval = ratio_of_sums_ci(rows, np.ones_like(rows), resamples=50)
    assert interval.tolist() == [[2.0, 4.0], [2.0, 4.0]]


def test_bootstrap_resamples_and_percentiles():
    draws = list(resamples_of(5, resamples=3, seed=7))
    assert [len(d) for d in draws] == [5, 5, 5]
    assert all(np.array_equal(a, b) for a, b in zip(draws, resamples_of(5, 3, 7), strict=True))
    assert percentile_interval(np.arange(101.0)).tolist() == pytest.approx([2.5, 97.5])
    assert np.isnan(percentile_interval(np.full(10, np.nan))).all()
    assert bootstrap_ci(lambda idx: float(np.mean(np.ones(4)[idx])), 4) == (1.0, 1.0)
    with pytest.raises(ValueError, match="at least one unit"):
        next(resamples_of(0))
