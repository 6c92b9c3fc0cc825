"""World coordinates and the voxel grid; a pointwise test evaluated over a box of voxels.

Coordinates. Arrays are indexed ``[i, j, k]`` in RAS-canonical order (nibabel
``as_closest_canonical``): i toward the patient's RIGHT, j ANTERIOR, k SUPERIOR. World millimetres
x, y, z run along i, j, k; voxel centres are symmetric about x = y = z = 0, so the body midline
is x = 0, and ``Phantom.affine`` maps voxel indices to these coordinates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flows.phantom.geometry import DEFAULT_FOV_MM

# A pointwise test on world mm: broadcasts over x, y, z arrays, returns a boolean array.
Pred = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
Point = tuple[float, float, float]  # world mm (x, y, z)

CHUNK = 1 << 21  # voxels evaluated at once: bounds float64 temporaries to a few tens of MB


def voxel_spacing(
    shape: tuple[int, int, int], fov_mm: tuple[float, float, float] = DEFAULT_FOV_MM
) -> tuple[float, float, float]:
    """mm per voxel along i, j, k of a phantom of ``shape`` over ``fov_mm``."""
    return tuple(float(f) / n for f, n in zip(fov_mm, shape, strict=True))  # type: ignore[return-value]


class Grid:
    """Voxel-centre coordinates (mm) of the volume along each axis."""

    def __init__(self, shape: tuple[int, int, int], fov: tuple[float, float, float]) -> None:
        self.shape = shape
        self.spacing = np.asarray(voxel_spacing(shape, fov))
        self.origin = -np.asarray(fov, dtype=float) / 2 + self.spacing / 2
        self.x, self.y, self.z = (
            self.origin[a] + self.spacing[a] * np.arange(shape[a]) for a in range(3)
        )

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Index range [a, b) of the voxels whose centres may lie in the world box lo..hi."""
        a = np.ceil((lo - self.origin) / self.spacing - 1e-9).astype(int)
        b = np.floor((hi - self.origin) / self.spacing + 1e-9).astype(int) + 1
        a, b = np.clip(a, 0, self.shape), np.clip(b, 0, self.shape)
        return None if np.any(b <= a) else (a, b)

    def nearest(self, point: np.ndarray) -> tuple[int, int, int]:
        """Index of the voxel whose centre is nearest to a world point (clipped to the volume)."""
        idx = np.rint((np.asarray(point) - self.origin) / self.spacing).astype(int)
        return tuple(int(v) for v in np.clip(idx, 0, np.asarray(self.shape) - 1))  # type: ignore[return-value]


def dense(pred: Pred, grid: Grid, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Evaluate a pointwise predicate on every voxel of the box [a, b), a few slices at a time."""
    out = np.empty(tuple(b - a), dtype=bool)
    x = grid.x[a[0] : b[0], None, None]
    y = grid.y[None, a[1] : b[1], None]
    step = max(1, CHUNK // int(out.shape[0] * out.shape[1]))
    for k in range(a[2], b[2], step):
        end = min(k + step, b[2])
        out[:, :, k - a[2] : end - a[2]] = pred(x, y, grid.z[None, None, k:end])
    return out


def keep_where(mask: np.ndarray, grid: Grid, a: np.ndarray, test: Pred) -> None:
    """Clear the True voxels of ``mask`` (a box at index ``a``) where ``test`` fails."""
    step = max(1, CHUNK // max(1, mask.shape[0] * mask.shape[1]))
    for k in range(0, mask.shape[2], step):
        sub = mask[:, :, k : k + step]
        ii, jj, kk = np.nonzero(sub)
        if ii.size == 0:
            continue
        x, y, z = grid.x[a[0] + ii], grid.y[a[1] + jj], grid.z[a[2] + k + kk]
        bad = ~np.broadcast_to(test(x, y, z), ii.shape)
        sub[ii[bad], jj[bad], kk[bad]] = False
