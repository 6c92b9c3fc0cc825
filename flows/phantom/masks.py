"""Leaf masks from shapes: each leaf rasterised over its own box, overlaps between unrelated
leaves resolved, every containment made exact.

Overlaps and containment. Where two unrelated primitives collide, the leaf higher in a fixed
priority (heart, bones, airway, vessels, viscera, lungs, fill tissues) keeps the voxels, so only
related classes overlap. Every containment of ``Taxonomy.containers`` holds exactly, as do the
brief's (pulmonary embolism in the pulmonary artery; lungs, heart and mediastinal tissue in the
thoracic cavity). A structure too small for the grid keeps the voxel nearest its centre.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np

from catalog.taxonomy import SYSTEMS, load_taxonomy
from flows.maths.boxes import BoxMask, overlap, shared_voxels, tight, union
from flows.phantom.grid import Grid
from flows.phantom.shapes import Shape, rasterise

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


@cache
def leaves_of(name: str) -> tuple[str, ...]:
    """The leaf classes whose union is ``name`` (itself for a leaf)."""
    info = load_taxonomy()[name]
    if not info.union_of:
        return (name,)
    seen: dict[str, None] = {}
    for member in info.union_of:
        seen.update(dict.fromkeys(leaves_of(member)))
    return tuple(seen)


def all_leaves() -> tuple[str, ...]:
    return tuple(n for n in load_taxonomy().names if leaves_of(n) == (n,))


@cache
def priority() -> tuple[str, ...]:
    order: dict[str, None] = {}
    for group in _PRIORITY_GROUPS:
        for item in group:
            order.update(dict.fromkeys(leaves_of(item[1:]) if item.startswith("@") else (item,)))
    return tuple(order)


@cache
def _outer_leaves() -> dict[str, frozenset[str]]:
    """For each leaf, the leaves of every class that must contain it."""
    tax = load_taxonomy()
    out = {}
    for leaf in all_leaves():
        outer = set(tax.containers(leaf))
        outer.update(c for inner, c in _EXTRA_CONTAINERS if leaf in leaves_of(inner))
        out[leaf] = frozenset(x for c in outer for x in leaves_of(c))
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
    order = priority()
    for n, leaf in enumerate(order):
        target = masks[leaf]
        data = target.data.copy()
        touched = False
        for winner in order[:n]:
            if winner in _family(leaf):
                continue
            hit = overlap(target, masks[winner])
            if hit is not None:
                data[hit[0]] &= ~masks[winner].data[hit[1]]
                touched = True
        if touched:
            masks[leaf] = tight(target.origin, data)


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
        hosts = leaves_of(outer)
        for leaf in leaves_of(inner):
            stray = masks[leaf].data.copy()
            for host in hosts:
                hit = overlap(masks[leaf], masks[host])
                if hit is not None:
                    stray[hit[0]] &= ~masks[host].data[hit[1]]
            if stray.any():
                best = max(hosts, key=lambda h: shared_voxels(masks[leaf], masks[h]))
                masks[best] = union([masks[best], tight(masks[leaf].origin, stray)])


def _ensure_voxel(mask: BoxMask, grid: Grid, anchor: np.ndarray) -> BoxMask:
    """A tiny structure the grid misses keeps at least the voxel nearest its anchor."""
    if mask.data.size:
        return mask
    return BoxMask(grid.nearest(anchor), np.ones((1, 1, 1), dtype=bool))


def build_masks(shapes: Mapping[str, Shape], grid: Grid) -> dict[str, BoxMask]:
    """Every leaf's mask: rasterised, carved in priority order, its containments made exact;
    read-only."""
    masks = {name: rasterise(shape, grid) for name, shape in shapes.items()}
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
