"""Volumetric-to-radiographic projection (paper section 3.3): pure numpy, no I/O.

Volumes are RAS-canonical arrays indexed [i, j, k]: i toward the patient's right, j anterior,
k superior. A view's raw projection is a 2D array over (h, k), where h is the axis the view
keeps: i for PA (rays run along j) and j for LL (rays run along i).

Display orientation (radiographic convention, fixed by golden tests):
- superior is up in both views;
- PA: the patient's right on the viewer's left, so columns run from high i to low i;
- LL: anterior on the viewer's left, so columns run from high j to low j.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

VIEWS: tuple[str, ...] = ("PA", "LL")
CANVAS = 384
HU_RANGE = (-1000.0, 3071.0)
ATTENUATION_MODELS: tuple[str, ...] = ("linear", "exponential")
_RAY_AXIS = {"PA": 1, "LL": 0}  # the volume axis a view integrates over
_KEPT_AXIS = {"PA": 0, "LL": 1}  # the volume axis a view keeps as its columns


def ray_sums(hu: np.ndarray, spacing: Sequence[float], slab: int = 32) -> dict[str, np.ndarray]:
    """Raw PA and LL line integrals (mm-weighted sums of attenuation), float32 of shape (h, k).

    Attenuation relative to water is mu / mu_water = 1 + HU / 1000 with HU clipped to
    ``HU_RANGE``; mu_water itself is dropped, as it cancels under per-image min-max (reference
    notes). Along a ray of n voxels, sum(mu) = n + sum(clipped HU) / 1000. Integer HU are summed as
    integers, which is exact (no summation order can change a bit) and several times faster
    than summing float attenuation; a slab of ``slab`` slices is clipped at a time.
    """
    if hu.dtype.kind in "iu":
        low, high = (int(v) for v in HU_RANGE)
        # |a ray's sum| <= n * 3071: int32 holds rays of up to ~700,000 voxels
        accumulator: type = np.int64 if max(hu.shape[:2]) * high >= 2**31 else np.int32
    else:
        (low, high), accumulator = HU_RANGE, np.float64
    nx, ny, nz = hu.shape
    totals = {"PA": np.empty((nx, nz), accumulator), "LL": np.empty((ny, nz), accumulator)}
    for k0 in range(0, nz, slab):
        clipped = np.clip(hu[:, :, k0 : k0 + slab], low, high)
        for view, axis in _RAY_AXIS.items():
            totals[view][:, k0 : k0 + slab] = clipped.sum(axis=axis, dtype=accumulator)
    return {
        view: ((hu.shape[axis] + totals[view] / 1000.0) * float(spacing[axis])).astype(np.float32)
        for view, axis in _RAY_AXIS.items()
    }


def ray_any(mask: np.ndarray) -> dict[str, np.ndarray]:
    """Raw PA and LL footprints of one boolean volume: does any voxel lie on each ray.

    Both views come from the same array, so every mask voxel is read once for both.
    """
    return {view: mask.any(axis=axis) for view, axis in _RAY_AXIS.items()}


def transmission(integral: np.ndarray, mu_water_per_mm: float = 0.02) -> np.ndarray:
    """The exponential model (PAX-Ray++ option): absorbed fraction 1 - exp(-mu_w * integral)."""
    return -np.expm1(-np.float32(mu_water_per_mm) * integral)


@dataclass(frozen=True)
class ViewGrid:
    """How one view's raw projection (h, k) lands on the square-pixel canvas.

    Rows and columns are sampled at pixel centres; ``row_source``/``col_source`` are the
    continuous coordinates, in raw-array pixels of the *oriented* image, of each content pixel.
    """

    view: str
    raw_shape: tuple[int, int]  # (h, k) of the raw projection
    mm_per_pixel: float
    content: tuple[int, int, int, int]  # canvas rows [r0, r1) and columns [c0, c1)
    row_source: np.ndarray
    col_source: np.ndarray
    canvas: int


def view_grid(
    volume_shape: Sequence[int], spacing: Sequence[float], view: str, canvas: int = CANVAS
) -> ViewGrid:
    """The sampling grid that fits one view into ``canvas`` x ``canvas`` at square pixels."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
    kept = _KEPT_AXIS[view]
    n_cols, n_rows = int(volume_shape[kept]), int(volume_shape[2])
    col_mm, row_mm = float(spacing[kept]), float(spacing[2])
    if min(n_cols, n_rows) < 1 or min(col_mm, row_mm) <= 0:
        raise ValueError(f"cannot project a volume of shape {volume_shape} at {spacing} mm")
    width, height = n_cols * col_mm, n_rows * row_mm
    mm_per_pixel = max(width, height) / canvas
    rows = min(canvas, max(1, round(height / mm_per_pixel)))
    cols = min(canvas, max(1, round(width / mm_per_pixel)))
    r0, c0 = (canvas - rows) // 2, (canvas - cols) // 2
    # Pixel centres in mm from the image's top-left corner, then in source-pixel units.
    row_source = (np.arange(rows) + 0.5) * (mm_per_pixel / row_mm) - 0.5
    col_source = (np.arange(cols) + 0.5) * (mm_per_pixel / col_mm) - 0.5
    return ViewGrid(
        view=view,
        raw_shape=(n_cols, n_rows),
        mm_per_pixel=mm_per_pixel,
        content=(r0, r0 + rows, c0, c0 + cols),
        row_source=row_source,
        col_source=col_source,
        canvas=canvas,
    )


def orient(raw: np.ndarray) -> np.ndarray:
    """Raw (h, k) projection to display order: superior up, high h on the viewer's left."""
    return raw.T[::-1, ::-1]


def _nearest(source: np.ndarray, n: int) -> np.ndarray:
    return np.clip(np.floor(source + 0.5), 0, n - 1).astype(np.intp)


def _linear(source: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    clamped = np.clip(source, 0, n - 1)
    low = np.minimum(np.floor(clamped).astype(np.intp), max(n - 2, 0))
    high = np.minimum(low + 1, n - 1)
    return low, high, (clamped - low).astype(np.float32)


def resample_image(raw: np.ndarray, grid: ViewGrid) -> np.ndarray:
    """Bilinear resampling of a raw projection onto the canvas (float32, zero outside)."""
    image = orient(raw).astype(np.float32, copy=False)
    r_lo, r_hi, r_w = _linear(grid.row_source, image.shape[0])
    c_lo, c_hi, c_w = _linear(grid.col_source, image.shape[1])
    # a + w (b - a) rather than (1 - w) a + w b: exact where a == b, so flat stays flat
    by_rows = image[r_lo] + r_w[:, None] * (image[r_hi] - image[r_lo])
    content = by_rows[:, c_lo] + c_w * (by_rows[:, c_hi] - by_rows[:, c_lo])
    return _place(content, grid, np.float32)


def resample_mask(raw: np.ndarray, grid: ViewGrid) -> np.ndarray:
    """Nearest-neighbour resampling of a raw footprint onto the canvas (bool, False outside)."""
    footprint = orient(raw)
    rows = _nearest(grid.row_source, footprint.shape[0])
    cols = _nearest(grid.col_source, footprint.shape[1])
    return _place(footprint[np.ix_(rows, cols)], grid, bool)


def _place(content: np.ndarray, grid: ViewGrid, dtype: type) -> np.ndarray:
    out = np.zeros((grid.canvas, grid.canvas), dtype)
    r0, r1, c0, c1 = grid.content
    out[r0:r1, c0:c1] = content
    return out


def to_uint8(image: np.ndarray, grid: ViewGrid) -> np.ndarray:
    """Image-wise min-max to 8 bits over the content region; a constant image maps to zeros."""
    r0, r1, c0, c1 = grid.content
    content = image[r0:r1, c0:c1]
    low, high = float(content.min()), float(content.max())
    out = np.zeros(image.shape, np.uint8)
    if high > low:
        scaled = (content - np.float32(low)) * np.float32(255.0 / (high - low))
        out[r0:r1, c0:c1] = np.rint(np.clip(scaled, 0, 255)).astype(np.uint8)
    return out


@dataclass(frozen=True)
class StudyProjection:
    """Both views of one study: images, one mask per class, and the grid's mm per pixel."""

    image: np.ndarray  # uint8 (view, y, x)
    mask: np.ndarray  # bool (view, label, y, x)
    pixel_spacing: np.ndarray  # float32 (view,)


def project_study(
    hu: np.ndarray,
    spacing: Sequence[float],
    masks: Iterable[tuple[int, tuple[int, int, int], np.ndarray]],
    n_labels: int,
    canvas: int = CANVAS,
    model: str = "linear",
    composed: Mapping[int, Sequence[int]] | None = None,
) -> StudyProjection:
    """Project a CT and its class masks into PA and LL.

    ``masks`` yields (label index, box origin, boolean box) one class at a time; classes it
    does not yield get empty masks. Each box is read once for both views. ``composed`` maps a
    class that is exactly the union of some classes to them (members first, as in
    ``union_order``): its masks are the OR of theirs, which is exact, because a ray meets a
    union if and only if it meets a member, and nearest-neighbour resampling is a gather.
    """
    if model not in ATTENUATION_MODELS:
        raise ValueError(f"unknown attenuation model {model!r}; expected {ATTENUATION_MODELS}")
    grids = [view_grid(hu.shape, spacing, view, canvas) for view in VIEWS]
    image = np.zeros((len(VIEWS), canvas, canvas), np.uint8)
    for v, (grid, raw) in enumerate(zip(grids, ray_sums(hu, spacing).values(), strict=True)):
        processed = transmission(raw) if model == "exponential" else raw
        image[v] = to_uint8(resample_image(processed, grid), grid)
    mask = np.zeros((len(VIEWS), n_labels, canvas, canvas), bool)
    for label, origin, box in masks:
        for v, (grid, raw) in enumerate(zip(grids, ray_any(box).values(), strict=True)):
            mask[v, label] = resample_mask(_embed(raw, origin, grid), grid)
    for label, members in (composed or {}).items():
        mask[:, label] = mask[:, list(members)].any(axis=1)
    spacing_mm = np.array([grid.mm_per_pixel for grid in grids], np.float32)
    return StudyProjection(image=image, mask=mask, pixel_spacing=spacing_mm)


def _embed(raw_box: np.ndarray, origin: Sequence[int], grid: ViewGrid) -> np.ndarray:
    """Place a box's raw footprint (h, k) into the full raw projection of its view."""
    full = np.zeros(grid.raw_shape, bool)
    h0, k0 = origin[_KEPT_AXIS[grid.view]], origin[2]
    full[h0 : h0 + raw_box.shape[0], k0 : k0 + raw_box.shape[1]] = raw_box
    return full


def region_masks(mask: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Union of the class masks of each group along the label axis (axis -3)."""
    shape = (*mask.shape[:-3], len(groups), *mask.shape[-2:])
    out = np.zeros(shape, bool)
    for g, members in enumerate(groups):
        if len(members):
            out[..., g, :, :] = mask[..., list(members), :, :].any(axis=-3)
    return out
