"""A study's class masks between reading and writing: staged compressed, completed by unions.

Ingest reads every mask of a study before it replaces anything in the store, so a bad mask
file fails the study while an earlier version of it is still intact. Each mask is kept as its
tight box, bit-packed and zstd-compressed (a few per cent of the dense size), so memory holds
one dense box at a time, never the study's 210 dense masks.

Classes the input lacks are then derived from the taxonomy's ``union_of``: a class is derived
when at least one member is available (given or itself derived), as the OR of the available
members. A union of only some members is a lower bound of the class; ``Derivation.partial``
records which members were absent, and ingest writes it to the study's attrs. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from numcodecs import Zstd

from catalog.taxonomy import Taxonomy
from flows.maths.boxes import BoxMask

_CODEC = Zstd(level=1)
_EMPTY = np.zeros((0, 0, 0), bool)
_SLICES = 4  # axial slices compared at a time


@dataclass(frozen=True, eq=False)
class StagedMask:
    """One class mask as its tight box, bit-packed and compressed."""

    origin: tuple[int, int, int]
    shape: tuple[int, int, int]
    payload: bytes
    order: str = "C"  # the memory order packed (and given back): a box read from a file is "F"

    @classmethod
    def pack(cls, mask: BoxMask) -> StagedMask:
        """Compress a box mask, in its own memory order (no transposing copy)."""
        data = np.asarray(mask.data, dtype=bool)
        order = "F" if data.flags.f_contiguous and not data.flags.c_contiguous else "C"
        payload = bytes(_CODEC.encode(np.packbits(data.ravel(order=order))))
        return cls(tuple(int(o) for o in mask.origin), data.shape, payload, order)  # type: ignore[arg-type]

    def unpack(self) -> BoxMask:
        """The box mask back, dense, in the memory order it was given."""
        count = int(np.prod(self.shape))
        if count == 0:
            return BoxMask((0, 0, 0), _EMPTY)
        bits = np.frombuffer(_CODEC.decode(self.payload), np.uint8)
        data = np.unpackbits(bits, count=count).view(bool).reshape(self.shape, order=self.order)
        return BoxMask(self.origin, data)

    @property
    def empty(self) -> bool:
        return 0 in self.shape


@dataclass(frozen=True)
class Derivation:
    """Which missing classes are derived as unions, and the members each one lacks."""

    derived: tuple[str, ...]
    partial: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def stage(
    masks: Iterable[tuple[str, BoxMask]], shape: tuple[int, int, int], taxonomy: Taxonomy
) -> dict[str, StagedMask]:
    """Read every mask once and keep it compressed; a class given twice is an error."""
    staged: dict[str, StagedMask] = {}
    for name, mask in masks:
        taxonomy.index(name)  # KeyError names a class outside the vocabulary
        if name in staged:
            raise ValueError(f"the class {name!r} was given twice")
        stop = np.add(mask.origin, mask.data.shape)
        if mask.data.size and (np.any(np.asarray(mask.origin) < 0) or np.any(stop > shape)):
            raise ValueError(f"the mask of {name!r} reaches outside the CT's {shape} voxels")
        staged[name] = StagedMask.pack(mask)
    return staged


def plan_derivation(available: Collection[str], taxonomy: Taxonomy) -> Derivation:
    """Derive every missing class with at least one available ``union_of`` member."""
    have = set(available)
    derived: list[str] = []
    gaps: dict[str, set[str]] = {}
    for name in taxonomy.union_order():  # members come before the classes they make up
        members = taxonomy[name].union_of
        if name in have or not any(m in have for m in members):
            continue
        have.add(name)
        derived.append(name)
        gaps[name] = {m for m in members if m not in have}
        for member in members:
            gaps[name] |= gaps.get(member, set())
    partial = {name: tuple(sorted(gaps[name])) for name in derived if gaps[name]}
    return Derivation(tuple(derived), partial)


def emit(
    staged: Mapping[str, StagedMask], derivation: Derivation, taxonomy: Taxonomy
) -> Iterator[tuple[str, BoxMask, bool]]:
    """Every given and derived class once, in ``union_order``, each dense only while yielded.

    The flag says whether the class is, voxel for voxel, the union of its available members:
    true of every derived class, and checked for a given one. A projection can then take such a
    class's footprints as the OR of its members' without reading its voxels.
    """
    available = dict(staged)
    wanted = set(derivation.derived)
    for name in taxonomy.union_order():
        members = [available[m] for m in taxonomy[name].union_of if m in available]
        if name in staged:
            given = staged[name].unpack()
            yield name, given, bool(members) and _equal(given, _union(members))
        elif name in wanted:
            union = _union(members)
            available[name] = StagedMask.pack(union)  # it may be a member of a later union
            yield name, union, True


def _equal(a: BoxMask, b: BoxMask) -> bool:
    """Same voxels (both boxes are tight, so equal masks have equal boxes).

    Compared a few slices at a time: one comparison of two whole boxes allocates a box-sized
    temporary, which on a Dask worker (where glibc hands large blocks back) costs fresh pages.
    """
    if a.origin != b.origin or a.data.shape != b.data.shape:
        return False
    return all(
        np.array_equal(a.data[..., k : k + _SLICES], b.data[..., k : k + _SLICES])
        for k in range(0, a.data.shape[2], _SLICES)
    )


def _union(members: list[StagedMask]) -> BoxMask:
    """OR of the members in their common box, unpacking one member at a time."""
    parts = [m for m in members if not m.empty]
    if not parts:
        return BoxMask((0, 0, 0), _EMPTY)
    low = np.min([p.origin for p in parts], axis=0)
    high = np.max([np.add(p.origin, p.shape) for p in parts], axis=0)
    # in the members' memory order: a box read from a file is Fortran-ordered, and ORing it into
    # a C-ordered union (or comparing the two) would walk one of them with strides
    out = np.zeros(tuple(int(n) for n in high - low), bool, order=parts[0].order)
    for part in parts:
        box = part.unpack()
        start = np.subtract(box.origin, low)
        out[
            tuple(slice(int(s), int(s) + n) for s, n in zip(start, box.data.shape, strict=True))
        ] |= box.data
    return BoxMask(tuple(int(v) for v in low), out)  # type: ignore[arg-type]
