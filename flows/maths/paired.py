"""Paired statistics of two models' scores (paper Appendix C): pure numpy and scipy.

Per test, with d = score(A) - score(B):
- Wilcoxon signed-rank, two-sided, zero differences dropped (``zero_method="wilcox"``);
- rank-biserial correlation r = (T+ - T-) / (T+ + T-) over the same non-zero differences
  (Kerby 2014; positive: A scores higher);
- Cohen's d_z = mean(d) / sd(d) (paired; sd with ddof 1);
- paired bootstrap: pairs resampled with replacement ``n_boot`` times by ``flows.maths.bootstrap``
  (seeded, so results are reproducible); the 95 % percentile interval of mean(d) and the
  two-sided p = (1 + #{|mean(d*) - mean(d)| >= |mean(d)|}) / (n_boot + 1);
- Bonferroni: each p-value times the number of tests in the family, capped at 1.
  ``significant`` is the corrected Wilcoxon test; ``better`` is the model the signed ranks
  favour when it is significant.

``flows.compare`` pairs the scores of evaluated results and collects the tests into a
``Comparison``; ``flows.reports.comparison`` renders it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from flows.maths.bootstrap import percentile_interval, resamples_of
from flows.maths.metrics import LOWER_IS_BETTER


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison of model A with model B on one metric (and class)."""

    metric: str
    group: str  # "all classes" (class unit) or "<view> <label>" (study unit)
    model_a: str
    model_b: str
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float  # mean of A - B
    ci_low: float
    ci_high: float
    wilcoxon_w: float
    p_wilcoxon: float
    p_bootstrap: float
    cohen_dz: float
    rank_biserial: float
    p_wilcoxon_bonferroni: float = np.nan
    p_bootstrap_bonferroni: float = np.nan
    significant: bool = False
    bootstrap_significant: bool = False
    better: str = ""  # significantly better (corrected Wilcoxon, signed-rank direction), or ""


@dataclass
class Comparison:
    """All tests of one comparison, and what was left out."""

    tests: list[PairedTest]
    unit: str
    studies: list[str]  # the studies every model was evaluated on
    dropped: dict[str, list[str]] = field(default_factory=dict)  # per model: not in all
    family_size: int = 0
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)


def paired_statistics(
    a: np.ndarray, b: np.ndarray, *, n_boot: int = 10_000, seed: int = 0
) -> PairedTest:
    """Every statistic of one paired sample (``metric``/names are filled in by the caller)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("paired samples must be 1D and of equal length")
    d = a - b
    n = d.size
    if n == 0:
        nan = float("nan")
        return PairedTest("", "", "", "", 0, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    w, p_w = wilcoxon(d)
    low, high, p_boot = paired_bootstrap(d, n_boot=n_boot, seed=seed)
    return PairedTest(
        metric="",
        group="",
        model_a="",
        model_b="",
        n=n,
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        mean_diff=float(d.mean()),
        ci_low=low,
        ci_high=high,
        wilcoxon_w=w,
        p_wilcoxon=p_w,
        p_bootstrap=p_boot,
        cohen_dz=cohen_dz(d),
        rank_biserial=rank_biserial(d),
    )


def wilcoxon(d: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank statistic and p of differences ``d`` (zeros dropped)."""
    if not np.any(d != 0):
        return 0.0, 1.0  # no evidence of any difference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on small samples; the p-value stands
        result = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def rank_biserial(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation (T+ - T-) / (T+ + T-), zeros dropped."""
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(nonzero))  # ties share their average rank
    plus, minus = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
    return float((plus - minus) / (plus + minus))


def cohen_dz(d: np.ndarray) -> float:
    """Paired Cohen's d: mean(d) / sd(d, ddof=1); +-inf for a constant non-zero shift."""
    if d.size < 2:
        return float("nan")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        return 0.0 if mean == 0 else float(np.copysign(np.inf, mean))
    return mean / sd


def paired_bootstrap(d: np.ndarray, *, n_boot: int, seed: int) -> tuple[float, float, float]:
    """95 % percentile interval of mean(d) and the two-sided bootstrap p of mean(d) = 0."""
    means = np.array([d[index].mean() for index in resamples_of(d.size, n_boot, seed)])
    observed = float(d.mean())
    low, high = percentile_interval(means, 0.95)
    # Null distribution: the resampled means shifted to mean zero.
    extreme = np.count_nonzero(np.abs(means - observed) >= abs(observed))
    return float(low), float(high), (1 + extreme) / (n_boot + 1)


def bonferroni(tests: Sequence[PairedTest], alpha: float) -> list[PairedTest]:
    """Correct every p-value for the whole family (all ``tests``) and decide significance."""
    family = sum(1 for t in tests if t.n > 0)
    corrected = []
    for t in tests:
        p_w = min(1.0, t.p_wilcoxon * family) if t.n else np.nan
        p_b = min(1.0, t.p_bootstrap * family) if t.n else np.nan
        significant = bool(p_w < alpha)
        better = ""
        if significant and t.rank_biserial != 0:
            # the direction the signed ranks (the test that decided) favour
            a_higher = t.rank_biserial > 0
            better = t.model_a if a_higher != (t.metric in LOWER_IS_BETTER) else t.model_b
        corrected.append(
            replace(
                t,
                p_wilcoxon_bonferroni=p_w,
                p_bootstrap_bonferroni=p_b,
                significant=significant,
                bootstrap_significant=bool(p_b < alpha),
                better=better,
            )
        )
    return corrected
