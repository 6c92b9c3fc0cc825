"""What every format is given: the exported selection, and one study's pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Selection:
    """The views and classes an export holds, in the store's order."""

    views: tuple[str, ...]
    labels: tuple[str, ...]
    systems: tuple[str, ...]  # each label's system
    label_ids: tuple[int, ...]  # each label's 1-based position among the store's classes
    height: int
    width: int


@dataclass(frozen=True)
class StudyPixels:
    """One study as exported: radiographs (view, y, x) uint8, masks (view, label, y, x) bool."""

    study: str
    split: str
    images: np.ndarray
    masks: np.ndarray
    available: np.ndarray  # (label,) bool: False = the input had no such class (unknown)
    pixel_spacing: tuple[float, ...]  # mm, per view

    def unavailable(self, selection: Selection) -> list[str]:
        """Names of the classes this study's input did not provide."""
        return [n for n, given in zip(selection.labels, self.available, strict=True) if not given]


def case_name(study: str, view: str) -> str:
    """One image's name in flat layouts (nnU-Net cases): ``<study>_<view>``."""
    return f"{study}_{view}"
