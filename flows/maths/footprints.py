"""Mean mask footprint per body system and view (paper Table A4): pure numpy.

From the small per-study arrays of a dataset (``StudyArrays``, loaded by ``flows.stats``): the
mean pixel count of the non-empty masks of available classes of each system and view, with a
cluster bootstrap interval over studies (``flows.maths.bootstrap``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from catalog.taxonomy import SYSTEMS
from flows.maths.bootstrap import RESAMPLES, SEED, ratio_of_sums_ci


@dataclass(frozen=True)
class StudyArrays:
    """The small per-study arrays of a dataset, loaded once."""

    footprint: np.ndarray  # (study, view, label) int
    available: np.ndarray  # (study, label) bool
    stored: np.ndarray  # (study, view) bool: projection written
    split: np.ndarray  # (study,) str
    system: np.ndarray  # (label,) str
    labels: tuple[str, ...]  # (label,) class names
    levels: tuple[str, ...]  # (label,) hierarchy levels
    views: tuple[str, ...]
    image_pixels: int


@dataclass(frozen=True)
class FootprintSummary:
    """Mean footprint per (system, view) with its interval and mask counts, for tables and
    figures."""

    systems: tuple[str, ...]
    views: tuple[str, ...]
    mean: np.ndarray  # (system, view) pixels
    low: np.ndarray
    high: np.ndarray
    masks: np.ndarray  # (system, view) non-empty masks of available classes
    image_pixels: int


def footprint_summary(
    arrays: StudyArrays, resamples: int = RESAMPLES, seed: int = SEED
) -> FootprintSummary:
    """Mean non-empty footprint of available classes per system and view, with intervals."""
    counted = (arrays.footprint > 0) & arrays.available[:, None, :] & arrays.stored[..., None]
    pixels = np.where(counted, arrays.footprint, 0)
    members = np.array([arrays.system == s for s in SYSTEMS], np.int64).T  # (label, system)
    sums = np.einsum("svl,lg->sgv", pixels, members).astype(float)  # (study, system, view)
    counts = np.einsum("svl,lg->sgv", counted.astype(np.int64), members).astype(float)
    total_counts = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums.sum(axis=0) / total_counts
    low, high = ratio_of_sums_ci(sums, counts, resamples, seed)
    return FootprintSummary(
        systems=SYSTEMS,
        views=arrays.views,
        mean=mean,
        low=low,
        high=high,
        masks=total_counts.astype(np.int64),
        image_pixels=arrays.image_pixels,
    )
