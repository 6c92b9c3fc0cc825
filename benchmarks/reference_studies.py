"""Reference-size phantom studies written the way RadGenome-Chest CT ships them.

Per study: ``<root>/train_<n>_a_1.nii.gz`` (int16 HU) and ``<root>/seg_train_<n>_a_1/`` with one
``<class name>.nii.gz`` per class (uint8, 0/1, all 210 classes, dense on the CT's grid), identity
affine. The phantoms have realistic sparsity: a nodule is a few hundred voxels, skin and muscle
fill large parts of the volume. Files are gzip level 6 (zlib's default), written with zlib-ng,
which makes the same kind of stream ten times faster; every reader decodes the same bytes.

Studies already written with the same shape and seed are kept, so reruns skip generation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from zlib_ng import gzip_ng

from flows.phantom import Phantom, make_phantom, phantom_inputs, voxel_spacing

GZIP_LEVEL = 6
_MARKER = ".complete.json"


@dataclass(frozen=True)
class ReferenceStudy:
    """Where one generated study's files are."""

    study_id: str
    ct: Path
    masks: Path  # the seg_<study> folder

    def files(self) -> list[Path]:
        """The CT then every mask file, in a fixed order."""
        return [self.ct, *sorted(self.masks.glob("*.nii.gz"))]


def reference_studies(
    root: Path, count: int, shape: tuple[int, int, int], seed: int = 0
) -> list[ReferenceStudy]:
    """Write (or reuse) ``count`` studies of ``shape`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    inputs = phantom_inputs(count, shape, seed=seed)
    studies = []
    for index, item in enumerate(inputs, start=1):
        study_id = f"train_{index}_a_1"
        study = ReferenceStudy(study_id, root / f"{study_id}.nii.gz", root / f"seg_{study_id}")
        wanted = {"shape": list(shape), "seed": item.seed, "geometry": repr(item.geometry)}
        marker = study.masks / _MARKER
        if not (marker.exists() and json.loads(marker.read_text()) == wanted):
            _write(study, make_phantom(shape, seed=item.seed, geometry=item.geometry))
            marker.write_text(json.dumps(wanted))
        studies.append(study)
    return studies


def spacing_of(shape: tuple[int, int, int]) -> tuple[float, float, float]:
    """The phantom's voxel spacing at ``shape`` (what ``rga ingest --spacing`` must be given)."""
    return voxel_spacing(shape)


def _write(study: ReferenceStudy, phantom: Phantom) -> None:
    study.masks.mkdir(parents=True, exist_ok=True)
    _save(study.ct, np.asfortranarray(phantom.ct))
    dense = np.zeros(phantom.ct.shape, np.uint8, order="F")
    for name, mask in phantom.masks():
        dense[...] = 0
        if mask.data.size:
            dense[mask.slices] = mask.data
        _save(study.masks / f"{name}.nii.gz", dense)


def _save(path: Path, data: np.ndarray) -> None:
    """A NIfTI-1 file with an identity affine, gzip-compressed, with no timestamp."""
    image = nib.Nifti1Image(data, np.eye(4))
    image.header.set_xyzt_units("mm")
    payload = gzip_ng.compress(image.to_bytes(), compresslevel=GZIP_LEVEL, mtime=0)
    temporary = path.with_suffix(".partial")
    temporary.write_bytes(payload)
    temporary.replace(path)
