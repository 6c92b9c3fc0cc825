"""Sparse 3D boolean masks stored as their tight bounding box, and the operations on them.

A ``BoxMask`` keeps only the box of a volume that holds True voxels, with where that box sits,
so a class that fills a small part of a study costs only its box. The phantom builds its leaf
masks this way and the real-input readers hand masks on this way. Pure numpy: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BoxMask", "box_mask", "empty_box", "overlap", "shared_voxels", "tight", "union"]

_EMPTY = np.zeros((0, 0, 0), dtype=bool)


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
    return tight((0, 0, 0), np.asarray(dense, dtype=bool))


def empty_box() -> BoxMask:
    """The mask with no voxel: origin (0, 0, 0), data of shape (0, 0, 0)."""
    return BoxMask((0, 0, 0), _EMPTY)


def tight(origin: tuple[int, int, int] | np.ndarray, data: np.ndarray) -> BoxMask:
    """Crop ``data`` (placed at ``origin``) to the bounding box of its True voxels."""
    spans = []
    for axis in range(3):
        hit = np.flatnonzero(data.any(axis=tuple(i for i in range(3) if i != axis)))
        if hit.size == 0:
            return empty_box()
        spans.append((int(hit[0]), int(hit[-1]) + 1))
    crop = data[tuple(slice(s, e) for s, e in spans)]
    return BoxMask(tuple(int(o) + s for o, (s, _) in zip(origin, spans, strict=True)), crop)  # type: ignore[arg-type]


def overlap(p: BoxMask, q: BoxMask) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """The slices of p's and q's data covering the intersection of their boxes, if any."""
    lo = np.maximum(p.origin, q.origin)
    hi = np.minimum(np.add(p.origin, p.data.shape), np.add(q.origin, q.data.shape))
    if np.any(hi <= lo):
        return None
    sp = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, p.origin, strict=True))
    sq = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, q.origin, strict=True))
    return sp, sq


def shared_voxels(p: BoxMask, q: BoxMask) -> int:
    """Number of voxels True in both masks."""
    hit = overlap(p, q)
    return 0 if hit is None else int(np.count_nonzero(p.data[hit[0]] & q.data[hit[1]]))


def union(parts: list[BoxMask]) -> BoxMask:
    """OR of non-empty masks in their common bounding box (tight when the parts are tight)."""
    parts = [p for p in parts if p.data.size]
    if not parts:
        return empty_box()
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
