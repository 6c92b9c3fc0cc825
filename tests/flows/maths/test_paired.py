"""Paired statistics (flows/maths/paired.py): hand-computed Wilcoxon, rank-biserial, Cohen's
d_z, the paired bootstrap and Bonferroni."""

import math

import numpy as np
import pytest

from flows.maths.paired import (
    bonferroni,
    cohen_dz,
    paired_bootstrap,
    paired_statistics,
    rank_biserial,
    wilcoxon,
)


def test_hand_computed_wilcoxon_rank_biserial_and_cohen():
    d = np.array([1.0, 2.0, -3.0, 4.0, 5.0])
    # |d| ranks 1..5; T+ = 1 + 2 + 4 + 5 = 12, T- = 3. Exact null: 32 equally likely sign
    # patterns, 5 with T- <= 3 ({}, {1}, {2}, {3}, {1, 2}); two-sided p = 10 / 32.
    w, p = wilcoxon(d)
    assert w == 3.0 and p == pytest.approx(10 / 32)
    assert rank_biserial(d) == pytest.approx((12 - 3) / 15)
    # mean 1.8; squared deviations 0.64 + 0.04 + 23.04 + 4.84 + 10.24 = 38.8; sd = sqrt(9.7)
    assert cohen_dz(d) == pytest.approx(1.8 / math.sqrt(9.7))
    test = paired_statistics(d + 10, np.full(5, 10.0), n_boot=2000, seed=1)
    assert test.n == 5 and test.mean_diff == pytest.approx(1.8)
    assert test.mean_a == pytest.approx(11.8) and test.mean_b == 10.0
    assert test.ci_low < 1.8 < test.ci_high


def test_ties_share_ranks_and_zeros_are_dropped():
    d = np.array([0.0, 1.0, -1.0, 2.0])  # ranks of 1, 1, 2: 1.5, 1.5, 3
    assert rank_biserial(d) == pytest.approx((1.5 + 3 - 1.5) / 6)


def test_no_difference_at_all():
    d = np.zeros(8)
    assert wilcoxon(d) == (0.0, 1.0)
    assert rank_biserial(d) == 0.0 and cohen_dz(d) == 0.0
    assert paired_bootstrap(d, n_boot=500, seed=0) == (0.0, 0.0, 1.0)


def test_a_constant_shift_is_as_significant_as_the_bootstrap_can_say():
    d = np.full(12, 0.5)
    low, high, p = paired_bootstrap(d, n_boot=999, seed=0)
    assert low == high == 0.5 and p == 1 / 1000
    assert cohen_dz(d) == math.inf and cohen_dz(-d) == -math.inf
    assert math.isnan(cohen_dz(np.array([1.0])))


def test_bootstrap_is_seeded_and_agrees_with_normal_theory():
    d = np.random.default_rng(42).normal(0.3, 1.0, 400)
    first = paired_bootstrap(d, n_boot=4000, seed=7)
    assert paired_bootstrap(d, n_boot=4000, seed=7) == first
    assert paired_bootstrap(d, n_boot=4000, seed=8) != first
    half_width = 1.96 * d.std(ddof=1) / math.sqrt(d.size)
    assert first[0] == pytest.approx(d.mean() - half_width, abs=0.2 * half_width)
    assert first[1] == pytest.approx(d.mean() + half_width, abs=0.2 * half_width)
    assert first[2] < 0.01  # a shift of 0.3 sd over 400 pairs is plain


def test_bonferroni_of_no_test_is_no_test():
    assert bonferroni([], 0.05) == []
