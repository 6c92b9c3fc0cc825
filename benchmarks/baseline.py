"""The baseline: what a user would write without rga, one study at a time, straight from NIfTI.

nibabel reads the CT (``get_fdata``, float64) and every structure's file; the image is one
``np.sum`` per view of the attenuation; each structure's footprint is ``np.any`` per view;
``scipy.ndimage.zoom`` resamples both onto the square canvas (bilinear image, nearest masks).
It keeps the results in memory and writes nothing, so it pays no storage cost that rga pays.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from flows.maths.projection import HU_RANGE

RAY_AXIS = {"PA": 1, "LL": 0}


def baseline_study(
    ct_file: Path, mask_files: list[Path], spacing: tuple[float, float, float], canvas: int
) -> dict[str, np.ndarray]:
    """Both views' uint8 images and (view, structure, y, x) masks of one study."""
    ct = nib.load(ct_file).get_fdata()
    mu = np.clip(ct, *HU_RANGE) / 1000.0 + 1.0
    del ct
    out: dict[str, np.ndarray] = {}
    for view, axis in RAY_AXIS.items():
        raw = mu.sum(axis=axis) * spacing[axis]
        image = _zoom(raw, spacing, view, canvas, order=1)
        out[f"image_{view}"] = _to_uint8(image)
    del mu
    masks = np.zeros((len(RAY_AXIS), len(mask_files), canvas, canvas), bool)
    for index, path in enumerate(mask_files):
        mask = np.asanyarray(nib.load(path).dataobj)
        for v, (view, axis) in enumerate(RAY_AXIS.items()):
            footprint = np.any(mask, axis=axis)
            masks[v, index] = _zoom(footprint.astype(np.uint8), spacing, view, canvas, order=0) > 0
    out["mask"] = masks
    return out


def _zoom(raw: np.ndarray, spacing: tuple[float, ...], view: str, canvas: int, order: int):
    """Resample (h, k) to square pixels that fit ``canvas``, then pad to ``canvas`` x ``canvas``."""
    kept = 1 - RAY_AXIS[view]
    width, height = raw.shape[0] * spacing[kept], raw.shape[1] * spacing[2]
    mm = max(width, height) / canvas
    factors = (spacing[kept] / mm, spacing[2] / mm)
    zoomed = ndimage.zoom(raw.astype(np.float32), factors, order=order)[:canvas, :canvas]
    image = np.zeros((canvas, canvas), np.float32)
    image[: zoomed.shape[1], : zoomed.shape[0]] = zoomed.T[::-1, ::-1]
    return image


def _to_uint8(image: np.ndarray) -> np.ndarray:
    low, high = float(image.min()), float(image.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.rint((image - low) * scale).astype(np.uint8)
