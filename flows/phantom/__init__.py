"""Synthetic thorax CT phantom: a CT in Hounsfield units plus every one of the 210 classes.

The phantom is the project's stand-in for a real study. It is built from analytic primitives
(ellipsoids, tubes along polylines, superelliptic cross-sections that vary with height), so its
ground-truth geometry (cardiothoracic ratio, Cobb angles) is known exactly and measurement and
projection code can be checked against it. Pure numpy: no I/O, no Dask.

Coordinates. Arrays are indexed ``[i, j, k]`` in RAS-canonical order (nibabel
``as_closest_canonical``): i toward the patient's RIGHT, j ANTERIOR, k SUPERIOR. World millimetres
x, y, z run along i, j, k; voxel centres are symmetric about x = y = z = 0, so the body midline
is x = 0, and ``Phantom.affine`` maps voxel indices to these coordinates.

Sparse generation. Every leaf class (one without ``union_of``) is rasterised over its own bounding
box only and kept as a ``BoxMask``. A class with ``union_of`` is the OR of its leaves, built on
demand by ``Phantom.masks()`` one at a time, so "parents are unions of their children" holds
exactly and memory stays near one CT plus the leaves' boxes.

Overlaps and containment. Where two unrelated primitives collide, the leaf higher in a fixed
priority (heart, bones, airway, vessels, viscera, lungs, fill tissues) keeps the voxels, so only
related classes overlap. Every containment of ``Taxonomy.containers`` holds exactly, as do the
brief's (pulmonary embolism in the pulmonary artery; lungs, heart and mediastinal tissue in the
thoracic cavity). A structure too small for the grid keeps the voxel nearest its centre.

CT. Air -1000 HU, subcutaneous fat -100, muscle 45, lung -850, blood and heart 40, liver 60,
kidney 30, cartilage 150, bone cortex 750-1200 around a 250 HU marrow core, air in the airway
lumens and the gastric fundus, plus Gaussian noise of 6 HU; int16 within [-1024, 3071].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

import numpy as np

from catalog.taxonomy import SYSTEMS, load_taxonomy

__all__ = [
    "DEFAULT_FOV_MM",
    "BoxMask",
    "Phantom",
    "PhantomGeometry",
    "box_mask",
    "make_phantom",
    "voxel_spacing",
]

DEFAULT_FOV_MM: tuple[float, float, float] = (560.0, 400.0, 800.0)
"""Field of view (x, y, z) in mm: shoulders and arms, chest depth, skull base to proximal femurs."""

Pred = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
Point = tuple[float, float, float]

# ---------------------------------------------------------------------------------------------
# Public types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhantomGeometry:
    """Ground-truth geometry a phantom is built with (mm and degrees).

    How each value is realised, exactly, so a measurement module can be verified against it:

    - ``thoracic_width_mm``: the thoracic cavity's cross-section at height z is the superellipse
      ``|x / a(z)|**3 + |(y - y0(z)) / b(z)|**3 <= 1`` centred on the midline x = 0, with
      ``a(z) = thoracic_width_mm / 2`` over the whole lower thorax (from the costophrenic recesses
      up to the bottom of T7) and tapering above it to the apex. The cavity mask (which contains
      the lungs, heart and mediastinum) therefore spans exactly ``|x| <= thoracic_width_mm / 2``
      at its widest: its left-right extent is ``thoracic_width_mm`` (within one voxel), and so
      is that of the two lungs' outer edges.
    - ``heart_width_mm``: the heart (the union of atria, ventricles and myocardium) is an
      axis-aligned ellipsoid with x semi-axis ``heart_width_mm / 2`` (clipped by the cavity,
      which never reaches its lateral extremes), centred left of the midline. Its left-right
      extent is ``heart_width_mm`` (within one voxel), and the analytic cardiothoracic ratio is
      ``heart_width_mm / thoracic_width_mm`` (``cardiothoracic_ratio``).
    - ``kyphosis_deg``: in the sagittal plane (y against z) the centreline of the vertebral
      bodies from the top of T1 to the bottom of T12 (a vertical chord of length
      L = 282 mm, twelve levels of equal height) is a circular arc, convex posteriorly, whose
      tangents at the two ends differ by exactly ``kyphosis_deg``: radius
      ``R = L / (2 sin(kyphosis / 2))``, sagitta ``R (1 - cos(kyphosis / 2))``. Each vertebra
      is one cross-section translated (sheared, not rotated) along the centreline slice by
      slice, so the T1..T12 centroids lie, up to voxelisation, on that arc shifted by a
      constant offset: a circle fitted to them has radius R, the tangents at the T1 and T12
      centroids differ by ``2 asin(11/12 sin(kyphosis / 2))`` (about 11/12 of the angle), and
      the fitted arc extrapolated to the end plates gives ``kyphosis_deg``. The cervical and
      lumbar segments bend back smoothly (lordosis) to a vertical tangent at C1 and below L6.
    - ``scoliosis_deg``: the same construction in the frontal plane (x against z) over T1..T12:
      a circular arc whose end tangents differ by ``|scoliosis_deg|``. Positive values are
      convex to the patient's RIGHT (the apex at larger x, larger i), negative to the left,
      0 is straight (every vertebral centroid at the same x). Cervical and lumbar segments
      curve back (compensatory curves) to vertical at C1 and at the bottom of L6.

    The seed of ``make_phantom`` never changes these values; it varies organ positions and sizes
    by a few per cent and the CT noise.
    """

    heart_width_mm: float = 130.0
    thoracic_width_mm: float = 280.0
    scoliosis_deg: float = 0.0
    kyphosis_deg: float = 35.0

    def __post_init__(self) -> None:
        for name in ("heart_width_mm", "thoracic_width_mm", "scoliosis_deg", "kyphosis_deg"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)!r}.")
        if not 200.0 <= self.thoracic_width_mm <= 320.0:
            raise ValueError(
                f"thoracic_width_mm must be between 200 and 320 mm, got {self.thoracic_width_mm}."
            )
        if not 0.3 <= self.cardiothoracic_ratio <= 0.8:
            raise ValueError(
                "heart_width_mm / thoracic_width_mm (the cardiothoracic ratio) must be between "
                f"0.3 and 0.8, got {self.cardiothoracic_ratio:.3f}."
            )
        if not 0.0 <= self.kyphosis_deg <= 80.0:
            raise ValueError(f"kyphosis_deg must be between 0 and 80, got {self.kyphosis_deg}.")
        if abs(self.scoliosis_deg) > 80.0:
            raise ValueError(f"scoliosis_deg must be between -80 and 80, got {self.scoliosis_deg}.")

    @property
    def cardiothoracic_ratio(self) -> float:
        """The analytic cardiothoracic ratio, heart width over inner thoracic width."""
        return self.heart_width_mm / self.thoracic_width_mm


@dataclass(frozen=True, eq=False)
class BoxMask:
    """A 3D boolean mask stored as its tight bounding box: voxels origin..origin+data.shape."""

    origin: tuple[int, int, int]
    data: np.ndarray  # bool, tight (every face of the box touches a True voxel); empty: (0, 0, 0)

    @property
    def voxels(self) -> int:
        """Number of True voxels."""
        return int(np.count_nonzero(self.data))

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """Where the box sits in the full volume."""
        return tuple(slice(o, o + n) for o, n in zip(self.origin, self.data.shape, strict=True))  # type: ignore[return-value]

    def to_dense(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The mask as a full boolean volume of ``shape``."""
        out = np.zeros(shape, dtype=bool)
        if self.data.size:
            out[self.slices] = self.data
        return out


def box_mask(dense: np.ndarray) -> BoxMask:
    """Crop a dense boolean volume to its tight bounding box."""
    return _tight((0, 0, 0), np.asarray(dense, dtype=bool))


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
        leaves = _leaves_of(name)
        if leaves == (name,):
            return self._leaves[name]
        return _union([self._leaves[leaf] for leaf in leaves])


# ---------------------------------------------------------------------------------------------
# Boxes and rasterisation
# ---------------------------------------------------------------------------------------------

_CHUNK = 1 << 21  # voxels evaluated at once: bounds float64 temporaries to a few tens of MB
_EMPTY = np.zeros((0, 0, 0), dtype=bool)


def voxel_spacing(
    shape: tuple[int, int, int], fov_mm: tuple[float, float, float] = DEFAULT_FOV_MM
) -> tuple[float, float, float]:
    """mm per voxel along i, j, k of a phantom of ``shape`` over ``fov_mm``."""
    return tuple(float(f) / n for f, n in zip(fov_mm, shape, strict=True))  # type: ignore[return-value]


class _Grid:
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


def _dense(pred: Pred, grid: _Grid, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Evaluate a pointwise predicate on every voxel of the box [a, b), a few slices at a time."""
    out = np.empty(tuple(b - a), dtype=bool)
    x = grid.x[a[0] : b[0], None, None]
    y = grid.y[None, a[1] : b[1], None]
    step = max(1, _CHUNK // int(out.shape[0] * out.shape[1]))
    for k in range(a[2], b[2], step):
        end = min(k + step, b[2])
        out[:, :, k - a[2] : end - a[2]] = pred(x, y, grid.z[None, None, k:end])
    return out


def _keep_where(mask: np.ndarray, grid: _Grid, a: np.ndarray, test: Pred) -> None:
    """Clear the True voxels of ``mask`` (a box at index ``a``) where ``test`` fails."""
    step = max(1, _CHUNK // max(1, mask.shape[0] * mask.shape[1]))
    for k in range(0, mask.shape[2], step):
        sub = mask[:, :, k : k + step]
        ii, jj, kk = np.nonzero(sub)
        if ii.size == 0:
            continue
        x, y, z = grid.x[a[0] + ii], grid.y[a[1] + jj], grid.z[a[2] + k + kk]
        bad = ~np.broadcast_to(test(x, y, z), ii.shape)
        sub[ii[bad], jj[bad], kk[bad]] = False


def _tight(origin: tuple[int, int, int] | np.ndarray, data: np.ndarray) -> BoxMask:
    """Crop ``data`` (placed at ``origin``) to the bounding box of its True voxels."""
    spans = []
    for axis in range(3):
        hit = np.flatnonzero(data.any(axis=tuple(i for i in range(3) if i != axis)))
        if hit.size == 0:
            return BoxMask((0, 0, 0), _EMPTY)
        spans.append((int(hit[0]), int(hit[-1]) + 1))
    crop = data[tuple(slice(s, e) for s, e in spans)]
    return BoxMask(tuple(int(o) + s for o, (s, _) in zip(origin, spans, strict=True)), crop)  # type: ignore[arg-type]


def _overlap(p: BoxMask, q: BoxMask) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """The slices of p's and q's data covering the intersection of their boxes, if any."""
    lo = np.maximum(p.origin, q.origin)
    hi = np.minimum(np.add(p.origin, p.data.shape), np.add(q.origin, q.data.shape))
    if np.any(hi <= lo):
        return None
    sp = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, p.origin, strict=True))
    sq = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, q.origin, strict=True))
    return sp, sq


def _union(parts: list[BoxMask]) -> BoxMask:
    """OR of non-empty masks in their common bounding box (tight when the parts are tight)."""
    parts = [p for p in parts if p.data.size]
    if not parts:
        return BoxMask((0, 0, 0), _EMPTY)
    lo = np.min([p.origin for p in parts], axis=0)
    hi = np.max([np.add(p.origin, p.data.shape) for p in parts], axis=0)
    out = np.zeros(tuple(hi - lo), dtype=bool)
    for p in parts:
        out[
            tuple(
                slice(int(o - a), int(o - a) + n)
                for o, a, n in zip(p.origin, lo, p.data.shape, strict=True)
            )
        ] |= p.data
    return BoxMask(tuple(int(v) for v in lo), out)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Shapes: conservative world bounds, a pointwise test, an interior anchor
# ---------------------------------------------------------------------------------------------


class _Shape:
    """A solid in world mm. ``inside`` broadcasts over x, y, z arrays."""

    lo: np.ndarray
    hi: np.ndarray
    anchor: np.ndarray  # a point meant to be inside: the voxel kept if the solid misses the grid

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def raster(self, grid: _Grid, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _dense(self.inside, grid, a, b)


class _Region(_Shape):
    """An implicit solid given by a predicate and its bounds."""

    def __init__(self, fn: Pred, lo, hi, anchor) -> None:
        self.fn, self.lo, self.hi = fn, np.asarray(lo, float), np.asarray(hi, float)
        self.anchor = np.asarray(anchor, float)

    def inside(self, x, y, z):
        return self.fn(x, y, z)


class _Ellipsoid(_Shape):
    """Ellipsoid with semi-axes ``radii`` along the columns of ``rot`` (identity by default)."""

    def __init__(self, center, radii, rot: np.ndarray | None = None) -> None:
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


class _Tube(_Shape):
    """Union of tapered capsules along a polyline (radius interpolated along each segment)."""

    def __init__(self, points, radii) -> None:
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

    def raster(self, grid, a, b):
        # each segment only over its own small box: a diagonal tube's box is mostly empty
        out = np.zeros(tuple(b - a), dtype=bool)
        for s in range(len(self.p) - 1):
            rad = max(self.r[s], self.r[s + 1])
            lo = np.minimum(self.p[s], self.p[s + 1]) - rad
            hi = np.maximum(self.p[s], self.p[s + 1]) + rad
            _or_into(
                out, a, b, grid, lo, hi, lambda g, sa, sb, s=s: _dense(self._segment(s), g, sa, sb)
            )
        return out


class _Union(_Shape):
    """Union of shapes, each rasterised over its own box."""

    def __init__(self, *parts: _Shape, anchor=None) -> None:
        self.parts = parts
        self.lo = np.min([p.lo for p in parts], axis=0)
        self.hi = np.max([p.hi for p in parts], axis=0)
        self.anchor = parts[0].anchor if anchor is None else np.asarray(anchor, float)

    def inside(self, x, y, z):
        out = False
        for p in self.parts:
            out = out | p.inside(x, y, z)
        return out

    def raster(self, grid, a, b):
        out = np.zeros(tuple(b - a), dtype=bool)
        for p in self.parts:
            _or_into(out, a, b, grid, p.lo, p.hi, p.raster)
        return out


class _Where(_Shape):
    """``base`` clipped to ``keep``; ``keep`` is only tested on base's voxels (cheap for tubes)."""

    def __init__(self, base: _Shape, keep: _Shape, anchor=None) -> None:
        self.base, self.keep = base, keep
        self.lo, self.hi = np.maximum(base.lo, keep.lo), np.minimum(base.hi, keep.hi)
        self.anchor = base.anchor if anchor is None else np.asarray(anchor, float)

    def inside(self, x, y, z):
        return self.base.inside(x, y, z) & self.keep.inside(x, y, z)

    def raster(self, grid, a, b):
        out = self.base.raster(grid, a, b)
        _keep_where(out, grid, a, self.keep.inside)
        return out


class _Minus(_Shape):
    """``base`` without ``hole``, each rasterised with its own (sparse) method."""

    def __init__(self, base: _Shape, hole: _Shape, anchor) -> None:
        self.base, self.hole = base, hole
        self.lo, self.hi, self.anchor = base.lo, base.hi, np.asarray(anchor, float)

    def inside(self, x, y, z):
        return self.base.inside(x, y, z) & ~self.hole.inside(x, y, z)

    def raster(self, grid, a, b):
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


def _se3(u, v):
    """Inside the superellipse |u|^3 + |v|^3 <= 1 (a rounded-rectangle body cross-section)."""
    u2, v2 = u * u, v * v
    return u2 * np.sqrt(u2) + v2 * np.sqrt(v2) <= 1.0


def _region(fn: Pred, shape: _Shape, anchor=None) -> _Region:
    """A predicate bounded like ``shape``."""
    return _Region(fn, shape.lo, shape.hi, shape.anchor if anchor is None else anchor)


# ---------------------------------------------------------------------------------------------
# The spine
# ---------------------------------------------------------------------------------------------

Y_SPINE = -55.0  # y of the vertebral-body centre at the ends of the thoracic arc
Z_C1_TOP = 355.0
_HEIGHTS = {"cervical": 15.0, "thoracic": 23.5, "lumbar": 31.0, "sacral": 40.0}
_COUNTS = {"cervical": 7, "thoracic": 12, "lumbar": 6, "sacral": 1}


class _Section(NamedTuple):
    """Half-sizes (mm) of a vertebra's cross-section in its region of the spine."""

    body_rx: float
    body_ry: float
    canal_rx: float
    canal_ry: float
    ring: float  # thickness of the posterior arch around the canal
    spinous: float  # posterior length of the spinous process
    transverse: float  # half-span of the transverse processes (alae for S1)
    transverse_ry: float  # half-thickness of the transverse processes
    disc: float  # gap between vertebrae


_SECTIONS = {
    "cervical": _Section(10.0, 8.0, 11.0, 7.0, 4.0, 16.0, 24.0, 4.0, 3.0),
    "thoracic": _Section(15.0, 13.0, 9.0, 8.0, 5.0, 24.0, 34.0, 5.0, 4.0),
    "lumbar": _Section(22.0, 16.0, 11.0, 8.0, 6.0, 26.0, 38.0, 6.0, 7.0),
    "sacral": _Section(26.0, 18.0, 12.0, 6.0, 7.0, 14.0, 55.0, 14.0, 4.0),
}


def _vertebra_name(region: str, n: int) -> str:
    letter = region[0]
    label = {"cervical": "cervical", "thoracic": "thoracic", "lumbar": "lumbar", "sacral": "sacral"}
    return f"{label[region]} vertebrae {n} ({letter}{n})"


class _Spine:
    """Spinal centreline (x(z), y(z)) and the vertebral levels, in mm."""

    def __init__(self, kyphosis_deg: float, scoliosis_deg: float) -> None:
        self.levels: list[tuple[str, str, float, float]] = []  # name, region, z_lo, z_hi
        z = Z_C1_TOP
        for region in ("cervical", "thoracic", "lumbar", "sacral"):
            for n in range(1, _COUNTS[region] + 1):
                self.levels.append((_vertebra_name(region, n), region, z - _HEIGHTS[region], z))
                z -= _HEIGHTS[region]
        self.z_head = Z_C1_TOP
        self.z_top = Z_C1_TOP - 7 * _HEIGHTS["cervical"]  # top of T1
        self.z_bot = self.z_top - 12 * _HEIGHTS["thoracic"]  # bottom of T12
        self.z_tail = self.z_bot - 6 * _HEIGHTS["lumbar"]  # bottom of L6
        self.z_end = self.z_tail - _HEIGHTS["sacral"]  # bottom of S1
        self.kyphosis = math.radians(kyphosis_deg)
        self.scoliosis = math.radians(abs(scoliosis_deg))
        self.side = 1.0 if scoliosis_deg >= 0 else -1.0

    def level(self, name: str) -> tuple[float, float]:
        """(z_lo, z_hi) of a vertebra."""
        for level, _, lo, hi in self.levels:
            if level == name:
                return lo, hi
        raise KeyError(name)

    def thoracic_mid(self, n: int) -> float:
        lo, hi = self.level(_vertebra_name("thoracic", n))
        return (lo + hi) / 2

    def bend(self, z, angle: float):
        """Offset from the chord: a circular arc of central angle ``angle`` over T1..T12, with
        cubic tails over the cervical and lumbar spine that leave the arc's end tangent and
        return to zero offset with a vertical tangent (so the curve is C1-continuous)."""
        z = np.asarray(z, dtype=float)
        if angle == 0.0:
            return np.zeros_like(z)
        half = (self.z_top - self.z_bot) / 2
        radius = half / math.sin(angle / 2)
        dz = np.clip(z - (self.z_top + self.z_bot) / 2, -half, half)
        arc = np.sqrt(radius * radius - dz * dz) - radius * math.cos(angle / 2)
        slope = math.tan(angle / 2)  # |d offset / dz| at both ends of the arc
        up_len, down_len = self.z_head - self.z_top, self.z_bot - self.z_tail
        d_up = np.clip(z - self.z_top, 0.0, up_len)
        d_down = np.clip(self.z_bot - z, 0.0, down_len)
        neck = -slope * d_up * (1 - d_up / up_len) ** 2
        loin = -slope * d_down * (1 - d_down / down_len) ** 2
        return np.where(z > self.z_top, neck, np.where(z < self.z_bot, loin, arc))

    def center(self, z):
        """(x, y) of the vertebral-body centre at height z: kyphosis bulges posteriorly (-y),
        scoliosis toward the convex side."""
        x = self.side * self.bend(z, self.scoliosis)
        y = Y_SPINE - self.bend(z, self.kyphosis)
        return x, y

    def section(self, z) -> _Section:
        """The cross-section in force at height z (each field an array shaped like z)."""
        z = np.asarray(z, dtype=float)
        conds = [z >= self.z_top, z >= self.z_bot, z >= self.z_tail]
        regions = ("cervical", "thoracic", "lumbar", "sacral")
        fields = zip(*(_SECTIONS[r] for r in regions), strict=True)
        return _Section(*(np.select(conds, list(vals[:3]), vals[3]) for vals in fields))

    def sweep_bounds(self, z_lo: float, z_hi: float, reach_x: float, y_lo: float, y_hi: float):
        """World bounds of a cross-section (x within +-reach_x, y within y_lo..y_hi of the
        centre) swept along the centreline between two heights."""
        zs = np.linspace(z_lo, z_hi, 65)
        xc, yc = self.center(zs)
        lo = (xc.min() - reach_x - 2, yc.min() + y_lo - 2, z_lo)
        hi = (xc.max() + reach_x + 2, yc.max() + y_hi + 2, z_hi)
        return lo, hi


# ---------------------------------------------------------------------------------------------
# Layout: the body's profiles and landmarks
# ---------------------------------------------------------------------------------------------


class _Jitter:
    """Small seeded variations, drawn in a fixed order so a seed always gives the same body."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def scale(self, rel: float) -> float:
        return 1.0 + rel * float(self.rng.uniform(-1.0, 1.0))

    def point(self, p, mm: float = 3.0) -> np.ndarray:
        return np.asarray(p, float) + self.rng.uniform(-mm, mm, 3)


_Y_ANT = (
    (-60.0, 60.0),
    (0.0, 66.0),
    (60.0, 68.0),
    (120.0, 62.0),
    (180.0, 52.0),
    (230.0, 40.0),
    (270.0, 30.0),
)
_FRONT = (
    (-400.0, 72.0),
    (-330.0, 86.0),
    (-250.0, 100.0),
    (-150.0, 106.0),
    (-60.0, 98.0),
    (0.0, 92.0),
    (60.0, 94.0),
    (120.0, 88.0),
    (180.0, 78.0),
    (230.0, 66.0),
    (250.0, 58.0),
    (264.0, 40.0),
    (275.0, 20.0),
    (286.0, 48.0),
    (300.0, 70.0),
    (400.0, 72.0),
)
_BACK = (
    (-400.0, -80.0),
    (250.0, -80.0),
    (264.0, -58.0),
    (292.0, -58.0),
    (305.0, -72.0),
    (400.0, -72.0),
)


def _interp(z, table) -> np.ndarray:
    zs, vs = zip(*table, strict=True)
    return np.interp(z, zs, vs)


class _Layout:
    """Derived landmarks and profile functions (world mm) shared by the anatomy builders."""

    def __init__(self, geometry: PhantomGeometry, jit: _Jitter, skin_mm: float) -> None:
        self.geometry = geometry
        self.spine = _Spine(geometry.kyphosis_deg, geometry.scoliosis_deg)
        self.A = geometry.thoracic_width_mm / 2
        self.k = self.A / 140.0  # lateral scale of the abdomen with the chest
        self.skin = skin_mm
        self.fat = max(10.0, skin_mm + 4.0)
        sp = self.spine
        self.z_apex = sp.z_top + 15.0
        self.z_wide = sp.level(_vertebra_name("thoracic", 7))[0]
        self.z_cpa = sp.z_bot - 8.0  # costophrenic recesses: the cavity's lowest point
        self.z_dome_r = sp.thoracic_mid(10) + 5.0
        self.z_dome_l = self.z_dome_r - 15.0
        self.y_ref, self.b_ref = (float(v) for v in self.frame(self.z_dome_r))
        self.z_carina = sp.level(_vertebra_name("thoracic", 4))[0]
        self.heart = _Heart(self, jit)

    # -- thoracic cavity ------------------------------------------------------------------
    def a_cav(self, z):
        """Half-width of the thoracic cavity: constant up to z_wide, elliptic taper to the apex."""
        t = np.clip((np.asarray(z, float) - self.z_wide) / (self.z_apex - self.z_wide), 0.0, 1.0)
        return self.A * np.sqrt(1.0 - t * t)

    def da_cav(self, z):
        """d a_cav / dz (capped near the apex, where it diverges)."""
        t = np.clip((np.asarray(z, float) - self.z_wide) / (self.z_apex - self.z_wide), 0.0, 0.98)
        return -self.A * t / (np.sqrt(1.0 - t * t) * (self.z_apex - self.z_wide))

    def y_ant(self, z):
        """y of the inner anterior chest wall (behind the sternum)."""
        return _interp(z, _Y_ANT)

    def y_post(self, z):
        """y of the cavity's posterior wall: it follows the spine, 30 mm behind the bodies."""
        return self.spine.center(z)[1] - 30.0

    def frame(self, z):
        """(y centre, half-depth) of the cavity cross-section at height z."""
        ya, yp = self.y_ant(z), self.y_post(z)
        return (ya + yp) / 2, (ya - yp) / 2

    def z_dia(self, x, y):
        """Height of the diaphragm: two domes (right higher) over the costophrenic level."""

        def dome(xp, top):
            q = ((x - xp) / (0.62 * self.A)) ** 2 + (
                (y - self.y_ref - 0.15 * self.b_ref) / (0.95 * self.b_ref)
            ) ** 2
            return self.z_cpa + (top - self.z_cpa) * np.clip(1.0 - q, 0.0, None)

        return np.maximum(dome(0.45 * self.A, self.z_dome_r), dome(-0.45 * self.A, self.z_dome_l))

    def notch(self, x, y, z):
        """The spine and its gutters, which the cavity wraps around."""
        xc, yc = self.spine.center(z)
        return (np.abs(x - xc) < 40.0) & (y < yc + self.spine.section(z).body_ry + 3.0)

    def cavity(self, x, y, z):
        y0, b = self.frame(z)
        a = np.maximum(self.a_cav(z), 1e-6)
        inside = _se3(x / a, (y - y0) / b) & (z <= self.z_apex) & (z >= self.z_dia(x, y))
        return inside & ~self.notch(x, y, z)

    def cavity_bounds(self):
        zs = np.linspace(self.z_cpa, self.z_apex, 64)
        lo = (-self.A, float(self.y_post(zs).min()), self.z_cpa)
        hi = (self.A, float(self.y_ant(zs).max()), self.z_apex)
        return lo, hi

    def cage(self, theta, z, offset):
        """A point on the cavity outline at angle theta (0 lateral, +pi/2 anterior), pushed
        outward by ``offset`` mm (more where the wall slopes, to stay outside in 3D)."""
        y0, b = self.frame(z)
        grow = offset * np.sqrt(1.0 + self.da_cav(z) ** 2)
        c, s = np.cos(theta), np.sin(theta)
        cs = np.sign(c) * np.abs(c) ** (2 / 3)
        sn = np.sign(s) * np.abs(s) ** (2 / 3)
        return (self.a_cav(z) + grow) * cs, y0 + (b + grow) * sn

    def cage_front(self, x, z, offset):
        """y of the cavity outline's anterior side at lateral position x, pushed out by offset."""
        y0, b = self.frame(z)
        a = self.a_cav(z) + offset
        u = np.clip(np.abs(x) / a, 0.0, 1.0)
        return y0 + (b + offset) * np.cbrt(1.0 - u**3)

    # -- midline structures -----------------------------------------------------------------
    def xt(self, z):
        """x of the trachea / mediastinal midline: halfway toward the spine's lateral shift."""
        return 0.5 * self.spine.center(z)[0]

    def yt(self, z):
        """y of the trachea's axis, a fixed distance in front of the vertebral bodies."""
        return self.spine.center(z)[1] + 46.0

    def by_trachea(self, dx: float, dy: float, z: float) -> Point:
        """A point offset from the tracheal axis at height z (neck and mediastinum)."""
        return (float(self.xt(z)) + dx, float(self.yt(z)) + dy, z)

    def by_spine(self, dx: float, dy: float, z: float) -> Point:
        """A point offset from the vertebral-body centre at height z (retroperitoneum)."""
        xc, yc = self.spine.center(z)
        return (float(xc) + dx, float(yc) + dy, z)

    def band(self, x, y, z):
        """The central mediastinal band between the lungs."""
        w = _interp(z, ((-60.0, 16.0), (20.0, 16.0), (100.0, 20.0), (160.0, 26.0), (270.0, 20.0)))
        return np.abs(x - self.xt(z)) < w

    # -- body surface -----------------------------------------------------------------------
    def torso_w(self, z):
        a = self.A
        table = (
            (-400.0, 158.0),
            (-330.0, 168.0),
            (-250.0, 160.0),
            (-170.0, 0.88 * a + 26),
            (-60.0, a + 32),
            (150.0, a + 32),
            (215.0, a + 36),
            (248.0, a + 28),
            (262.0, 0.45 * a + 22),
            (272.0, 62.0),
            (292.0, 62.0),
            (305.0, 76.0),
            (400.0, 80.0),
        )
        return _interp(z, table)

    def torso(self, x, y, z, off: float = 0.0):
        """Inside the torso, grown by ``off`` mm (negative: an inner offset surface)."""
        xc, yc = self.spine.center(z)
        front, back = _interp(z, _FRONT), yc + _interp(z, _BACK)
        x0 = xc * np.clip((z - 250.0) / 15.0, 0.0, 1.0)  # the neck follows the cervical spine
        half_d = (front - back) / 2 + off
        return _se3((x - x0) / (self.torso_w(z) + off), (y - (front + back) / 2) / half_d)

    def torso_bounds(self):
        zs = np.linspace(-420.0, 420.0, 169)
        _, yc = self.spine.center(zs)
        w = float(self.torso_w(zs).max()) + 20
        lo = (-w, float((yc + _interp(zs, _BACK)).min()), -1e4)  # the body runs past the FOV
        hi = (w, float(_interp(zs, _FRONT).max()), 1e4)
        return lo, hi

    def shoulder_y(self) -> float:
        return float(self.frame(226.0)[0])

    def abdomen(self, x, y, z):
        """The abdominopelvic cavity: inside the muscular wall, below the diaphragm, in front of
        the spine and paraspinal muscles, above the pelvic floor."""
        xc, yc = self.spine.center(z)
        block = (np.abs(x - xc) < 50.0) & (y < yc + 18.0)
        below = (z <= self.z_dia(x, y) - 4.0) & (z >= -345.0)
        return self.torso(x, y, z, -(self.fat + 15.0)) & below & ~block


_CHAMBERS = {  # (is an atrium, is on the right) of each chamber
    "right heart atrium": (True, True),
    "left heart atrium": (True, False),
    "right heart ventricle": (False, True),
    "left heart ventricle": (False, False),
}


class _Heart:
    """The heart envelope (an axis-aligned ellipsoid) and its partition into chambers."""

    def __init__(self, lay: _Layout, jit: _Jitter) -> None:
        g = lay.geometry
        w = g.heart_width_mm / 2
        z_floor = float(lay.z_dia(np.float64(-0.1 * w), np.float64(lay.y_ref)))
        az = min(0.44 * g.heart_width_mm, 78.0) * jit.scale(0.03)
        cz = z_floor + 0.8 * az
        front = float(lay.y_ant(cz)) - 4.0
        back = float(lay.spine.center(cz)[1]) + 36.0  # just in front of the esophagus
        ay = min(0.36 * g.heart_width_mm, (front - back) / 2) * jit.scale(0.03)
        cy = front - ay
        # both lateral extremes (at y = cy, z = cz) stay >= 3 mm inside the cavity
        y0, b = (float(v) for v in lay.frame(cz))
        room = float(lay.a_cav(cz)) * (1.0 - abs((cy - y0) / b) ** 3) ** (1 / 3) - 3.0 - w
        if room < 0:
            raise ValueError("The heart does not fit in the thoracic cavity; lower the CTR.")
        cx = -min(0.3 * w * jit.scale(0.1), room)
        self.c = np.array([cx, cy, cz])
        self.r = np.array([w, ay, az])
        self.wall = 0.14 * w
        # ventricles lie anterior-inferior-left of the atrioventricular plane, the right
        # chambers anterior-right of the septal plane (both planes through the centre)
        self.n_av = np.array([-0.35, 0.75, -0.55]) / np.linalg.norm([-0.35, 0.75, -0.55])
        self.n_sep = np.array([0.6, 0.75, 0.25]) / np.linalg.norm([0.6, 0.75, 0.25])
        self.lay = lay

    @property
    def top(self) -> float:
        return float(self.c[2] + self.r[2])

    def at(self, u: float, v: float, w: float) -> Point:
        """A point given in units of the semi-axes from the centre."""
        p = self.c + self.r * np.array([u, v, w])
        return (float(p[0]), float(p[1]), float(p[2]))

    def env(self, x, y, z, off: float = 0.0):
        r = self.r + off
        dx, dy, dz = (x - self.c[0]) / r[0], (y - self.c[1]) / r[1], (z - self.c[2]) / r[2]
        return dx * dx + dy * dy + dz * dz <= 1.0

    def _side(self, normal, x, y, z):
        return (
            (x - self.c[0]) * normal[0] + (y - self.c[1]) * normal[1] + (z - self.c[2]) * normal[2]
        )

    def part(self, name: str) -> Pred:
        """Predicate of one heart leaf; the five leaves partition the envelope (in the cavity)."""

        def fn(x, y, z):
            solid = self.env(x, y, z) & self.lay.cavity(x, y, z)
            av, sep = self._side(self.n_av, x, y, z), self._side(self.n_sep, x, y, z)
            septum = (np.abs(sep) < self.wall / 2) & (av >= 0)  # interventricular only
            lumen = self.env(x, y, z, -self.wall) & ~septum
            if name == "myocardium":
                return solid & ~lumen
            atrium, right = _CHAMBERS[name]
            return solid & lumen & ((av < 0) == atrium) & ((sep > 0) == right)

        return fn


# ---------------------------------------------------------------------------------------------
# Anatomy builders: each returns {leaf class: shape}
# ---------------------------------------------------------------------------------------------

_HEART_ANCHORS = {
    "myocardium": (-0.96, 0.0, 0.0),
    "right heart atrium": (0.5, -0.2, 0.2),
    "left heart atrium": (-0.2, -0.5, 0.35),
    "right heart ventricle": (0.25, 0.5, -0.3),
    "left heart ventricle": (-0.45, 0.05, -0.3),
}


def _heart_parts(lay: _Layout) -> dict[str, _Shape]:
    h = lay.heart
    box = _Ellipsoid(h.c, h.r)
    parts: dict[str, _Shape] = {
        name: _region(h.part(name), box, h.at(*uvw)) for name, uvw in _HEART_ANCHORS.items()
    }
    auricle = _Ellipsoid(h.at(-0.5, -0.25, 0.55), 2 * h.r[0] * np.array([0.08, 0.06, 0.07]))
    parts["left auricle of heart"] = _Where(auricle, parts["left heart atrium"])
    shell = _Ellipsoid(h.c, h.r + 3.0)
    parts["heart tissue"] = _region(
        lambda x, y, z: h.env(x, y, z, 3.0) & ~h.env(x, y, z) & lay.cavity(x, y, z),
        shell,
        h.at(0.0, 0.0, 1.0) + np.array([0.0, 0.0, 1.5]),
    )
    return parts


def _spine_parts(lay: _Layout) -> dict[str, _Shape]:
    sp = lay.spine
    parts: dict[str, _Shape] = {}
    for name, region, z_lo, z_hi in sp.levels:
        sec = _SECTIONS[region]
        lo_z, hi_z = z_lo + sec.disc / 2, z_hi - sec.disc / 2
        back = sec.body_ry + 2 * sec.canal_ry + sec.ring + sec.spinous + 1.5
        lo, hi = sp.sweep_bounds(lo_z, hi_z, max(sec.transverse, sec.body_rx), -back, sec.body_ry)
        zm = (lo_z + hi_z) / 2
        anchor = (*(float(v) for v in sp.center(zm)), zm)
        parts[name] = _Region(_vertebra(sp, sec, lo_z, hi_z), lo, hi, anchor)
    reach = max(s.canal_rx for s in _SECTIONS.values())
    lo, hi = sp.sweep_bounds(sp.z_end, sp.z_head, reach, -40.0, 0.0)
    mid = sp.thoracic_mid(6)
    xc, yc = (float(v) for v in sp.center(mid))
    canal_y = yc - (_SECTIONS["thoracic"].body_ry + _SECTIONS["thoracic"].canal_ry + 1.5)
    parts["spinal canal"] = _Region(_canal(sp, 1.0, sp.z_end), lo, hi, (xc, canal_y, mid))
    cord_end = sp.level(_vertebra_name("lumbar", 1))[0]
    lo, hi = sp.sweep_bounds(cord_end, sp.z_head, reach, -40.0, 0.0)
    parts["spinal cord"] = _Region(_canal(sp, 0.55, cord_end), lo, hi, (xc, canal_y, mid))
    return parts


def _vertebra(sp: _Spine, sec: _Section, z_lo: float, z_hi: float) -> Pred:
    """Body, posterior arch, spinous and transverse processes, sheared along the centreline."""
    vc = -(sec.body_ry + sec.canal_ry + 1.5)  # canal centre, behind the body

    def fn(x, y, z):
        xc, yc = sp.center(z)
        u, v = x - xc, y - yc
        body = (u / sec.body_rx) ** 2 + (v / sec.body_ry) ** 2 <= 1.0
        canal = (u / sec.canal_rx) ** 2 + ((v - vc) / sec.canal_ry) ** 2
        ring = (u / (sec.canal_rx + sec.ring)) ** 2 + ((v - vc) / (sec.canal_ry + sec.ring)) ** 2
        back = vc - sec.canal_ry
        spinous = (np.abs(u) <= 3.5) & (v <= back) & (v >= back - sec.ring - sec.spinous)
        transverse = (np.abs(v - vc) <= sec.transverse_ry) & (np.abs(u) <= sec.transverse)
        solid = body | (ring <= 1.0) | spinous | transverse
        return solid & (canal > 1.0) & (z >= z_lo) & (z <= z_hi)

    return fn


def _canal(sp: _Spine, scale: float, z_lo: float) -> Pred:
    """The spinal canal (scale 1) or the cord inside it (scale < 1), from z_lo to C1."""

    def fn(x, y, z):
        xc, yc = sp.center(z)
        s = sp.section(z)
        vc = -(s.body_ry + s.canal_ry + 1.5)
        u, v = (x - xc) / (scale * s.canal_rx), (y - yc - vc) / (scale * s.canal_ry)
        return (u * u + v * v <= 1.0) & (z >= z_lo) & (z <= sp.z_head)

    return fn


_RIB_END_DEG = (62.0, 56.0, 54.0, 52.0, 50.0, 48.0, 46.0, 40.0, 32.0, 22.0, -5.0, -35.0)
_RIB_DROP = (22.0, 45.0, 55.0, 62.0, 68.0, 72.0, 75.0, 75.0, 70.0, 58.0, 32.0, 18.0)
_RIB_RADIUS = (6.0, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.0, 4.5, 4.5)
_STERNAL_Z = (200.0, 162.0, 140.0, 118.0, 97.0, 76.0, 56.0)  # where cartilages 1-7 meet it
_MARGIN = ((30.0, 45.0), (50.0, 30.0), (70.0, 15.0))  # (x, z) where cartilages 8-10 end


def _rib_path(lay: _Layout, n: int, side: float) -> np.ndarray:
    """Centreline of rib n: from the transverse process around the cavity toward the front."""
    sp, r = lay.spine, _RIB_RADIUS[n - 1]
    z0 = sp.thoracic_mid(n) + 4.0
    xc, yc = (float(v) for v in sp.center(z0))
    sec = _SECTIONS["thoracic"]
    start = (xc + side * (sec.transverse - 6.0), yc - (sec.body_ry + sec.canal_ry + 1.5), z0)
    t0, t1 = math.radians(-80.0), math.radians(_RIB_END_DEG[n - 1])
    theta = np.linspace(t0, t1, 18)
    z = z0 - _RIB_DROP[n - 1] * (theta - t0) / (t1 - t0)
    x, y = lay.cage(theta, z, r + 3.5)
    return np.vstack([start, np.column_stack([side * x, y, z])])


def _cartilage_path(lay: _Layout, n: int, side: float, rib_end: np.ndarray) -> np.ndarray:
    """Costal cartilage of rib n (1-10): along the front of the cage to the sternum (1-7) or
    to the costal margin (8-10)."""
    if n <= 7:
        z_end = _STERNAL_Z[n - 1]
        x_end = side * (_sternum_width(z_end) / 2 + 1.0)
    else:
        x_end, z_end = _MARGIN[n - 8]
        x_end = side * x_end * lay.k
    t = np.linspace(0.0, 1.0, 7)
    x = rib_end[0] + (x_end - rib_end[0]) * t
    z = rib_end[2] + (z_end - rib_end[2]) * t
    y = lay.cage_front(x, z, 9.0)
    return np.column_stack([x, y, z])


def _rib_parts(lay: _Layout) -> dict[str, _Shape]:
    parts: dict[str, _Shape] = {}
    cartilages = []
    for side, word in ((-1.0, "left"), (1.0, "right")):
        for n in range(1, 13):
            path = _rib_path(lay, n, side)
            parts[f"{word} rib {n}"] = _Tube(path, _RIB_RADIUS[n - 1])
            if n <= 10:
                cartilages.append(_Tube(_cartilage_path(lay, n, side, path[-1]), 4.5))
    parts["costal cartilage"] = _Union(*cartilages)
    parts["rib cartilage"] = _Union(*cartilages)  # SAT's second name for the same anatomy
    return parts


def _sternum_width(z):
    return _interp(
        z,
        (
            (25.0, 14.0),
            (50.0, 20.0),
            (60.0, 28.0),
            (160.0, 34.0),
            (165.0, 30.0),
            (200.0, 50.0),
            (212.0, 46.0),
        ),
    )


def _sternum_parts(lay: _Layout) -> dict[str, _Shape]:
    def plate(z_lo: float) -> Pred:
        def fn(x, y, z):
            flat = np.abs(y - lay.y_ant(z) - 8.0) <= 6.0
            return (np.abs(x) <= _sternum_width(z) / 2) & flat & (z >= z_lo) & (z <= 212.0)

        return fn

    lo, hi = (-26.0, float(lay.y_ant(212.0)), 25.0), (26.0, float(lay.y_ant(60.0)) + 16.0, 212.0)
    return {
        "sternum": _Region(plate(25.0), lo, hi, (0.0, float(lay.y_ant(110.0)) + 8.0, 110.0)),
        "manubrium of sternum": _Region(
            plate(162.0), lo, hi, (0.0, float(lay.y_ant(190.0)) + 8.0, 190.0)
        ),
    }


def _shoulder_parts(lay: _Layout) -> dict[str, _Shape]:
    a, ysh = lay.A, lay.shoulder_y()
    parts: dict[str, _Shape] = {}
    for side, word in ((-1.0, "left"), (1.0, "right")):
        clavicle = [
            (side * 18.0, float(lay.y_ant(212.0)) + 10.0, 212.0),
            (side * 0.4 * a, float(lay.y_ant(225.0)) + 14.0, 225.0),
            (side * 0.75 * a, float(lay.y_ant(232.0)) + 4.0, 232.0),
            (side * (a + 8.0), ysh + 10.0, 238.0),
            (side * (a + 30.0), ysh + 6.0, 240.0),
        ]
        parts[f"{word} clavicle"] = _Tube(clavicle, 6.5)
        parts[f"{word} scapula"] = _scapula(lay, side)
        head = _Ellipsoid((side * (a + 50.0), ysh, 226.0), (23.0, 23.0, 23.0))
        shaft = _Tube(_arm_axis(lay, side)[1:], [13.0, 11.0])
        parts[f"{word} humerus"] = _Union(head, shaft)
    return parts


def _arm_axis(lay: _Layout, side: float) -> list[Point]:
    """Axis of a raised upper arm: from below the shoulder joint up past the top of the FOV."""
    a, ysh = lay.A, lay.shoulder_y()
    return [
        (side * (a + 54.0), ysh - 4.0, 196.0),
        (side * (a + 52.0), ysh, 244.0),
        (side * (a + 40.0), ysh + 6.0, 440.0),
    ]


def _scapula(lay: _Layout, side: float) -> _Shape:
    """A thin blade lying on the posterolateral cage, a neck, and the glenoid at the shoulder."""
    offset = 5.5 + 3.5 + 5.5 + 12.0  # past the ribs (gap + radius + diameter) and muscle
    theta = math.radians(-48.0)
    x, y = (float(v) for v in lay.cage(theta, 165.0, offset))
    x2, y2 = (float(v) for v in lay.cage(theta + 0.01, 165.0, offset))
    t = np.array([side * (x2 - x), y2 - y, 0.0])
    t /= np.linalg.norm(t)
    normal = np.array([-t[1], t[0], 0.0])
    blade = _Ellipsoid(
        (side * x, y, 165.0), (48.0, 6.0, 66.0), np.column_stack([t, normal, [0, 0, 1]])
    )
    glenoid_c = (side * (lay.A + 12.0), lay.shoulder_y() - 2.0, 226.0)
    glenoid = _Ellipsoid(glenoid_c, (12.0, 16.0, 18.0))
    corner = (side * x + 40.0 * t[0], y + 40.0 * t[1], 205.0)
    return _Union(blade, glenoid, _Tube([corner, glenoid_c], 8.0))


def _head_parts(lay: _Layout) -> dict[str, _Shape]:
    yc = lambda z: float(lay.spine.center(z)[1])  # noqa: E731
    jaw = [
        (-48.0, 40.0, 362.0),
        (-50.0, 40.0, 330.0),
        (-45.0, 52.0, 305.0),
        (-30.0, 80.0, 296.0),
        (0.0, 95.0, 292.0),
    ]
    jaw = jaw + [(-x, y, z) for x, y, z in reversed(jaw[:-1])]
    parts: dict[str, _Shape] = {"mandible": _Tube([(x, yc(z) + y, z) for x, y, z in jaw], 6.0)}
    cheeks = []
    for side, word in ((-1.0, "left"), (1.0, "right")):
        pts = [(side * 30.0, 55.0, 318.0), (side * 33.0, 72.0, 318.0), (side * 27.0, 88.0, 314.0)]
        cheeks.append(_Tube([(x, yc(z) + y, z) for x, y, z in pts], 3.0))
        bone = [(side * 20.0, yc(383.0) + 30.0, 383.0), (side * 44.0, yc(376.0) + 14.0, 376.0)]
        parts[f"{word} eustachian tube bone"] = _Tube(bone, 5.0)
    parts["buccal mucosa"] = _Union(*cheeks)
    return parts


def _pelvic_bone_parts(lay: _Layout) -> dict[str, _Shape]:
    parts: dict[str, _Shape] = {}
    for side, word in ((-1.0, "left"), (1.0, "right")):
        head_c = (side * 90.0, Y_SPINE + 40.0, -322.0)
        head = _Ellipsoid(head_c, (23.0, 23.0, 23.0))
        neck = _Tube([head_c, (side * 120.0, Y_SPINE + 30.0, -345.0)], 14.0)
        shaft = _Tube(
            [(side * 122.0, Y_SPINE + 30.0, -345.0), (side * 118.0, Y_SPINE + 38.0, -430.0)], 15.0
        )
        parts[f"head of {word} femur"] = head
        parts[f"{word} femur"] = _Union(head, neck, shaft)
    return parts


def _lung_parts(lay: _Layout) -> dict[str, _Shape]:
    """Five lobes filling the cavity outside the mediastinum, heart and effusion."""
    h, a = lay.heart, lay.A
    y_post_ref = lay.y_ref - lay.b_ref
    y_ant_ref = lay.y_ref + lay.b_ref

    z_horizontal = 105.0  # the right horizontal fissure (4th costal cartilage)

    def above_oblique(y, z, z_post):
        """In front of / above the oblique fissure: a plane falling from the back at z_post to
        the anterior diaphragm."""
        slope = (-20.0 - z_post) / (y_ant_ref - y_post_ref)
        return (z - z_post) - (y - y_post_ref) * slope >= 0

    def lobe(side: float, part: str) -> Pred:
        z_post = lay.spine.thoracic_mid(4) if side > 0 else lay.spine.thoracic_mid(3)
        effusion = _effusion(lay)

        def fn(x, y, z):
            lung = lay.cavity(x, y, z) & ~lay.band(x, y, z) & ~h.env(x, y, z, 3.0)
            lung &= ~effusion(x, y, z) & ((x - lay.xt(z)) * side > 0)
            front = above_oblique(y, z, z_post)
            if part == "lower":
                return lung & ~front
            if side < 0:
                return lung & front
            return lung & front & ((z >= z_horizontal) == (part == "upper"))

        return fn

    (lo, hi) = lay.cavity_bounds()
    half = {
        1.0: (np.array([-30.0, lo[1], lo[2]]), np.array(hi)),
        -1.0: (np.array(lo), np.array([30.0, hi[1], hi[2]])),
    }
    anchors = {
        "right lung upper lobe": (1.0, "upper", (0.5 * a, lay.y_ref, 190.0)),
        "right lung middle lobe": (1.0, "middle", (0.55 * a, y_ant_ref - 25.0, 60.0)),
        "right lung lower lobe": (1.0, "lower", (0.6 * a, lay.y_ref - 0.4 * lay.b_ref, 20.0)),
        "left lung upper lobe": (-1.0, "upper", (-0.55 * a, lay.y_ref + 0.3 * lay.b_ref, 110.0)),
        "left lung lower lobe": (-1.0, "lower", (-0.6 * a, lay.y_ref - 0.4 * lay.b_ref, 30.0)),
    }
    parts: dict[str, _Shape] = {
        name: _Region(lobe(side, part), *half[side], anchor)
        for name, (side, part, anchor) in anchors.items()
    }
    return parts


def _effusion(lay: _Layout) -> Pred:
    """A dependent (posterior) basal crescent on the right: thickest at the recess, 60 mm tall."""

    def fn(x, y, z):
        depth = 18.0 * (1.0 - (z - lay.z_cpa) / 60.0)
        return (x > lay.xt(z) + 20.0) & (y - lay.y_post(z) < depth) & (z < lay.z_cpa + 60.0)

    return fn


def _thorax_parts(lay: _Layout, jit: _Jitter) -> dict[str, _Shape]:
    a, h = lay.A, lay.heart
    lo, hi = lay.cavity_bounds()
    cavity = _Region(lay.cavity, lo, hi, (0.5 * a, lay.y_ref, 60.0))
    eff = _effusion(lay)
    y_eff = float(lay.y_post(lay.z_cpa + 10.0)) + 9.0
    parts: dict[str, _Shape] = {
        "thoracic cavity": cavity,
        "lung effusion": _Region(
            lambda x, y, z: lay.cavity(x, y, z) & eff(x, y, z),
            (-30.0, lo[1], lo[2]),
            (a, hi[1], lay.z_cpa + 60.0),
            (0.5 * a, y_eff, lay.z_cpa + 10.0),
        ),
        "mediastinal tissue": _Region(
            lambda x, y, z: lay.cavity(x, y, z) & lay.band(x, y, z) & ~h.env(x, y, z, 3.0),
            (-60.0, lo[1], lo[2]),
            (60.0, hi[1], hi[2]),
            (float(lay.xt(200.0)), float(lay.yt(200.0)) + 22.0, 200.0),
        ),
    }
    parts.update(_lung_parts(lay))
    y0 = lay.y_ref
    nodule = _Ellipsoid(jit.point((0.45 * a, y0 + 0.1 * lay.b_ref, 175.0)), 6.0 * jit.scale(0.1))
    tumor = _Ellipsoid(jit.point((-0.62 * a, y0 - 0.35 * lay.b_ref, 45.0)), 14.0 * jit.scale(0.1))
    parts["lung nodule"] = _Where(nodule, parts["right lung upper lobe"])
    parts["lung tumor"] = _Where(tumor, parts["left lung lower lobe"])
    thymus = _Ellipsoid(jit.point((0.0, float(lay.y_ant(185.0)) - 14.0, 185.0)), (24.0, 9.0, 28.0))
    parts["thymus"] = _Where(thymus, cavity)
    return parts


def _airway_parts(lay: _Layout) -> dict[str, _Shape]:
    tr = lay.by_trachea
    zc = lay.z_carina
    trachea = _Tube(
        [tr(0, 0, 268.0), tr(0, 0, 250.0), tr(0, 0, 220.0), tr(0, 0, 190.0), tr(0, 0, zc)], 10.0
    )
    car, yt = tr(0, 0, zc), float(lay.yt(zc))
    right_hub = (38.0, yt - 4.0, zc - 20.0)
    inter = (48.0, yt - 8.0, zc - 45.0)
    left_hub = (-45.0, yt - 8.0, zc - 28.0)
    bronchi = _Union(
        _Tube([car, (22.0, yt - 2.0, zc - 12.0), right_hub], [7.0, 6.5, 6.0]),
        _Tube([right_hub, (55.0, yt, zc - 8.0)], [5.0, 4.5]),
        _Tube([right_hub, inter], [5.5, 5.0]),
        _Tube([inter, (60.0, yt + 12.0, zc - 60.0)], [4.5, 4.0]),
        _Tube([inter, (62.0, yt - 22.0, zc - 80.0)], [5.0, 4.5]),
        _Tube([car, (-25.0, yt - 4.0, zc - 15.0), left_hub], [7.0, 6.0, 5.5]),
        _Tube([left_hub, (-60.0, yt + 4.0, zc - 15.0)], [5.0, 4.5]),
        _Tube([left_hub, (-62.0, yt - 20.0, zc - 70.0)], [5.0, 4.5]),
    )
    sp = lay.spine

    def larynx(z_lo: float, z_hi: float) -> Pred:
        def fn(x, y, z):
            u, v = (x - lay.xt(z)) / 19.0, (y - sp.center(z)[1] - 48.0) / 16.0
            return (u * u + v * v <= 1.0) & (z >= z_lo) & (z <= z_hi)

        return fn

    box = sp.sweep_bounds(268.0, 318.0, 19.0, 32.0, 64.0)
    xi, yi = (float(v) for v in sp.center(280.0))
    esophagus = _esophagus(lay)
    return {
        "trachea": trachea,
        "bronchie": bronchi,
        "larynx": _Region(larynx(268.0, 318.0), *box, tr(0, 2, 300.0)),
        "larynx glottis": _Region(larynx(284.0, 292.0), *box, tr(0, 2, 288.0)),
        "larynx supraglottis": _Region(larynx(292.0, 318.0), *box, tr(0, 2, 305.0)),
        "cricopharyngeal inlet": _Ellipsoid((xi, yi + 24.0, 280.0), (9.0, 7.0, 8.0)),
        "esophagus": esophagus,
        "cervical esophagus": _Where(
            esophagus,
            _Region(lambda x, y, z: z >= sp.z_top, esophagus.lo, esophagus.hi, 0),
            anchor=(float(sp.center(260.0)[0]), float(sp.center(260.0)[1]) + 24.0, 260.0),
        ),
    }


def _esophagus(lay: _Layout) -> _Tube:
    """From the cricopharyngeus down in front of the spine, then left and forward to the cardia."""
    sp = lay.spine
    pts = []
    for z, dx, dy in (
        (272.0, 0.0, 24.0),
        (250.0, 0.0, 24.0),
        (200.0, 4.0, 26.0),
        (150.0, 5.0, 26.0),
        (100.0, 4.0, 27.0),
        (60.0, 0.0, 30.0),
        (10.0, -10.0, 42.0),
        (-15.0, -22.0, 52.0),
        (-32.0, -35.0, 62.0),
    ):
        xc, yc = (float(v) for v in sp.center(z))
        pts.append((xc + dx * (lay.k if z < 60 else 1.0), yc + dy, z))
    return _Tube(pts, 8.5)


def _neck_parts(lay: _Layout) -> dict[str, _Shape]:
    tr = lay.by_trachea
    parts: dict[str, _Shape] = {}
    for side, word in ((-1.0, "left"), (1.0, "right")):
        s = side
        parts[f"{word} thyroid"] = _Ellipsoid(tr(s * 20.0, 4.0, 252.0), (7.5, 9.0, 17.0))
        parts[f"{word} internal carotid artery"] = _Tube(
            [tr(s * 33, -4, 296.0), tr(s * 36, -14, 340.0), tr(s * 30, -20, 388.0)], 3.2
        )
        parts[f"{word} internal jugular vein"] = _Tube(
            [
                tr(s * 46, -26, 388.0),
                tr(s * 47, -22, 330.0),
                tr(s * 47, -12, 300.0),
                tr(s * 46, -6, 250.0),
                tr(s * 46, -5, 242.0),
            ],
            7.0,
        )
    return parts


def _vessel_parts(lay: _Layout) -> dict[str, _Shape]:
    h, a = lay.heart, lay.A

    tr = lay.by_trachea
    sv = lay.by_spine
    asc_z = min(h.top + 15.0, 145.0)
    aorta_pts = [
        h.at(0.1, 0.0, 0.4),
        (8.0, h.c[1] - 0.1 * h.r[1], asc_z),
        (4.0, (h.c[1] + float(lay.yt(160.0))) / 2 + 10.0, 162.0),
        tr(-14, 26, 175.0),
        tr(-30, -2, 168.0),
        sv(-28, 20, 155.0),
        sv(-27, 15, 110.0),
        sv(-22, 20, 30.0),
        sv(-10, 28, -40.0),
        sv(-8, 29, -110.0),
        sv(-6, 29, -168.0),
    ]
    aorta_r = [14.0, 15.0, 14.0, 13.0, 12.5, 12.0, 12.0, 11.5, 11.0, 10.0, 9.5]
    bif = min(h.top + 30.0, 150.0)
    pa_bif = (-12.0, (h.c[1] + float(lay.yt(bif))) / 2, bif)
    rpa = [
        pa_bif,
        (30.0, float(lay.yt(bif)) + 14.0, bif - 4.0),
        (60.0, float(lay.yt(140.0)) + 4.0, 140.0),
        (85.0, float(lay.yt(125.0)) - 4.0, 125.0),
    ]
    t0, t1 = 0.25, 0.7  # the embolus lodges in the distal right pulmonary artery
    clot = [tuple(np.add(rpa[2], np.subtract(rpa[3], rpa[2]) * t)) for t in (t0, t1)]
    parts: dict[str, _Shape] = {
        "aorta": _Tube(aorta_pts, aorta_r),
        "heart ascending aorta": _Tube(aorta_pts[:3], aorta_r[:3]),
        "pulmonary artery": _Union(
            _Tube(
                [h.at(-0.05, 0.55, 0.55), (-18.0, h.c[1] - 0.1 * h.r[1], h.top + 12.0), pa_bif],
                [12.0, 13.0, 12.0],
            ),
            _Tube(rpa, [11.0, 10.0, 9.0, 7.0]),
            _Tube(
                [
                    pa_bif,
                    (-45.0, float(lay.yt(bif)) - 12.0, bif),
                    (-70.0, float(lay.yt(138.0)) - 18.0, 138.0),
                ],
                [11.0, 9.5, 7.0],
            ),
        ),
        "pulmonary embolism": _Tube(clot, [0.55 * (9.0 - 2.0 * t) for t in (t0, t1)]),
        "pulmonary vein": _Union(
            _Tube([(72.0, float(lay.yt(115.0)) - 6.0, 115.0), h.at(-0.1, -0.6, 0.35)], 6.5),
            _Tube([(70.0, float(lay.yt(75.0)) - 14.0, 75.0), h.at(-0.1, -0.65, 0.15)], 6.5),
            _Tube([(-70.0, float(lay.yt(118.0)) - 10.0, 118.0), h.at(-0.3, -0.6, 0.35)], 6.0),
            _Tube([(-68.0, float(lay.yt(78.0)) - 16.0, 78.0), h.at(-0.3, -0.6, 0.1)], 6.0),
        ),
        "superior vena cava": _Tube(
            [tr(26, 28, 190.0), (26.0, h.c[1] - 0.2 * h.r[1], h.top + 5.0), h.at(0.5, -0.15, 0.5)],
            10.0,
        ),
        "inferior vena cava": _Tube(
            [sv(22, 27, -185.0), sv(22, 27, -100.0), sv(24, 30, -40.0), h.at(0.45, -0.25, -0.35)],
            [11.0, 11.5, 12.0, 12.0],
        ),
        "brachiocephalic trunk": _Tube(
            [tr(-6, 28, 180.0), tr(10, 22, 205.0), tr(18, 12, 218.0)], 6.5
        ),
        "left brachiocephalic vein": _Tube(
            [tr(-46, -5, 242.0), tr(-25, 30, 212.0), tr(5, 34, 198.0), tr(26, 28, 190.0)], 6.5
        ),
        "right brachiocephalic vein": _Tube(
            [tr(46, -5, 242.0), tr(30, 18, 212.0), tr(26, 28, 190.0)], 8.0
        ),
        "right subclavian artery": _Tube(
            [
                tr(18, 12, 218.0),
                tr(45, 5, 236.0),
                (0.55 * a + 20.0, float(lay.yt(240.0)), 240.0),
                (a - 12.0, float(lay.yt(216.0)) - 5.0, 216.0),
            ],
            5.0,
        ),
        "left subclavian artery": _Tube(
            [
                tr(-24, 16, 174.0),
                tr(-40, 2, 232.0),
                (-0.55 * a - 20.0, float(lay.yt(240.0)), 240.0),
                (-a + 12.0, float(lay.yt(216.0)) - 5.0, 216.0),
            ],
            5.0,
        ),
        "right common carotid artery": _Tube(
            [tr(18, 12, 218.0), tr(30, 2, 245.0), tr(33, -4, 296.0)], 4.5
        ),
        "left common carotid artery": _Tube(
            [tr(-12, 27, 178.0), tr(-24, 10, 222.0), tr(-33, 0, 250.0), tr(-33, -4, 296.0)], 4.5
        ),
    }
    parts.update(_neck_parts(lay))
    parts.update(_abdominal_vessel_parts(lay))
    return parts


def _abdominal_vessel_parts(lay: _Layout) -> dict[str, _Shape]:
    k, y, sv = lay.k, Y_SPINE, lay.by_spine
    parts: dict[str, _Shape] = {}
    for side, word in ((-1.0, "left"), (1.0, "right")):
        s = side * k
        parts[f"{word} iliac artery"] = _Tube(
            [
                sv(-6, 29, -168.0),
                (s * 40.0, y + 38.0, -215.0),
                (s * 72.0, y + 52.0, -268.0),
                (s * 86.0, y + 76.0, -322.0),
            ],
            [7.0, 7.0, 6.5, 6.0],
        )
        parts[f"{word} iliac vena"] = _Tube(
            [
                sv(22, 27, -185.0),
                (s * 38.0 - 4.0, y + 26.0, -225.0),
                (s * 68.0, y + 40.0, -275.0),
                (s * 72.0, y + 78.0, -325.0),
            ],
            8.0,
        )
    parts["celiac trunk"] = _Tube([sv(-8, 36, -42.0), sv(-5, 58, -48.0)], 4.5)
    parts["renal artery"] = _Union(
        _Tube([sv(-8, 29, -92.0), sv(-48 * k, 10, -96.0)], 3.5),
        _Tube([sv(-8, 29, -92.0), sv(10, 16, -98.0), sv(48 * k, 8, -108.0)], 3.5),
    )
    parts["renal vein"] = _Union(
        _Tube([sv(-48 * k, 14, -92.0), sv(-8, 46, -92.0), sv(14, 32, -94.0)], 5.0),
        _Tube([sv(48 * k, 12, -104.0), sv(26, 24, -98.0)], 5.0),
    )
    parts["portal vein and splenic vein"] = _Tube(
        [
            (-92.0 * k, y + 22.0, -62.0),
            sv(-60 * k, 40, -66.0),
            sv(-30 * k, 44, -72.0),
            sv(5, 48, -84.0),
            sv(25 * k, 56, -68.0),
            (48.0 * k, y + 58.0, -48.0),
        ],
        6.0,
    )
    return parts


def _liver_region(lay: _Layout, jit: _Jitter) -> tuple[_Ellipsoid, Pred]:
    k = lay.k
    shape = _Ellipsoid(
        jit.point((44.0 * k, Y_SPINE + 55.0, -42.0)), (126.0 * k * jit.scale(0.03), 75.0, 72.0)
    )
    sp = lay.spine

    def fn(x, y, z):
        xc, yc = sp.center(z)
        block = (np.abs(x - xc) < 40.0) & (y < yc + 28.0)
        # the left lobe thins toward its tip, above the stomach
        floor = -125.0 + np.clip(20.0 * k - x, 0.0, None) * (85.0 / (100.0 * k))
        solid = shape.inside(x, y, z) & (z >= floor) & (z <= lay.z_dia(x, y) - 4.0)
        return solid & lay.abdomen(x, y, z) & ~block

    return shape, fn


def _liver_parts(lay: _Layout, jit: _Jitter) -> dict[str, _Shape]:
    """The liver's Couinaud segments: planes through the gallbladder fossa (Cantlie line),
    the falciform ligament, the right hepatic vein and the portal bifurcation."""
    k, y = lay.k, Y_SPINE
    box, liver = _liver_region(lay, jit)
    xc, yc = (float(v) for v in lay.spine.center(-45.0))
    caudate = _Ellipsoid((xc + 2.0, yc + 45.0, -45.0), (16.0, 12.0, 25.0))
    x_cantlie, x_falx, y_rhv, z_portal = 18.0 * k, -12.0 * k, y + 48.0, -40.0

    def segment(test: Callable[..., np.ndarray]) -> Pred:
        return lambda x, y, z: liver(x, y, z) & ~caudate.inside(x, y, z) & test(x, y, z)

    left_sup = lambda x, y, z: (z + 35.0) + 0.6 * (y - Y_SPINE - 60.0) > 0  # noqa: E731
    tests = {
        "left lateral superior segment of liver": (
            lambda x, y, z: (x < x_falx) & left_sup(x, y, z),
            (-45.0 * k, y + 55.0, -10.0),
        ),
        "left lateral inferior segment of liver": (
            lambda x, y, z: (x < x_falx) & ~left_sup(x, y, z),
            (-35.0 * k, y + 85.0, -40.0),
        ),
        "left medial segment of liver": (
            lambda x, y, z: (x >= x_falx) & (x < x_cantlie),
            (0.0, y + 75.0, -45.0),
        ),
        "right anterior inferior segment of liver": (
            lambda x, y, z: (x >= x_cantlie) & (y > y_rhv) & (z < z_portal),
            (60.0 * k, y + 75.0, -75.0),
        ),
        "right posterior inferior segment of liver": (
            lambda x, y, z: (x >= x_cantlie) & (y <= y_rhv) & (z < z_portal),
            (95.0 * k, y + 25.0, -80.0),
        ),
        "right posterior superior segment of liver": (
            lambda x, y, z: (x >= x_cantlie) & (y <= y_rhv) & (z >= z_portal),
            (90.0 * k, y + 25.0, -15.0),
        ),
        "right anterior superior segment of liver": (
            lambda x, y, z: (x >= x_cantlie) & (y > y_rhv) & (z >= z_portal),
            (55.0 * k, y + 75.0, -10.0),
        ),
    }
    parts: dict[str, _Shape] = {
        name: _region(segment(test), box, anchor) for name, (test, anchor) in tests.items()
    }
    parts["caudate lobe"] = _region(
        lambda x, y, z: liver(x, y, z) & caudate.inside(x, y, z), caudate
    )
    whole = _region(liver, box)
    tumor = _Ellipsoid(jit.point((85.0 * k, y + 30.0, -25.0)), 13.0 * jit.scale(0.1))
    parts["liver tumor"] = _Where(tumor, whole)
    porta = (55.0 * k, y + 55.0, -42.0)
    hv = (xc + 22.0, yc + 36.0, -22.0)
    vessels = _Union(
        _Tube([porta, (85.0 * k, y + 40.0, -30.0), (100.0 * k, y + 55.0, -45.0)], [5.0, 4.5, 3.5]),
        _Tube([porta, (20.0 * k, y + 70.0, -35.0), (-20.0 * k, y + 75.0, -25.0)], [5.0, 4.5, 3.5]),
        _Tube([hv, (60.0 * k, y + 50.0, 5.0)], [5.0, 3.5]),
        _Tube([hv, (5.0, y + 65.0, 0.0)], [5.0, 3.5]),
        anchor=(85.0 * k, y + 40.0, -30.0),
    )
    parts["liver vessel"] = _Where(vessels, whole)
    return parts


def _abdominal_parts(lay: _Layout, jit: _Jitter) -> dict[str, _Shape]:
    k, y, a = lay.k, Y_SPINE, lay.A

    sv = lay.by_spine

    def ellipsoid(center, radii, rel=0.04) -> _Ellipsoid:
        return _Ellipsoid(jit.point(center), np.asarray(radii) * jit.scale(rel))

    below = _Region(
        lambda x, y, z: (z <= lay.z_dia(x, y) - 4.0) & lay.abdomen(x, y, z),
        (-400.0, -400.0, -400.0),
        (400.0, 400.0, 400.0),
        (0.0, 0.0, 0.0),
    )
    parts: dict[str, _Shape] = {}
    parts["spleen"] = _Where(
        ellipsoid((-(a - 24.0), y - 15.0, -68.0), (20.0 * k, 45.0, 45.0)), below
    )
    fundus = ellipsoid((-62.0 * k, y + 45.0, -12.0), (30.0 * k, 32.0, 26.0))
    body = _Tube(
        [
            (-70.0 * k, y + 62.0, -42.0),
            (-60.0 * k, y + 78.0, -75.0),
            (-25.0 * k, y + 88.0, -98.0),
            (8.0 * k, y + 82.0, -100.0),
            (22.0 * k, y + 72.0, -92.0),
        ],
        [26.0, 24.0, 20.0, 14.0, 11.0],
    )
    parts["stomach"] = _Where(_Union(fundus, body), below, anchor=body.p[1])
    parts["gallbladder"] = ellipsoid((30.0 * k, y + 95.0, -90.0), (14.0, 14.0, 30.0))
    for side, word, z, tilt in ((-1.0, "left", -98.0, 0.2), (1.0, "right", -112.0, -0.2)):
        c = np.array(sv(side * 70.0 * k, 8.0 if side < 0 else 5.0, z))
        rot = np.array(
            [[math.cos(tilt), 0, math.sin(tilt)], [0, 1, 0], [-math.sin(tilt), 0, math.cos(tilt)]]
        )
        kidney = _Ellipsoid(jit.point(c, 2.0), (25.0 * k, 22.0, 52.0), rot)
        parts[f"{word} kidney"] = kidney
        cyst_at = c + (np.array([0.0, -6.0, 26.0]) if side < 0 else np.array([4.0, 0.0, -28.0]))
        parts[f"{word} kidney cyst"] = _Where(_Ellipsoid(cyst_at, 8.0 if side < 0 else 7.0), kidney)
        if side < 0:
            tumor = _Ellipsoid(c + np.array([-6.0, 3.0, -30.0]), 10.0 * jit.scale(0.1))
            parts["kidney tumor"] = _Where(tumor, kidney)
        adrenal = sv(side * 45.0 * k, 12.0 if side < 0 else 10.0, -38.0 if side < 0 else -45.0)
        parts[f"{word} adrenal gland"] = ellipsoid(adrenal, (6.0, 13.0, 17.0))
    pancreas = _Tube(
        [
            sv(32 * k, 62, -110.0),
            sv(20 * k, 66, -92.0),
            sv(0, 68, -80.0),
            sv(-35 * k, 58, -70.0),
            sv(-68 * k, 40, -58.0),
        ],
        [15.0, 13.0, 11.0, 10.0, 9.0],
    )
    parts["pancreas"] = pancreas
    parts["pancreas tumor"] = _Where(
        _Ellipsoid(sv(30 * k, 62, -106.0), 9.0 * jit.scale(0.1)), pancreas
    )
    parts["duodenum"] = _Tube(
        [
            (22.0 * k, y + 70.0, -92.0),
            (45.0 * k, y + 62.0, -100.0),
            sv(55 * k, 40, -125.0),
            sv(50 * k, 42, -150.0),
            sv(10, 58, -160.0),
            sv(-25 * k, 52, -140.0),
            sv(-32 * k, 55, -112.0),
        ],
        13.0,
    )
    parts.update(_bowel_parts(lay, jit))
    parts["prostate"] = _Ellipsoid((0.0, y + 82.0, -372.0), (20.0, 15.0, 17.0))
    return parts


def _bowel_parts(lay: _Layout, jit: _Jitter) -> dict[str, _Shape]:
    k, y = lay.k, Y_SPINE
    colon = [
        (78, 58, -210),
        (86, 55, -160),
        (84, 58, -125),
        (66, 80, -118),
        (35, 108, -128),
        (0, 116, -140),
        (-40, 106, -128),
        (-92, 50, -85),
        (-95, 45, -125),
        (-92, 45, -175),
        (-82, 55, -215),
        (-50, 85, -245),
        (-15, 75, -255),
        (0, 45, -262),
    ]
    radii = [25, 22, 22, 20, 18, 18, 18, 18, 17, 17, 16, 15, 15, 15]
    small = [
        (-60, 82, -152),
        (55, 88, -154),
        (58, 78, -174),
        (-58, 86, -177),
        (-60, 74, -197),
        (55, 84, -199),
        (50, 70, -218),
        (-50, 78, -221),
        (-30, 65, -238),
        (20, 60, -240),
    ]
    to_world = lambda pts: [(x * k, y + dy, z) for x, dy, z in pts]  # noqa: E731
    return {
        "colon": _Tube(to_world(colon), radii),
        "small bowel": _Tube([jit.point(p, 4.0) for p in to_world(small)], 12.0),
        "rectum": _Tube(
            [
                (0.0, y + 45.0, -262.0),
                (0.0, y + 30.0, -300.0),
                (0.0, y + 38.0, -345.0),
                (0.0, y + 55.0, -385.0),
            ],
            17.0,
        ),
    }


def _body_parts(lay: _Layout) -> tuple[dict[str, _Shape], _Shape]:
    """Skin, muscle, breasts and abdominal tissue; also the whole body (painted as fat).

    Surfaces are unions of torso, arms and breasts, each rasterised over its own box: testing
    the arms everywhere in the torso's box would cost most of the phantom's time."""
    a = lay.A
    tlo, thi = lay.torso_bounds()

    def torso(grow: float) -> _Region:
        return _Region(lambda x, y, z: lay.torso(x, y, z, grow), tlo, thi, (0.0, 0.0, 0.0))

    def arms(grow: float) -> list[_Tube]:
        # raised beside the head, as chest CT is acquired: the lateral view of the chest stays clear
        return [_Tube(_arm_axis(lay, s), 40.0 + grow) for s in (-1.0, 1.0)]

    def breasts(grow: float) -> list[_Ellipsoid]:
        z = 50.0
        return [
            _Ellipsoid(
                (s * 0.42 * a, float(_interp(z, _FRONT)) - 10.0, z),
                (48.0 + grow, 28.0 + grow, 45.0 + grow),
            )
            for s in (-1.0, 1.0)
        ]

    def body(grow: float) -> _Union:
        return _Union(torso(grow), *arms(grow), *breasts(grow))

    front = float(_interp(100.0, _FRONT))
    cavity = _Region(lay.cavity, *lay.cavity_bounds(), (0.0, 0.0, 0.0))
    abd_lo, abd_hi = (tlo[0], tlo[1], -345.0), (thi[0], thi[1], lay.z_dome_r)
    abdomen = _Region(lay.abdomen, abd_lo, abd_hi, (0.0, Y_SPINE + 95.0, -180.0))
    parts: dict[str, _Shape] = {
        "skin": _Minus(body(0.0), body(-lay.skin), (0.0, front - lay.skin / 2, 100.0)),
        "muscle": _Minus(
            _Union(torso(-lay.fat), *arms(-lay.fat)),
            _Union(cavity, abdomen),
            (0.0, float(lay.spine.center(60.0)[1]) - 50.0, 60.0),
        ),
        "abdominal tissue": abdomen,
    }
    for shape, word in zip(breasts(0.0), ("left", "right"), strict=True):
        parts[f"{word} breast"] = _Region(
            lambda x, y, z, s=shape: s.inside(x, y, z) & ~lay.torso(x, y, z, -lay.fat),
            shape.lo,
            shape.hi,
            shape.c + np.array([0.0, shape.r[1] * 0.6, 0.0]),
        )
    return parts, body(0.0)


def _anatomy(lay: _Layout, jit: _Jitter) -> tuple[dict[str, _Shape], _Shape]:
    """Every leaf class's shape, and the body outline."""
    shapes: dict[str, _Shape] = {}
    shapes.update(_heart_parts(lay))
    shapes.update(_spine_parts(lay))
    shapes.update(_rib_parts(lay))
    shapes.update(_sternum_parts(lay))
    shapes.update(_shoulder_parts(lay))
    shapes.update(_head_parts(lay))
    shapes.update(_pelvic_bone_parts(lay))
    shapes.update(_thorax_parts(lay, jit))
    shapes.update(_airway_parts(lay))
    shapes.update(_vessel_parts(lay))
    shapes.update(_liver_parts(lay, jit))
    shapes.update(_abdominal_parts(lay, jit))
    body_parts, body = _body_parts(lay)
    shapes.update(body_parts)
    return shapes, body


# ---------------------------------------------------------------------------------------------
# Assembly: rasterise, resolve overlaps, enforce containment, paint the CT
# ---------------------------------------------------------------------------------------------

# Higher in this order wins where two unrelated leaves overlap: each leaf is carved by every
# leaf before it that is not in its family (nested in it, containing it, or sharing a
# container). Within a family children come first, so painting the CT in reverse order puts
# a child (a tumour, a cyst) over its organ. Classes missing here (thoracic cavity, skin) are
# overlays: never carved, never carving.
_PRIORITY_GROUPS: tuple[tuple[str, ...], ...] = (
    (
        "left auricle of heart",
        "right heart atrium",
        "left heart atrium",
        "right heart ventricle",
        "left heart ventricle",
        "myocardium",
    ),
    (
        "@vertebrae",
        "manubrium of sternum",
        "sternum",
        "@rib",
        "@clavicle",
        "@scapula",
        "@humerus",
        "@head of femur",
        "@femur",
        "mandible",
        "@eustachian tube bone",
    ),
    ("spinal cord", "spinal canal", "costal cartilage", "rib cartilage"),
    (
        "trachea",
        "bronchie",
        "larynx glottis",
        "larynx supraglottis",
        "larynx",
        "cricopharyngeal inlet",
    ),
    (
        "heart ascending aorta",
        "aorta",
        "pulmonary embolism",
        "pulmonary artery",
        "pulmonary vein",
        "superior vena cava",
        "inferior vena cava",
        "brachiocephalic trunk",
        "@carotid artery",
        "@subclavian artery",
        "@brachiocephalic vein",
        "@internal jugular vein",
        "@iliac artery",
        "@iliac vena",
        "celiac trunk",
        "renal artery",
        "renal vein",
        "portal vein and splenic vein",
    ),
    ("cervical esophagus", "esophagus", "@thyroid", "thymus", "heart tissue"),
    (
        "kidney tumor",
        "@kidney cyst",
        "@kidney",
        "@adrenal gland",
        "pancreas tumor",
        "pancreas",
        "gallbladder",
        "stomach",
        "duodenum",
        "liver tumor",
        "liver vessel",
        "@liver",
        "spleen",
        "colon",
        "small bowel",
        "rectum",
        "prostate",
        "buccal mucosa",
    ),
    ("lung effusion", "lung nodule", "lung tumor", "@lung", "@breast"),
    ("mediastinal tissue", "abdominal tissue", "muscle"),
)
_ALIASES = (("costal cartilage", "rib cartilage"), ("heart ascending aorta", "aorta"))
# Containments the brief adds to the taxonomy's: (inner class, container class)
_EXTRA_CONTAINERS = (
    ("pulmonary embolism", "pulmonary artery"),
    ("lung", "thoracic cavity"),
    ("heart", "thoracic cavity"),
    ("mediastinal tissue", "thoracic cavity"),
)

_HU = {
    "muscle": 45,
    "abdominal tissue": -90,
    "mediastinal tissue": -70,
    "heart tissue": -60,
    "skin": 20,
    "breast": -40,
    "lung": -850,
    "lung effusion": 15,
    "lung nodule": 30,
    "lung tumor": 40,
    "thymus": 10,
    "thyroid": 90,
    "esophagus": 40,
    "cricopharyngeal inlet": 45,
    "trachea": 40,
    "heart ascending aorta": 40,
    "rib cartilage": 150,
    "bronchie": 40,
    "larynx": 45,
    "heart": 40,
    "myocardium": 50,
    "aorta": 40,
    "pulmonary artery": 40,
    "pulmonary embolism": 20,
    "pulmonary vein": 40,
    "superior vena cava": 40,
    "inferior vena cava": 40,
    "brachiocephalic trunk": 40,
    "carotid artery": 40,
    "subclavian artery": 40,
    "brachiocephalic vein": 40,
    "internal jugular vein": 40,
    "iliac artery": 40,
    "iliac vena": 40,
    "celiac trunk": 40,
    "renal artery": 40,
    "renal vein": 40,
    "portal vein and splenic vein": 40,
    "liver": 60,
    "liver vessel": 45,
    "liver tumor": 25,
    "spleen": 50,
    "pancreas": 40,
    "pancreas tumor": 20,
    "kidney": 30,
    "kidney cyst": 5,
    "kidney tumor": 35,
    "adrenal gland": 30,
    "gallbladder": 10,
    "stomach": 35,
    "duodenum": 30,
    "small bowel": 30,
    "colon": 0,
    "rectum": 20,
    "prostate": 40,
    "buccal mucosa": 40,
    "spinal canal": 10,
    "spinal cord": 35,
    "costal cartilage": 150,
}
_BONE_HU = {  # (cortex, marrow)
    "vertebrae": (800, 250),
    "rib": (800, 250),
    "sternum": (750, 250),
    "clavicle": (800, 250),
    "scapula": (800, 250),
    "humerus": (850, 250),
    "femur": (850, 250),
    "mandible": (900, 300),
    "eustachian tube bone": (1200, 600),
}
_NOISE_HU = 6.0


@cache
def _leaves_of(name: str) -> tuple[str, ...]:
    """The leaf classes whose union is ``name`` (itself for a leaf)."""
    info = load_taxonomy()[name]
    if not info.union_of:
        return (name,)
    seen: dict[str, None] = {}
    for member in info.union_of:
        seen.update(dict.fromkeys(_leaves_of(member)))
    return tuple(seen)


def _all_leaves() -> tuple[str, ...]:
    return tuple(n for n in load_taxonomy().names if _leaves_of(n) == (n,))


@cache
def _priority() -> tuple[str, ...]:
    order: dict[str, None] = {}
    for group in _PRIORITY_GROUPS:
        for item in group:
            order.update(dict.fromkeys(_leaves_of(item[1:]) if item.startswith("@") else (item,)))
    return tuple(order)


@cache
def _outer_leaves() -> dict[str, frozenset[str]]:
    """For each leaf, the leaves of every class that must contain it."""
    tax = load_taxonomy()
    out = {}
    for leaf in _all_leaves():
        outer = set(tax.containers(leaf))
        outer.update(c for inner, c in _EXTRA_CONTAINERS if leaf in _leaves_of(inner))
        out[leaf] = frozenset(x for c in outer for x in _leaves_of(c))
    return out


@cache
def _family(leaf: str) -> frozenset[str]:
    """Leaves that may overlap ``leaf``: its containers' leaves, leaves it contains, aliases."""
    outer = _outer_leaves()
    related = {leaf, *outer[leaf]}
    related.update(other for other, theirs in outer.items() if leaf in theirs)
    for pair in _ALIASES:
        if leaf in pair:
            related.update(pair)
    return frozenset(related)


def _carve(masks: dict[str, BoxMask]) -> None:
    """Resolve overlaps between unrelated leaves in priority order (higher wins)."""
    order = _priority()
    for n, leaf in enumerate(order):
        target = masks[leaf]
        data = target.data.copy()
        touched = False
        for winner in order[:n]:
            if winner in _family(leaf):
                continue
            hit = _overlap(target, masks[winner])
            if hit is not None:
                data[hit[0]] &= ~masks[winner].data[hit[1]]
                touched = True
        if touched:
            masks[leaf] = _tight(target.origin, data)


def _tree_containments() -> list[tuple[str, str]]:
    """(class, tree parent) pairs that are not already unions, deepest first."""
    tax = load_taxonomy()
    pairs = []
    for info in tax.labels:
        if info.parent in SYSTEMS or info.name in tax[info.parent].union_of:
            continue
        pairs.append((len(tax.ancestors(info.name)), info.name, info.parent))
    return [(name, parent) for _, name, parent in sorted(pairs, key=lambda p: -p[0])]


def _contain(masks: dict[str, BoxMask]) -> None:
    """Make every containment exact: voxels of a class outside its container are given to the
    container's leaf that overlaps them most (the container itself when it is a leaf)."""
    for inner, outer in _tree_containments() + list(_EXTRA_CONTAINERS):
        hosts = _leaves_of(outer)
        for leaf in _leaves_of(inner):
            stray = masks[leaf].data.copy()
            for host in hosts:
                hit = _overlap(masks[leaf], masks[host])
                if hit is not None:
                    stray[hit[0]] &= ~masks[host].data[hit[1]]
            if stray.any():
                best = max(hosts, key=lambda h: _shared(masks[leaf], masks[h]))
                masks[best] = _union([masks[best], _tight(masks[leaf].origin, stray)])


def _shared(p: BoxMask, q: BoxMask) -> int:
    hit = _overlap(p, q)
    return 0 if hit is None else int(np.count_nonzero(p.data[hit[0]] & q.data[hit[1]]))


def _ensure_voxel(mask: BoxMask, grid: _Grid, anchor: np.ndarray) -> BoxMask:
    """A tiny structure the grid misses keeps at least the voxel nearest its anchor."""
    if mask.data.size:
        return mask
    return BoxMask(grid.nearest(anchor), np.ones((1, 1, 1), dtype=bool))


def _rasterise(shape: _Shape, grid: _Grid) -> BoxMask:
    box = grid.box(shape.lo, shape.hi)
    if box is None:
        return BoxMask((0, 0, 0), _EMPTY)
    return _tight(box[0], shape.raster(grid, *box))


def _build_masks(shapes: Mapping[str, _Shape], grid: _Grid) -> dict[str, BoxMask]:
    masks = {name: _rasterise(shape, grid) for name, shape in shapes.items()}
    # anchor voxels before carving (so they take part in it) and again after (if carved away)
    for step in (_carve, None):
        for name in masks:
            masks[name] = _ensure_voxel(masks[name], grid, shapes[name].anchor)
        if step is not None:
            step(masks)
    _contain(masks)
    for mask in masks.values():
        mask.data.flags.writeable = False
    return masks


def _paint(ct: np.ndarray, mask: BoxMask, hu: float) -> None:
    if mask.data.size:
        ct[mask.slices][mask.data] = hu


@cache
def _hu_of(leaf: str) -> float | None:
    """Soft-tissue HU of a leaf: its own, else that of the nearest class containing it
    (walking both tree parents and the unions a class belongs to, nearest first)."""
    tax = load_taxonomy()
    frontier = [leaf]
    while frontier:
        for name in frontier:
            if name in _HU:
                return _HU[name]
        wider = [info.name for info in tax.labels if set(frontier) & set(info.union_of)]
        wider += [tax[n].parent for n in frontier if tax[n].parent not in SYSTEMS]
        frontier = list(dict.fromkeys(wider))
    return None


def _bone_leaves() -> tuple[str, ...]:
    return tuple(leaf for leaf in _all_leaves() if "bone" in load_taxonomy().containers(leaf))


def _paint_ct(
    grid: _Grid, masks: Mapping[str, BoxMask], body: _Shape, lumens: list[tuple[_Shape, str]]
) -> np.ndarray:
    """Air, body fat, each soft leaf (containers before contents), air lumens, then bones with
    a cortex one voxel thick around a marrow core."""
    ct = np.full(grid.shape, -1000, dtype=np.int16)
    box = grid.box(body.lo, body.hi)
    if box is not None:
        view = ct[tuple(slice(int(a), int(b)) for a, b in zip(*box, strict=True))]
        view[body.raster(grid, *box)] = -100
    soft = [leaf for leaf in reversed(_priority()) if _hu_of(leaf) is not None]
    for leaf in [*soft, "skin"]:
        _paint(ct, masks[leaf], _hu_of(leaf))
    for shape, leaf in lumens:
        air = _rasterise(shape, grid)
        hit = _overlap(air, masks[leaf])
        if hit is not None:
            inside = np.zeros_like(air.data)
            inside[hit[0]] = air.data[hit[0]] & masks[leaf].data[hit[1]]
            _paint(ct, BoxMask(air.origin, inside), -1000)
    tax = load_taxonomy()
    for leaf in _bone_leaves():
        cortex, marrow = _BONE_HU[tax[leaf].organ]
        mask = masks[leaf]
        _paint(ct, mask, cortex)
        _paint(ct, BoxMask(mask.origin, _erode(mask.data)), marrow)
    return ct


def _erode(mask: np.ndarray) -> np.ndarray:
    """Voxels whose six face neighbours are all inside (the rest is the mask's surface)."""
    out = mask.copy()
    out[[0, -1]] = out[:, [0, -1]] = out[:, :, [0, -1]] = False
    for axis in range(3):
        for shift in (1, -1):
            out &= np.roll(mask, shift, axis=axis)
    return out


def _lumens(shapes: Mapping[str, _Shape], lay: _Layout) -> list[tuple[_Shape, str]]:
    """Unlabelled air, each kept within its leaf: airway lumens and the gastric fundus bubble."""
    trachea, bronchi = shapes["trachea"], shapes["bronchie"]
    out: list[tuple[_Shape, str]] = [(_Tube(trachea.p, trachea.r * 0.75), "trachea")]  # type: ignore[attr-defined]
    out += [(_Tube(t.p, t.r * 0.7), "bronchie") for t in bronchi.parts]  # type: ignore[attr-defined]
    larynx = [lay.by_trachea(0.0, 0.0, z) for z in (266.0, 292.0, 318.0)]
    out.append((_Tube(larynx, 6.0), "larynx"))
    stomach = shapes["stomach"]
    top = float(stomach.hi[2])
    fundus_top = _Region(lambda x, y, z: z > top - 22.0, stomach.lo, stomach.hi, stomach.anchor)
    out.append((_Where(stomach, fundus_top), "stomach"))
    return out


def _add_noise(ct: np.ndarray, rng: np.random.Generator) -> None:
    """Gaussian noise of a few HU, a slab at a time so no float volume is ever held."""
    step = max(1, _CHUNK // (ct.shape[0] * ct.shape[1]))
    for k in range(0, ct.shape[2], step):
        slab = ct[:, :, k : k + step]
        noisy = slab + _NOISE_HU * rng.standard_normal(slab.shape, dtype=np.float32)
        slab[...] = np.clip(np.rint(noisy), -1024, 3071).astype(np.int16)


_Z_REACH = 395.0  # |z| of the anatomy's ends: jugular veins at the skull base, the femoral heads


def _check_fov(body: _Shape, fov: tuple[float, float, float]) -> None:
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
    geometry: PhantomGeometry = PhantomGeometry(),
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
    grid = _Grid(shape, tuple(float(f) for f in fov_mm))  # type: ignore[arg-type]
    anatomy_rng, noise_rng = np.random.default_rng(seed).spawn(2)
    jit = _Jitter(anatomy_rng)
    # the skin is at least one voxel thick so the shell stays closed on coarse grids
    lay = _Layout(geometry, jit, skin_mm=float(np.clip(grid.spacing.max(), 3.0, 12.0)))
    shapes, body = _anatomy(lay, jit)
    _check_fov(body, fov_mm)
    masks = _build_masks(shapes, grid)
    ct = _paint_ct(grid, masks, body, _lumens(shapes, lay))
    _add_noise(ct, noise_rng)
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
