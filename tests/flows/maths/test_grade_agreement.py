"""Agreement with reference grades per condition (flows/maths/grade_agreement.py)."""

import numpy as np
import pytest

from flows.maths.grade_agreement import condition_agreements


def test_reference_studies_are_paired_excluded_or_missing():
    studies = ["a", "b", "c", "d"]
    grades = {"cardiomegaly": np.array([0, 1, -1, 3]), "kyphosis": np.array([2, 2, 2, 2])}
    reference = {
        ("a", "cardiomegaly"): 0,  # agrees
        ("b", "cardiomegaly"): 2,  # one grade off
        ("c", "cardiomegaly"): 1,  # not graded: excluded
        ("x", "cardiomegaly"): 1,  # no masks: missing
        ("d", "kyphosis"): 2,
    }
    cardio, kyphosis = condition_agreements(studies, grades, reference, 50, 0)
    assert cardio.condition == "cardiomegaly" and kyphosis.condition == "kyphosis"
    assert (cardio.reference, cardio.paired, cardio.excluded, cardio.missing) == (4, 2, 1, 1)
    assert cardio.estimates["accuracy"].value == pytest.approx(0.5)
    assert cardio.estimates["off_by_one"].value == pytest.approx(1.0)
    assert cardio.confusion[0, 0] == 1 and cardio.confusion[2, 1] == 1
    assert cardio.confusion.sum() == 2
    assert (kyphosis.paired, kyphosis.estimates["accuracy"].value) == (1, 1.0)


def test_nothing_paired_gives_no_estimate():
    (only,) = condition_agreements(
        ["a"], {"scoliosis": np.array([-1])}, {("a", "scoliosis"): 0}, 10, 0
    )
    assert (only.paired, only.excluded, dict(only.estimates)) == (0, 1, {})
    assert only.confusion.shape == (4, 4) and only.confusion.sum() == 0
