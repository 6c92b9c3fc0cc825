"""Phantom studies as ingest inputs (``--layout phantom``, the demo, tests and benchmarks)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from flows.inputs.study import LoadedStudy
from flows.phantom.geometry import PhantomGeometry
from flows.phantom.make import make_phantom


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
