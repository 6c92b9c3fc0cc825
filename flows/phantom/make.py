"""``make_phantom``, the entry point, and the ``Phantom`` it returns.

Sparse generation. Every leaf class (one without ``union_of``) is rasterised over its own bounding
box only and kept as a ``BoxMask``. A class with ``union_of`` is the OR of its leaves, built on
demand by ``Phantom.masks()`` one at a time, so "parents are unions of their children" holds
exactly and memory stays near one CT plus the leaves' boxes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from catalog.taxonomy import load_taxonomy
from flows.maths.boxes import BoxMask, union
from flows.phantom.anatomy import leaf_shapes
from flows.phantom.ct import add_noise, lumens, paint_ct
from flows.phantom.geometry import DEFAULT_FOV_MM, PhantomGeometry
from flows.phantom.grid import Grid
from flows.phantom.layout import Jitter, Layout
from flows.phantom.masks import build_masks, leaves_of
from flows.phantom.shapes import Shape


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic CT with one mask per class of the vocabulary.

    ``ct`` is int16 HU in RAS-canonical order; ``affine`` maps voxel indices (i, j, k) to world
    mm with the spacing on its diagonal and voxel centres symmetric about the FOV centre;
    ``geometry`` is the ground truth it was built with. Leaf classes are stored as tight boxes
    (read-only); union classes are built when asked for, so iterating ``masks()`` holds at most
    one union volume at a time.
    """

    ct: np.ndarray  # int16 HU, shape (X, Y, Z), RAS canonical
    spacing: tuple[float, float, float]  # mm per voxel along i, j, k
    affine: np.ndarray  # 4x4 float64 voxel -> RAS mm
    geometry: PhantomGeometry
    _leaves: Mapping[str, BoxMask] = field(repr=False)

    def masks(self) -> Iterator[tuple[str, BoxMask]]:
        """Every class exactly once, in ``union_order()``, each built only when requested."""
        for name in load_taxonomy().union_order():
            yield name, self.mask(name)

    def mask(self, name: str) -> BoxMask:
        """One class: a stored leaf, or the OR of the leaves of a union class."""
        leaves = leaves_of(name)
        if leaves == (name,):
            return self._leaves[name]
        return union([self._leaves[leaf] for leaf in leaves])


_Z_REACH = 395.0  # |z| of the anatomy's ends: jugular veins at the skull base, the femoral heads


def _check_fov(body: Shape, fov: tuple[float, float, float]) -> None:
    """The FOV must hold the whole body across (arms, back, breasts) and the anatomy's height."""
    need = (
        2 * float(max(-body.lo[0], body.hi[0])) + 4.0,
        2 * float(max(-body.lo[1], body.hi[1])) + 4.0,
        2 * _Z_REACH,
    )
    for axis, (have, want) in enumerate(zip(fov, need, strict=True)):
        if have < want:
            raise ValueError(
                f"fov_mm[{axis}] = {have} mm is too small for this geometry: the body needs "
                f"at least {want:.0f} mm along axis {'xyz'[axis]}."
            )


def make_phantom(
    shape: tuple[int, int, int] = (128, 128, 160),
    *,
    seed: int = 0,
    geometry: PhantomGeometry = PhantomGeometry(),  # noqa: B008 (frozen, so immutable)
    fov_mm: tuple[float, float, float] = DEFAULT_FOV_MM,
) -> Phantom:
    """Build a synthetic thorax CT and all 210 class masks on a ``shape`` grid spanning ``fov_mm``.

    Spacing is ``fov_mm / shape`` (anisotropic shapes give anisotropic voxels). The same
    arguments give byte-identical CT and masks; the seed varies organ positions and sizes by a
    few per cent and the noise, never the ground-truth ``geometry``.
    """
    shape = tuple(int(n) for n in shape)  # type: ignore[assignment]
    if len(shape) != 3 or min(shape) < 16:
        raise ValueError(f"shape must be three sizes of at least 16 voxels, got {shape}.")
    if len(fov_mm) != 3 or not all(math.isfinite(f) and f > 0 for f in fov_mm):
        raise ValueError(f"fov_mm must be three positive lengths in mm, got {fov_mm}.")
    grid = Grid(shape, tuple(float(f) for f in fov_mm))  # type: ignore[arg-type]
    anatomy_rng, noise_rng = np.random.default_rng(seed).spawn(2)
    jit = Jitter(anatomy_rng)
    # the skin is at least one voxel thick so the shell stays closed on coarse grids
    lay = Layout(geometry, jit, skin_mm=float(np.clip(grid.spacing.max(), 3.0, 12.0)))
    shapes, body = leaf_shapes(lay, jit)
    _check_fov(body, fov_mm)
    masks = build_masks(shapes, grid)
    ct = paint_ct(grid, masks, body, lumens(shapes, lay))
    add_noise(ct, noise_rng)
    affine = np.eye(4)
    affine[:3, :3] = np.diag(grid.spacing)
    affine[:3, 3] = grid.origin
    return Phantom(
        ct=ct,
        spacing=tuple(float(s) for s in grid.spacing),  # type: ignore[arg-type]
        affine=affine,
        geometry=geometry,
        _leaves=masks,
    )
