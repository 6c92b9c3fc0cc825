"""The synthetic thorax phantom: vocabulary coverage, hierarchy, anatomy, ground truth, CT."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from catalog.taxonomy import load_taxonomy
from flows.maths.boxes import BoxMask, box_mask
from flows.phantom import DEFAULT_FOV_MM, Phantom, PhantomGeometry, make_phantom

SMALL = (64, 64, 64)
ANISOTROPIC = (64, 96, 128)
MEDIUM = (96, 96, 128)
THORACIC = [f"thoracic vertebrae {n} (t{n})" for n in range(1, 13)]


def _all_masks(phantom: Phantom) -> dict[str, BoxMask]:
    return dict(phantom.masks())


@pytest.fixture(scope="module", params=[SMALL, ANISOTROPIC], ids=["64^3", "anisotropic"])
def built(request) -> tuple[Phantom, dict[str, BoxMask]]:
    phantom = make_phantom(request.param)
    return phantom, _all_masks(phantom)


@pytest.fixture(scope="module")
def medium() -> tuple[Phantom, dict[str, BoxMask]]:
    phantom = make_phantom(MEDIUM)
    return phantom, _all_masks(phantom)


def _crop(mask: BoxMask, origin, shape) -> np.ndarray:
    """``mask`` restricted to the box at ``origin`` of ``shape`` (False outside the mask)."""
    out = np.zeros(shape, dtype=bool)
    lo = np.maximum(origin, mask.origin)
    hi = np.minimum(np.add(origin, shape), np.add(mask.origin, mask.data.shape))
    if np.all(hi > lo):
        dst = tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, origin, strict=True))
        src = tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, mask.origin, strict=True))
        out[dst] = mask.data[src]
    return out


def _inside(inner: BoxMask, outer: BoxMask) -> bool:
    return not np.any(inner.data & ~_crop(outer, inner.origin, inner.data.shape))


def _centroid(phantom: Phantom, mask: BoxMask) -> np.ndarray:
    """Centroid in world mm (x right, y anterior, z superior)."""
    ijk = np.argwhere(mask.data).mean(axis=0) + np.asarray(mask.origin)
    return phantom.affine[:3, :3] @ ijk + phantom.affine[:3, 3]


def _extent_mm(mask: BoxMask, axis: int, spacing: float) -> float:
    """Extent along an axis from the first to the last occupied slab, in mm."""
    return mask.data.shape[axis] * spacing


def _arc_angle(points: np.ndarray) -> float:
    """Degrees subtended at the centre of the least-squares circle by the first and last points."""
    a = np.column_stack([2 * points, np.ones(len(points))])
    cx, cy, _ = np.linalg.lstsq(a, (points**2).sum(axis=1), rcond=None)[0]
    first, last = points[0] - (cx, cy), points[-1] - (cx, cy)
    cos = first @ last / (np.linalg.norm(first) * np.linalg.norm(last))
    return math.degrees(math.acos(np.clip(cos, -1.0, 1.0)))


def _expected_centroid_angle(cobb_deg: float) -> float:
    """Tangent difference between the T1 and T12 centroids on an arc of end-plate angle cobb."""
    return math.degrees(2 * math.asin(11 / 12 * math.sin(math.radians(cobb_deg) / 2)))


# --- vocabulary and hierarchy -----------------------------------------------------------------


def test_every_class_is_yielded_once_in_union_order_and_is_non_empty(built):
    phantom, _ = built
    names = [name for name, _ in phantom.masks()]
    assert names == list(load_taxonomy().union_order())
    assert len(names) == len(set(names)) == 210
    for name, mask in phantom.masks():
        assert mask.voxels > 0, name
        assert mask.data.dtype == bool


def test_masks_are_streamed_not_precomputed(built):
    phantom, _ = built
    assert inspect.isgenerator(phantom.masks())


def test_box_masks_are_tight_and_inside_the_volume(built):
    phantom, masks = built
    for name, mask in masks.items():
        assert all(o >= 0 for o in mask.origin), name
        assert all(
            o + n <= s
            for o, n, s in zip(mask.origin, mask.data.shape, phantom.ct.shape, strict=True)
        )
        for axis in range(3):
            others = tuple(a for a in range(3) if a != axis)
            profile = mask.data.any(axis=others)
            assert profile[0] and profile[-1], (name, axis)


def test_union_classes_equal_the_or_of_their_members(built):
    _, masks = built
    for info in load_taxonomy().labels:
        if not info.union_of:
            continue
        mask = masks[info.name]
        union = np.zeros_like(mask.data)
        for member in info.union_of:
            assert _inside(masks[member], mask), (member, info.name)
            union |= _crop(masks[member], mask.origin, mask.data.shape)
        assert np.array_equal(union, mask.data), info.name


def test_every_taxonomy_containment_holds(built):
    _, masks = built
    taxonomy = load_taxonomy()
    for name in taxonomy.names:
        for container in taxonomy.containers(name):
            assert _inside(masks[name], masks[container]), (name, container)


@pytest.mark.parametrize("shape", [(20, 24, 32), (32, 32, 32)])
def test_coarse_grids_still_keep_every_class_and_containment(shape):
    # below 64^3 many structures shrink to their anchor voxel: non-emptiness and containment
    # must then come from the fallback voxels and the containment repair, not from geometry
    masks = _all_masks(make_phantom(shape))
    taxonomy = load_taxonomy()
    for name in taxonomy.names:
        assert masks[name].voxels > 0, name
        for container in taxonomy.containers(name):
            assert _inside(masks[name], masks[container]), (name, container)
    assert _inside(masks["pulmonary embolism"], masks["pulmonary artery"])
    assert _inside(masks["lung"], masks["thoracic cavity"])


@pytest.mark.parametrize(
    ("inner", "outer"),
    [
        ("lung", "thoracic cavity"),
        ("heart", "thoracic cavity"),
        ("mediastinal tissue", "thoracic cavity"),
        ("lung effusion", "thoracic cavity"),
        ("pulmonary embolism", "pulmonary artery"),
        ("lung nodule", "lung"),
        ("lung tumor", "lung"),
        ("liver tumor", "liver"),
        ("liver vessel", "liver"),
        ("pancreas tumor", "pancreas"),
        ("kidney tumor", "left kidney"),
        ("spinal cord", "spinal canal"),
        ("left auricle of heart", "left heart atrium"),
    ],
)
def test_lesions_and_contents_sit_inside_their_hosts(built, inner, outer):
    _, masks = built
    assert _inside(masks[inner], masks[outer])


def test_anatomically_disjoint_structures_do_not_overlap(medium):
    _, masks = medium
    for a, b in [
        ("heart", "lung"),
        ("liver", "lung"),
        ("liver", "thoracic cavity"),
        ("vertebrae", "spinal canal"),
        ("rib", "thoracic cavity"),
        ("aorta", "lung"),
        ("stomach", "liver"),
        ("muscle", "bone"),
        ("left kidney", "spleen"),
    ]:
        assert not np.any(_crop(masks[a], masks[b].origin, masks[b].data.shape) & masks[b].data), (
            a,
            b,
        )


# --- anatomy ----------------------------------------------------------------------------------


def test_sides_and_levels_follow_ras_axes(built):
    phantom, masks = built
    c = {name: _centroid(phantom, masks[name]) for name in masks}
    midline = 0.0  # the body is centred on x = 0 (voxel centres symmetric about the FOV centre)
    assert c["skin"][0] == pytest.approx(midline, abs=phantom.spacing[0])
    assert c["heart"][0] < midline
    assert c["liver"][0] > midline
    assert c["spleen"][0] < midline
    assert c["stomach"][0] < midline
    assert c["right lung"][0] > midline > c["left lung"][0]
    assert c["right kidney"][0] > midline > c["left kidney"][0]
    assert c["sternum"][1] > c["vertebrae"][1]
    assert c["heart"][1] > c["thoracic vertebrae 6 (t6)"][1]
    assert c["lung"][2] > c["liver"][2]
    assert c["liver"][2] > c["right kidney"][2]
    z = {n: c[n][2] for n in ("cervical vertebrae 1 (c1)", "thoracic vertebrae 1 (t1)")}
    z |= {n: c[n][2] for n in ("lumbar vertebrae 1 (l1)", "sacral vertebrae 1 (s1)")}
    assert list(z.values()) == sorted(z.values(), reverse=True)
    assert c["mandible"][2] > c["thyroid"][2] > c["heart"][2] > c["prostate"][2]
    assert c["head of left femur"][2] < c["sacral vertebrae 1 (s1)"][2]


def test_vertebrae_stack_in_order_along_the_spine(medium):
    phantom, masks = medium
    taxonomy = load_taxonomy()
    order = [m for part in ("cervical vertebrae", "thoracic vertebrae", "lumbar vertebrae")
             for m in taxonomy[part].union_of]  # fmt: skip
    order.append("sacral vertebrae 1 (s1)")
    heights = [_centroid(phantom, masks[name])[2] for name in order]
    assert all(np.diff(heights) < 0)


def test_lobes_are_stacked_within_each_lung(medium):
    phantom, masks = medium
    c = {name: _centroid(phantom, masks[name]) for name in masks}
    assert c["right lung upper lobe"][2] > c["right lung middle lobe"][2]
    assert c["right lung upper lobe"][2] > c["right lung lower lobe"][2]
    assert c["left lung upper lobe"][2] > c["left lung lower lobe"][2]
    assert c["right lung middle lobe"][1] > c["right lung lower lobe"][1]  # middle lobe anterior
    assert c["lung effusion"][1] < c["right lung"][1]  # dependent (posterior)


# --- ground-truth geometry ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "geometry",
    [
        PhantomGeometry(),
        PhantomGeometry(heart_width_mm=224.0, thoracic_width_mm=280.0),  # CTR 0.8
        PhantomGeometry(heart_width_mm=66.0, thoracic_width_mm=220.0),  # CTR 0.3
        PhantomGeometry(heart_width_mm=170.0, thoracic_width_mm=310.0, scoliosis_deg=-25.0),
    ],
    ids=["default", "ctr-0.8", "ctr-0.3", "wide"],
)
def test_heart_and_thoracic_widths_match_the_geometry(geometry):
    phantom = make_phantom(MEDIUM, geometry=geometry, seed=3)
    sx = phantom.spacing[0]
    heart = _extent_mm(phantom.mask("heart"), 0, sx)
    cavity = _extent_mm(phantom.mask("thoracic cavity"), 0, sx)
    lungs = _extent_mm(phantom.mask("lung"), 0, sx)
    assert heart == pytest.approx(geometry.heart_width_mm, abs=1.5 * sx)
    assert cavity == pytest.approx(geometry.thoracic_width_mm, abs=1.5 * sx)
    assert lungs == pytest.approx(cavity, abs=sx)  # the lungs' outer edges reach the cavity wall
    assert heart / cavity == pytest.approx(geometry.cardiothoracic_ratio, abs=0.03)


def test_kyphosis_sets_the_sagittal_arc_of_the_thoracic_centroids():
    sagittal = {}
    for angle in (20.0, 50.0):
        phantom = make_phantom(MEDIUM, geometry=PhantomGeometry(kyphosis_deg=angle))
        yz = np.array([_centroid(phantom, phantom.mask(n))[[1, 2]] for n in THORACIC])
        assert _arc_angle(yz) == pytest.approx(_expected_centroid_angle(angle), abs=3.0)
        # convex posteriorly: the mid-thoracic centroids lie behind the chord T1-T12
        chord_y = (yz[0, 0] + yz[-1, 0]) / 2
        sagittal[angle] = chord_y - yz[5:7, 0].mean()
        assert sagittal[angle] > 0
    assert sagittal[50.0] > 2 * sagittal[20.0]


def test_scoliosis_zero_is_straight_and_signed_angles_bend_to_that_side():
    frontal = {}
    for angle in (0.0, 30.0, -30.0):
        phantom = make_phantom(MEDIUM, geometry=PhantomGeometry(scoliosis_deg=angle))
        xz = np.array([_centroid(phantom, phantom.mask(n))[[0, 2]] for n in THORACIC])
        frontal[angle] = xz[5:7, 0].mean() - (xz[0, 0] + xz[-1, 0]) / 2
        if angle == 0.0:
            assert np.ptp(xz[:, 0]) < 0.5 * phantom.spacing[0]
        else:
            assert _arc_angle(xz) == pytest.approx(_expected_centroid_angle(abs(angle)), abs=3.0)
    assert frontal[30.0] > 10.0  # convex to the patient's right: apex at larger x (larger i)
    assert frontal[-30.0] < -10.0
    assert abs(frontal[0.0]) < 1.0


# --- CT -----------------------------------------------------------------------------------------


def test_ct_grid_spacing_and_affine(built):
    phantom, _ = built
    shape = phantom.ct.shape
    assert phantom.ct.dtype == np.int16
    assert phantom.spacing == pytest.approx(
        tuple(f / n for f, n in zip(DEFAULT_FOV_MM, shape, strict=True))
    )
    assert phantom.affine.shape == (4, 4)
    assert np.allclose(phantom.affine[:3, :3], np.diag(phantom.spacing))
    first = phantom.affine @ [0, 0, 0, 1]
    last = phantom.affine @ [*(n - 1 for n in shape), 1]
    assert np.allclose(first[:3], -last[:3])  # voxel centres symmetric about the FOV centre


def test_hounsfield_ranges(built):
    phantom, masks = built
    ct = phantom.ct

    def values(name: str) -> np.ndarray:
        mask = masks[name]
        return ct[mask.slices][mask.data].astype(float)

    assert ct.min() >= -1024 and ct.max() <= 3071
    assert ct[:3, :3, :].mean() == pytest.approx(-1000.0, abs=5.0)  # air around the body
    assert values("lung").mean() < -500
    assert values("bone").mean() > 300
    assert values("vertebrae").mean() > 300
    assert 0 < values("liver").mean() < 100
    assert 0 < values("heart").mean() < 100
    assert 100 < values("costal cartilage").mean() < 250
    assert values("trachea").min() < -900  # an air lumen
    assert values("abdominal tissue").mean() < 0 < values("muscle").mean()


def test_radiograph_shows_dark_lungs_beside_a_bright_spine(medium):
    phantom, masks = medium
    attenuation = 1 + np.clip(phantom.ct.astype(float), -1000, 3071) / 1000
    pa = attenuation.sum(axis=1)  # (i, k): a postero-anterior projection
    lung = masks["right lung"].to_dense(phantom.ct.shape).any(axis=1)
    spine = masks["thoracic vertebrae"].to_dense(phantom.ct.shape).any(axis=1)
    liver = masks["liver"].to_dense(phantom.ct.shape).any(axis=1)
    assert pa[lung & ~spine].mean() < 0.8 * pa[spine].mean()
    assert pa[lung & ~spine].mean() < pa[liver & ~lung].mean()


def test_same_seed_is_byte_identical_and_seeds_vary_anatomy_not_geometry():
    geometry = PhantomGeometry(heart_width_mm=150.0, kyphosis_deg=40.0)
    a = make_phantom(SMALL, seed=5, geometry=geometry)
    b = make_phantom(SMALL, seed=5, geometry=geometry)
    c = make_phantom(SMALL, seed=6, geometry=geometry)
    assert a.ct.tobytes() == b.ct.tobytes()
    for (name, ma), (_, mb) in zip(a.masks(), b.masks(), strict=True):
        assert ma.origin == mb.origin and ma.data.tobytes() == mb.data.tobytes(), name
    assert a.ct.tobytes() != c.ct.tobytes()
    assert a.mask("liver").data.tobytes() != c.mask("liver").data.tobytes()
    sx = a.spacing[0]
    for phantom in (a, c):
        assert _extent_mm(phantom.mask("heart"), 0, sx) == pytest.approx(150.0, abs=1.5 * sx)
    assert c.geometry == geometry


# --- inputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heart_width_mm": 60.0, "thoracic_width_mm": 280.0},  # CTR 0.21
        {"heart_width_mm": 250.0, "thoracic_width_mm": 280.0},  # CTR 0.89
        {"thoracic_width_mm": 150.0},
        {"kyphosis_deg": -5.0},
        {"kyphosis_deg": 81.0},
        {"scoliosis_deg": 85.0},
        {"scoliosis_deg": -85.0},
        {"heart_width_mm": float("nan")},
    ],
)
def test_out_of_range_geometry_is_rejected(kwargs):
    with pytest.raises(ValueError, match=r"\w"):
        PhantomGeometry(**kwargs)


def test_negative_scoliosis_and_extreme_angles_are_accepted():
    geometry = PhantomGeometry(scoliosis_deg=-80.0, kyphosis_deg=80.0)
    assert geometry.cardiothoracic_ratio == pytest.approx(130.0 / 280.0)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((8, 64, 64), {}), ((64, 64), {}), ((64, 64, 64), {"fov_mm": (300.0, 400.0, 800.0)})],
)
def test_bad_grid_is_rejected(args, kwargs):
    with pytest.raises(ValueError):
        make_phantom(args, **kwargs)


def test_box_mask_round_trip():
    dense = np.zeros((6, 7, 8), dtype=bool)
    dense[1:3, 2, 4:7] = True
    dense[4, 5, 5] = True
    mask = box_mask(dense)
    assert mask.origin == (1, 2, 4)
    assert mask.data.shape == (4, 4, 3)
    assert mask.voxels == 7
    assert np.array_equal(mask.to_dense(dense.shape), dense)
    empty = box_mask(np.zeros((3, 3, 3), dtype=bool))
    assert empty.data.shape == (0, 0, 0) and empty.voxels == 0
    assert not empty.to_dense((3, 3, 3)).any()
