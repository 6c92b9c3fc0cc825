"""Percentile bootstrap over independent units (studies, cases): pure numpy, seeded.

Every confidence interval of the statistics and the agreement reports comes from here, so all
of them resample the same way: units drawn with replacement, ``resamples`` times, from one
generator seeded with ``seed`` (the same inputs give the same interval), and the interval is
the (1 - level) / 2 and (1 + level) / 2 percentiles of the resampled statistic. Resamples are
drawn one at a time, so memory stays linear in the number of units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


def resamples_of(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> Iterator[np.ndarray]:
    """``resamples`` index arrays, each ``n`` units drawn with replacement."""
    if n < 1:
        raise ValueError("a bootstrap needs at least one unit")
    if resamples < 1:
        raise ValueError(f"the number of bootstrap resamples must be positive, not {resamples}")
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield rng.integers(0, n, size=n)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """The central ``level`` interval of resampled values along axis 0 (NaNs ignored):
    shape (2, ...) with the low bound first; NaN where no resample is finite."""
    samples = np.asarray(samples, float)
    tail = 50.0 * (1.0 - level)
    out = np.full((2, *samples.shape[1:]), np.nan)
    finite = np.isfinite(samples).any(axis=0)
    if np.any(finite):
        out[:, finite] = np.nanpercentile(samples[:, finite], [tail, 100.0 - tail], axis=0)
    return out


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    n: int,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(indices)`` over resamples of ``n`` units."""
    values = np.array([statistic(idx) for idx in resamples_of(n, resamples, seed)], float)
    low, high = percentile_interval(values, level)
    return float(low), float(high)


def ratio_of_sums_ci(
    numerator: np.ndarray,
    denominator: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> np.ndarray:
    """Interval (2, ...) of sum(numerator) / sum(denominator) over axis 0, resampling its rows.

    With per-study sums of footprints and counts of masks this is the cluster bootstrap of a
    mean footprint: studies are the independent units, not their correlated masks. Trailing
    axes (e.g. system, view) are computed together from the same resamples.
    """
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    ratios = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for idx in resamples_of(len(numerator), resamples, seed):
            ratios.append(numerator[idx].sum(axis=0) / denominator[idx].sum(axis=0))
    return percentile_interval(np.array(ratios), level)
