"""What a study's inputs are and how one is opened (one class per input layout).

An input is a small picklable description; ``load`` runs on a worker and yields the CT and
the class masks one at a time, so a study's masks are never all in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from flows.maths.boxes import BoxMask


@dataclass(frozen=True)
class LoadedStudy:
    """A study's CT in RAS-canonical HU with its grid, and its masks by class name.

    ``attrs`` may be completed while ``masks`` is consumed (the files read, names skipped), so
    it is final only after every mask has been taken; ingest takes them all before writing.
    """

    ct: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    masks: Iterator[tuple[str, BoxMask]]
    attrs: dict[str, Any] = field(default_factory=dict)


class StudyInput(Protocol):
    """One study's inputs, described without reading them."""

    study_id: str
    split: str

    def load(self) -> LoadedStudy: ...
