"""The CT: Hounsfield units painted over the leaf masks, air lumens, bone cortex and marrow,
and noise.

CT. Air -1000 HU, subcutaneous fat -100, muscle 45, lung -850, blood and heart 40, liver 60,
kidney 30, cartilage 150, bone cortex 750-1200 around a 250 HU marrow core, air in the airway
lumens and the gastric fundus, plus Gaussian noise of 6 HU; int16 within [-1024, 3071].
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np

from catalog.taxonomy import SYSTEMS, load_taxonomy
from flows.maths.boxes import BoxMask, overlap
from flows.phantom.grid import CHUNK, Grid
from flows.phantom.layout import Layout
from flows.phantom.masks import all_leaves, priority
from flows.phantom.shapes import Region, Shape, Tube, Where, rasterise

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
    return tuple(leaf for leaf in all_leaves() if "bone" in load_taxonomy().containers(leaf))


def paint_ct(
    grid: Grid, masks: Mapping[str, BoxMask], body: Shape, lumens: list[tuple[Shape, str]]
) -> np.ndarray:
    """Air, body fat, each soft leaf (containers before contents), air lumens, then bones with
    a cortex one voxel thick around a marrow core."""
    ct = np.full(grid.shape, -1000, dtype=np.int16)
    box = grid.box(body.lo, body.hi)
    if box is not None:
        view = ct[tuple(slice(int(a), int(b)) for a, b in zip(*box, strict=True))]
        view[body.raster(grid, *box)] = -100
    soft = [leaf for leaf in reversed(priority()) if _hu_of(leaf) is not None]
    for leaf in [*soft, "skin"]:
        _paint(ct, masks[leaf], _hu_of(leaf))
    for shape, leaf in lumens:
        air = rasterise(shape, grid)
        hit = overlap(air, masks[leaf])
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


def lumens(shapes: Mapping[str, Shape], lay: Layout) -> list[tuple[Shape, str]]:
    """Unlabelled air, each kept within its leaf: airway lumens and the gastric fundus bubble."""
    trachea, bronchi = shapes["trachea"], shapes["bronchie"]
    out: list[tuple[Shape, str]] = [(Tube(trachea.p, trachea.r * 0.75), "trachea")]  # type: ignore[attr-defined]
    out += [(Tube(t.p, t.r * 0.7), "bronchie") for t in bronchi.parts]  # type: ignore[attr-defined]
    larynx = [lay.by_trachea(0.0, 0.0, z) for z in (266.0, 292.0, 318.0)]
    out.append((Tube(larynx, 6.0), "larynx"))
    stomach = shapes["stomach"]
    top = float(stomach.hi[2])
    fundus_top = Region(lambda x, y, z: z > top - 22.0, stomach.lo, stomach.hi, stomach.anchor)
    out.append((Where(stomach, fundus_top), "stomach"))
    return out


def add_noise(ct: np.ndarray, rng: np.random.Generator) -> None:
    """Gaussian noise of a few HU, a slab at a time so no float volume is ever held."""
    step = max(1, CHUNK // (ct.shape[0] * ct.shape[1]))
    for k in range(0, ct.shape[2], step):
        slab = ct[:, :, k : k + step]
        noisy = slab + _NOISE_HU * rng.standard_normal(slab.shape, dtype=np.float32)
        slab[...] = np.clip(np.rint(noisy), -1024, 3071).astype(np.int16)
