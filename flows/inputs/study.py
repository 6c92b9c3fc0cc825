"""What a study's inputs are and how one is opened (one class per input layout).

An input is a small picklable description; ``load`` runs on a worker and yields the CT and
the class masks one at a time, so a study's masks are never all in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from flows.phantom import BoxMask, PhantomGeometry, make_phantom


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


@dataclass(frozen=True)
class PhantomInput:
    """A synthetic study: a phantom of the given size, seed and ground-truth geometry."""

    study_id: str
    split: str
    shape: tuple[int, int, int]
    seed: int
    geometry: PhantomGeometry

    def load(self) -> LoadedStudy:
        phantom = make_phantom(self.shape, seed=self.seed, geometry=self.geometry)
        attrs = {
            "layout": "phantom",
            "split": self.split,
            "phantom": {"seed": self.seed, "geometry": asdict(self.geometry)},
        }
        return LoadedStudy(phantom.ct, phantom.spacing, phantom.affine, phantom.masks(), attrs)


def phantom_inputs(
    count: int, shape: tuple[int, int, int], seed: int = 0, valid_every: int = 5
) -> list[PhantomInput]:
    """``count`` phantom studies spanning normal to abnormal heart size and spine curvature.

    Geometry is drawn from ``seed``; every ``valid_every``-th study is in the validation split.
    """
    if count < 1:
        raise ValueError(f"the phantom layout needs at least one study, not {count}")
    rng = np.random.default_rng(seed)
    inputs = []
    for index in range(count):
        thoracic = float(rng.uniform(250.0, 300.0))
        geometry = PhantomGeometry(
            heart_width_mm=round(thoracic * float(rng.uniform(0.40, 0.62)), 1),
            thoracic_width_mm=round(thoracic, 1),
            scoliosis_deg=round(float(rng.uniform(-25.0, 25.0)), 1),
            kyphosis_deg=round(float(rng.uniform(20.0, 55.0)), 1),
        )
        split = "valid" if index % valid_every == valid_every - 1 else "train"
        study_seed = int(rng.integers(0, 2**31 - 1))
        inputs.append(PhantomInput(f"phantom-{index:04d}", split, shape, study_seed, geometry))
    return inputs
