"""Hand-computed cases for the projection operators (flows/maths/projection.py)."""

import numpy as np
import pytest

from flows.maths.projection import (
    VIEWS,
    project_study,
    ray_any,
    ray_sums,
    region_masks,
    resample_image,
    resample_mask,
    to_uint8,
    view_grid,
)

AIR, BONE = -1000, 1000
PA, LL = 0, 1


def _project(hu, spacing, boxes=(), canvas=384, n_labels=None, model="linear"):
    n = n_labels if n_labels is not None else max(1, len(boxes))
    items = [(label, origin, box) for label, (origin, box) in enumerate(boxes)]
    return project_study(hu, spacing, items, n, canvas, model)


def _centroid(mask2d):
    rows, cols = np.nonzero(mask2d)
    return rows.mean(), cols.mean()


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_attenuation_is_relative_to_water_and_clipped(dtype):
    hu = np.array([-2048, -1000, 0, 1000, 3071, 5000], dtype).reshape(1, 6, 1)  # one PA ray each
    sums = ray_sums(np.repeat(hu, 2, axis=0), (1.0, 1.0, 1.0))
    assert sums["LL"][:, 0].tolist() == pytest.approx([0, 0, 2, 4, 8.142, 8.142])
    assert sums["PA"].dtype == np.float32


def test_ray_sums_are_mm_weighted_line_integrals():
    hu = np.zeros((2, 3, 4), np.int16)  # water: mu = 1 everywhere
    hu[1, 2, 3] = 1000  # mu = 2
    sums = ray_sums(hu, (0.5, 2.0, 3.0), slab=1)
    assert sums["PA"].shape == (2, 4) and sums["LL"].shape == (3, 4)
    assert sums["PA"][0, 0] == pytest.approx(3 * 2.0)  # three voxels along j, 2 mm each
    assert sums["PA"][1, 3] == pytest.approx((1 + 1 + 2) * 2.0)
    assert sums["LL"][2, 3] == pytest.approx((1 + 2) * 0.5)
    assert np.array_equal(ray_sums(hu, (0.5, 2, 3), slab=3)["PA"], sums["PA"])


def test_ray_any_gives_both_footprints_from_one_array():
    box = np.zeros((3, 4, 5), bool)
    box[2, 1, 4] = True
    footprints = ray_any(box)
    assert np.argwhere(footprints["PA"]).tolist() == [[2, 4]]  # (i, k)
    assert np.argwhere(footprints["LL"]).tolist() == [[1, 4]]  # (j, k)


def test_view_grid_preserves_aspect_and_centres_content():
    grid = view_grid((100, 50, 200), (1.0, 1.0, 1.0), "PA", canvas=384)
    r0, r1, c0, c1 = grid.content
    assert (r1 - r0, c1 - c0) == (384, 192)
    assert c0 == 96 and grid.mm_per_pixel == pytest.approx(200 / 384)
    lateral = view_grid((100, 50, 200), (1.0, 1.0, 1.0), "LL", canvas=384)
    assert lateral.content[3] - lateral.content[2] == 96


def test_single_voxel_lands_on_predicted_pixels_in_both_views():
    # 96 voxels of 1 mm on a 384 canvas: every voxel covers exactly 4 x 4 pixels.
    hu = np.full((96, 96, 96), AIR, np.int16)
    i, j, k = 10, 70, 30
    hu[i, j, k] = BONE
    box = np.ones((1, 1, 1), bool)
    result = _project(hu, (1.0, 1.0, 1.0), [((i, j, k), box)])
    row = (95 - k) * 4  # superior up: high k at the top
    col_pa = (95 - i) * 4  # patient's right (high i) on the viewer's left
    col_ll = (95 - j) * 4  # anterior (high j) on the viewer's left
    expected_pa = np.zeros((384, 384), bool)
    expected_pa[row : row + 4, col_pa : col_pa + 4] = True
    expected_ll = np.zeros((384, 384), bool)
    expected_ll[row : row + 4, col_ll : col_ll + 4] = True
    assert np.array_equal(result.mask[PA, 0], expected_pa)
    assert np.array_equal(result.mask[LL, 0], expected_ll)
    for view, col in ((PA, col_pa), (LL, col_ll)):
        image = result.image[view]
        assert image.max() == 255
        assert np.argwhere(image == 255).min(axis=0).tolist() >= [row, col]
        assert np.argwhere(image == 255).max(axis=0).tolist() <= [row + 3, col + 3]
    assert result.pixel_spacing.tolist() == pytest.approx([0.25, 0.25])


def test_anisotropic_voxel_covers_its_physical_extent():
    hu = np.full((96, 96, 48), AIR, np.int16)  # 2 mm slices: same 96 mm field of view
    hu[40, 50, 20] = BONE
    result = _project(hu, (1.0, 1.0, 2.0), [((40, 50, 20), np.ones((1, 1, 1), bool))])
    rows, cols = np.nonzero(result.mask[PA, 0])
    assert (rows.min(), rows.max()) == ((47 - 20) * 8, (47 - 20) * 8 + 7)
    assert (cols.min(), cols.max()) == ((95 - 40) * 4, (95 - 40) * 4 + 3)


def _sphere(shape, spacing, centre_mm, radius_mm):
    axes = [(np.arange(n) + 0.5) * s for n, s in zip(shape, spacing, strict=True)]
    i, j, k = np.meshgrid(*axes, indexing="ij")
    return (i - centre_mm[0]) ** 2 + (j - centre_mm[1]) ** 2 + (k - centre_mm[2]) ** 2 <= (
        radius_mm**2
    )


def test_sphere_in_anisotropic_volume_projects_round_in_both_views():
    spacing = (0.7, 0.7, 2.5)
    shape = (200, 200, 56)  # 140 x 140 x 140 mm
    sphere = _sphere(shape, spacing, (70, 70, 70), 40)
    hu = np.where(sphere, BONE, AIR).astype(np.int16)
    result = _project(hu, spacing, [((0, 0, 0), sphere)])
    mm = result.pixel_spacing
    for view in (PA, LL):
        rows, cols = np.nonzero(result.mask[view, 0])
        height = (rows.max() - rows.min() + 1) * mm[view]
        width = (cols.max() - cols.min() + 1) * mm[view]
        assert height == pytest.approx(80, abs=3.0) and width == pytest.approx(80, abs=1.5)
        area = result.mask[view, 0].sum() * mm[view] ** 2
        assert area == pytest.approx(np.pi * 40**2, rel=0.04)
        # the image's bright disc is the mask's disc
        bright = result.image[view] > 127
        assert (bright & result.mask[view, 0]).sum() / bright.sum() > 0.98


def test_left_structure_is_on_the_right_of_pa_and_anterior_on_the_left_of_ll():
    hu = np.full((60, 60, 60), AIR, np.int16)
    left_anterior_superior = np.zeros_like(hu, bool)
    left_anterior_superior[5:15, 45:55, 45:55] = True  # low i = patient's left; high j, high k
    hu[left_anterior_superior] = BONE
    result = _project(hu, (1.0, 1.0, 1.0), [((0, 0, 0), left_anterior_superior)])
    pa_row, pa_col = _centroid(result.mask[PA, 0])
    ll_row, ll_col = _centroid(result.mask[LL, 0])
    assert pa_col > 192  # patient's left appears on the viewer's right
    assert ll_col < 192  # anterior appears on the viewer's left
    assert pa_row < 192 and ll_row < 192  # superior is up
    assert _centroid(result.image[PA] > 127) == pytest.approx((pa_row, pa_col), abs=1)


def test_constant_volume_gives_zero_image():
    for value in (AIR, 0, 400):
        hu = np.full((20, 30, 40), value, np.int16)
        result = _project(hu, (1.0, 1.0, 1.0), n_labels=3)
        assert not result.image.any()
        assert not result.mask.any()


def test_masks_align_with_image_pixel_for_pixel_at_identity_scale():
    # 384 x 8 x 384 voxels of 1 mm: PA samples the raw projection one pixel per voxel.
    hu = np.full((384, 8, 384), AIR, np.int16)
    cube = np.zeros(hu.shape, bool)
    cube[100:180, 2:6, 200:230] = True
    hu[cube] = BONE
    result = _project(hu, (1.0, 1.0, 1.0), [((0, 0, 0), cube)])
    assert np.array_equal(result.image[PA] > 0, result.mask[PA, 0])


def test_uint8_uses_full_range_and_ignores_padding():
    grid = view_grid((10, 10, 20), (1.0, 1.0, 1.0), "PA", canvas=40)
    raw = np.linspace(5, 10, 200, dtype=np.float32).reshape(10, 20)
    image = to_uint8(resample_image(raw, grid), grid)
    r0, r1, c0, c1 = grid.content
    assert image[r0:r1, c0:c1].min() == 0 and image.max() == 255
    assert not image[:, :c0].any() and not image[:, c1:].any()


def test_nearest_mask_and_bilinear_image_share_one_grid():
    grid = view_grid((7, 7, 13), (1.3, 1.0, 0.9), "PA", canvas=50)
    raw = np.zeros((7, 13), np.float32)
    raw[3, 6] = 1.0
    mask = resample_mask(raw > 0, grid)
    image = resample_image(raw, grid)
    assert image[mask].min() > image[~mask].max() * 0.5 - 1e-6
    assert np.unravel_index(image.argmax(), image.shape) in set(map(tuple, np.argwhere(mask)))


def test_exponential_model_differs_but_keeps_geometry():
    hu = np.full((40, 40, 40), AIR, np.int16)
    ball = _sphere(hu.shape, (1, 1, 1), (20, 20, 20), 10)
    hu[ball] = BONE
    linear = _project(hu, (1.0, 1.0, 1.0), [((0, 0, 0), ball)])
    exponential = _project(hu, (1.0, 1.0, 1.0), [((0, 0, 0), ball)], model="exponential")
    assert np.array_equal(linear.mask, exponential.mask)
    assert not np.array_equal(linear.image, exponential.image)
    with pytest.raises(ValueError, match="attenuation model"):
        _project(hu, (1.0, 1.0, 1.0), model="log")


def test_region_masks_are_unions_of_their_groups():
    rng = np.random.default_rng(1)
    mask = rng.random((2, 5, 8, 8)) > 0.8
    regions = region_masks(mask, [[0, 2], [1], []])
    assert regions.shape == (2, 3, 8, 8)
    assert np.array_equal(regions[:, 0], mask[:, 0] | mask[:, 2])
    assert np.array_equal(regions[:, 1], mask[:, 1])
    assert not regions[:, 2].any()


def test_views_and_bad_grids():
    assert VIEWS == ("PA", "LL")
    with pytest.raises(ValueError, match="unknown view"):
        view_grid((4, 4, 4), (1, 1, 1), "AP")
    with pytest.raises(ValueError, match="cannot project"):
        view_grid((4, 4, 4), (1, 0, 1), "LL")
