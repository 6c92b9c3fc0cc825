"""The mean footprint per (system, view) with its bootstrap interval: what stats computes and
the reports render (paper Table A4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
