"""Small real NIfTI files in the input layouts (generic, TotalSegmentator, RadGenome) for tests."""

from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (24, 20, 16)
# An LPS grid (as DICOM converters write): 1.5 x 1.5 x 2.5 mm, origin off centre.
AFFINE = np.array(
    [[-1.5, 0.0, 0.0, 20.0], [0.0, -1.5, 0.0, 15.0], [0.0, 0.0, 2.5, -40.0], [0.0, 0.0, 0.0, 1.0]]
)
Box = tuple[slice, slice, slice]
# Class boxes in array (LPS) index space; every one is inside SHAPE.
BOXES: dict[str, Box] = {
    "left lung upper lobe": np.s_[2:9, 3:15, 8:15],
    "left lung lower lobe": np.s_[2:9, 3:15, 2:8],
    "right lung upper lobe": np.s_[15:22, 3:15, 9:15],
    "right lung middle lobe": np.s_[15:22, 3:9, 6:9],
    "right lung lower lobe": np.s_[15:22, 3:15, 2:6],
    "heart": np.s_[6:13, 4:10, 4:9],
    "thoracic vertebrae 7 (t7)": np.s_[11:14, 14:18, 6:9],
    "right rib 7": np.s_[0:0, 0:0, 0:0],  # given but empty
}
TS_NAMES = {
    "left lung upper lobe": "lung_upper_lobe_left",
    "left lung lower lobe": "lung_lower_lobe_left",
    "right lung upper lobe": "lung_upper_lobe_right",
    "right lung middle lobe": "lung_middle_lobe_right",
    "right lung lower lobe": "lung_lower_lobe_right",
    "heart": "heart",
    "thoracic vertebrae 7 (t7)": "vertebrae_T7",
    "right rib 7": "rib_right_7",
}


def ct_array(shape: tuple[int, int, int] = SHAPE, seed: int = 0) -> np.ndarray:
    """A tiny chest-like CT in HU: air around a soft-tissue body with a bony column."""
    rng = np.random.default_rng(seed)
    ct = np.full(shape, -1000, np.int16)
    ct[1:-1, 1:-1, :] = 40
    ct[2:9, 3:15, 2:15] = -850  # left lung
    ct[15:22, 3:15, 2:15] = -850  # right lung
    ct[11:14, 14:18, :] = 700  # spine
    ct += rng.integers(-5, 6, shape, dtype=np.int16)
    return ct


def mask_array(box: Box, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """A uint8 0/1 mask of one box."""
    mask = np.zeros(shape, np.uint8)
    mask[box] = 1
    return mask


def save(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE, **header: float) -> Path:
    """Write ``array`` as NIfTI-1 (gzipped when the name ends in .gz); header fields optional."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(array, affine)
    for key, value in header.items():
        image.header[key] = value
    nib.save(image, str(path))
    return path


def generic_study(
    root: Path, study_id: str, boxes: Mapping[str, Box] = BOXES, seed: int = 0
) -> Path:
    """``<root>/<study>/ct.nii.gz`` and ``masks/<class>.nii.gz``."""
    folder = root / study_id
    save(folder / "ct.nii.gz", ct_array(seed=seed))
    for name, box in boxes.items():
        save(folder / "masks" / f"{name}.nii.gz", mask_array(box))
    return folder


def ts_study(root: Path, study_id: str, *, multilabel: bool = False, extra: bool = True) -> Path:
    """A TotalSegmentator study: binary ``segmentations/`` or one ``segmentations.nii.gz``.

    ``extra`` adds ``autochthon_left``, a TotalSegmentator class with no vocabulary class.
    """
    folder = root / study_id
    save(folder / "ct.nii.gz", ct_array())
    masks = {TS_NAMES[name]: box for name, box in BOXES.items()}
    if extra:
        masks["autochthon_left"] = np.s_[9:11, 15:19, 3:12]
    if multilabel:
        ids = {name: i for i, name in _v2_ids().items()}
        labels = np.zeros(SHAPE, np.uint8)
        for name, box in masks.items():
            labels[box] = ids[name]
        save(folder / "segmentations.nii.gz", labels)
    else:
        for name, box in masks.items():
            save(folder / "segmentations" / f"{name}.nii.gz", mask_array(box))
    return folder


def _v2_ids() -> dict[int, str]:
    from catalog.totalsegmentator import v2_class_map

    return v2_class_map()
