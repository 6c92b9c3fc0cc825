"""The analytic solids the anatomy is built from, and their rasterisation.

A shape is a solid in world mm with conservative world bounds (``lo``, ``hi``), a pointwise
test and an interior anchor: ellipsoids, tubes along polylines, implicit regions, and their
unions, clips and differences. Each rasterises itself over an index box of the grid, sparsely
where it can (a tube segment by segment, a union part by part, a clip only on its base's voxels).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from flows.maths.boxes import BoxMask, empty_box, tight
from flows.phantom.grid import Grid, Pred, dense, keep_where


class Shape:
    """A solid in world mm. ``inside`` broadcasts over x, y, z arrays."""

    lo: np.ndarray
    hi: np.ndarray
    anchor: np.ndarray  # a point meant to be inside: the voxel kept if the solid misses the grid

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def raster(self, grid: Grid, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return dense(self.inside, grid, a, b)


class Region(Shape):
    """An implicit solid given by a predicate and its bounds."""

    def __init__(self, fn: Pred, lo: ArrayLike, hi: ArrayLike, anchor: ArrayLike) -> None:
        self.fn, self.lo, self.hi = fn, np.asarray(lo, float), np.asarray(hi, float)
        self.anchor = np.asarray(anchor, float)

    def inside(self, x, y, z):
        return self.fn(x, y, z)


class Ellipsoid(Shape):
    """Ellipsoid with semi-axes ``radii`` along the columns of ``rot`` (identity by default)."""

    def __init__(self, center: ArrayLike, radii: ArrayLike, rot: np.ndarray | None = None) -> None:
        self.c = np.asarray(center, float)
        self.r = np.maximum(np.broadcast_to(np.asarray(radii, float), (3,)), 1e-6)
        self.rot = np.eye(3) if rot is None else np.asarray(rot, float)
        half = np.sqrt((self.rot**2) @ (self.r**2))
        self.lo, self.hi, self.anchor = self.c - half, self.c + half, self.c

    def inside(self, x, y, z):
        d = (x - self.c[0], y - self.c[1], z - self.c[2])
        total = 0.0
        for k in range(3):
            q = (d[0] * self.rot[0, k] + d[1] * self.rot[1, k] + d[2] * self.rot[2, k]) / self.r[k]
            total = total + q * q
        return total <= 1.0


class Tube(Shape):
    """Union of tapered capsules along a polyline (radius interpolated along each segment)."""

    def __init__(self, points: ArrayLike, radii: ArrayLike) -> None:
        self.p = np.asarray(points, float)
        self.r = np.maximum(np.broadcast_to(np.asarray(radii, float), (len(self.p),)), 0.0)
        self.lo = (self.p - self.r[:, None]).min(axis=0)
        self.hi = (self.p + self.r[:, None]).max(axis=0)
        self.anchor = self.p[len(self.p) // 2]

    def _segment(self, s: int) -> Pred:
        a, ab, r0, dr = self.p[s], self.p[s + 1] - self.p[s], self.r[s], self.r[s + 1] - self.r[s]
        length2 = max(float(ab @ ab), 1e-12)

        def inside(x, y, z):
            dx, dy, dz = x - a[0], y - a[1], z - a[2]
            t = np.clip((dx * ab[0] + dy * ab[1] + dz * ab[2]) / length2, 0.0, 1.0)
            ex, ey, ez = dx - t * ab[0], dy - t * ab[1], dz - t * ab[2]
            rad = r0 + t * dr
            return ex * ex + ey * ey + ez * ez <= rad * rad

        return inside

    def inside(self, x, y, z):
        out = False
        for s in range(len(self.p) - 1):
            out = out | self._segment(s)(x, y, z)
        return out

    def raster(self, grid: Grid, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # each segment only over its own small box: a diagonal tube's box is mostly empty
        out = np.zeros(tuple(b - a), dtype=bool)
        for s in range(len(self.p) - 1):
            rad = max(self.r[s], self.r[s + 1])
            lo = np.minimum(self.p[s], self.p[s + 1]) - rad
            hi = np.maximum(self.p[s], self.p[s + 1]) + rad
            _or_into(
                out, a, b, grid, lo, hi, lambda g, sa, sb, s=s: dense(self._segment(s), g, sa, sb)
            )
        return out


class Union(Shape):
    """Union of shapes, each rasterised over its own box."""

    def __init__(self, *parts: Shape, anchor: ArrayLike | None = None) -> None:
        self.parts = parts
        self.lo = np.min([p.lo for p in parts], axis=0)
        self.hi = np.max([p.hi for p in parts], axis=0)
        self.anchor = parts[0].anchor if anchor is None else np.asarray(anchor, float)

    def inside(self, x, y, z):
        out = False
        for p in self.parts:
            out = out | p.inside(x, y, z)
        return out

    def raster(self, grid: Grid, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.zeros(tuple(b - a), dtype=bool)
        for p in self.parts:
            _or_into(out, a, b, grid, p.lo, p.hi, p.raster)
        return out


class Where(Shape):
    """``base`` clipped to ``keep``; ``keep`` is only tested on base's voxels (cheap for tubes)."""

    def __init__(self, base: Shape, keep: Shape, anchor: ArrayLike | None = None) -> None:
        self.base, self.keep = base, keep
        self.lo, self.hi = np.maximum(base.lo, keep.lo), np.minimum(base.hi, keep.hi)
        self.anchor = base.anchor if anchor is None else np.asarray(anchor, float)

    def inside(self, x, y, z):
        return self.base.inside(x, y, z) & self.keep.inside(x, y, z)

    def raster(self, grid: Grid, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = self.base.raster(grid, a, b)
        keep_where(out, grid, a, self.keep.inside)
        return out


class Minus(Shape):
    """``base`` without ``hole``, each rasterised with its own (sparse) method."""

    def __init__(self, base: Shape, hole: Shape, anchor: ArrayLike) -> None:
        self.base, self.hole = base, hole
        self.lo, self.hi, self.anchor = base.lo, base.hi, np.asarray(anchor, float)

    def inside(self, x, y, z):
        return self.base.inside(x, y, z) & ~self.hole.inside(x, y, z)

    def raster(self, grid: Grid, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = self.base.raster(grid, a, b)
        hole = np.zeros_like(out)
        _or_into(hole, a, b, grid, self.hole.lo, self.hole.hi, self.hole.raster)
        out &= ~hole
        return out


def _or_into(out, a, b, grid, lo, hi, raster) -> None:
    """OR ``raster`` of the world box lo..hi into ``out`` (the index box [a, b))."""
    box = grid.box(lo, hi)
    if box is None:
        return
    sa, sb = np.maximum(box[0], a), np.minimum(box[1], b)
    if np.any(sb <= sa):
        return
    out[tuple(slice(int(p - q), int(r - q)) for p, r, q in zip(sa, sb, a, strict=True))] |= raster(
        grid, sa, sb
    )


def se3(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside the superellipse |u|^3 + |v|^3 <= 1 (a rounded-rectangle body cross-section)."""
    u2, v2 = u * u, v * v
    return u2 * np.sqrt(u2) + v2 * np.sqrt(v2) <= 1.0


def region_like(fn: Pred, shape: Shape, anchor: ArrayLike | None = None) -> Region:
    """A predicate bounded like ``shape``."""
    return Region(fn, shape.lo, shape.hi, shape.anchor if anchor is None else anchor)


def rasterise(shape: Shape, grid: Grid) -> BoxMask:
    """The voxels of ``shape`` on ``grid`` as a tight box (empty if it misses the grid)."""
    box = grid.box(shape.lo, shape.hi)
    if box is None:
        return empty_box()
    return tight(box[0], shape.raster(grid, *box))
