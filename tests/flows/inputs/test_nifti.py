"""Opening, checking and canonicalising NIfTI (flows/inputs/nifti.py) on real nibabel files."""

import gzip

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform
from niftis import AFFINE, ct_array, save

from flows.inputs import nifti
from flows.inputs.nifti import InputError
from flows.maths.boxes import box_mask


def _bytes(tmp_path, array, affine=AFFINE, name="v.nii.gz", **header) -> bytes:
    return save(tmp_path / name, array, affine, **header).read_bytes()


def test_ct_round_trip_in_hounsfield_units(tmp_path):
    ct = ct_array()
    volume = nifti.decode(_bytes(tmp_path, ct), "ct.nii.gz")
    assert volume.shape == ct.shape and np.allclose(volume.affine, AFFINE)
    assert np.array_equal(nifti.hounsfield(volume), ct)


@pytest.mark.parametrize(
    ("stored_dtype", "slope", "intercept"),
    [(np.uint16, 1.0, -1024.0), (np.int16, 0.5, -1000.0), (np.float32, 2.0, 0.0)],
)
def test_scale_slope_and_intercept_are_honoured(tmp_path, stored_dtype, slope, intercept):
    hu = ct_array().astype(np.float64)
    hu = np.rint(hu / 2) * 2  # representable under every scaling below
    stored = ((hu - intercept) / slope).astype(stored_dtype)
    data = _bytes(tmp_path, stored, scl_slope=slope, scl_inter=intercept)
    volume = nifti.decode(data, "ct.nii.gz")
    assert (volume.slope, volume.intercept) == (slope, intercept)
    assert np.array_equal(nifti.hounsfield(volume), hu.astype(np.int16))


@pytest.mark.parametrize("codes", ["RAS", "LAS", "LPS", "PSR", "ILA", "SAL"])
def test_any_orientation_is_brought_to_ras(tmp_path, codes):
    """A RAS volume saved in another axis order reads back voxel for voxel at the same place."""
    ras = np.random.default_rng(1).integers(-1000, 1000, (6, 7, 8)).astype(np.int16)
    ras_affine = np.diag([0.8, 0.9, 2.5, 1.0])
    ras_affine[:3, 3] = [-10.0, 5.0, 30.0]
    transform = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(tuple(codes)))
    stored = apply_orientation(ras, transform)
    affine = ras_affine @ inv_ornt_aff(transform, ras.shape)
    volume = nifti.decode(_bytes(tmp_path, stored, affine), "v.nii.gz")
    assert nifti.axis_codes(volume.affine) == codes
    canonical = nifti.to_ras(volume.affine, volume.shape)
    assert np.array_equal(canonical.array(volume.data), ras)
    assert np.allclose(canonical.affine(volume.affine), ras_affine)
    reference = nib.as_closest_canonical(nib.load(tmp_path / "v.nii.gz"))
    assert np.array_equal(np.asarray(reference.dataobj), ras)


def test_truncated_and_corrupt_gzip_are_named(tmp_path):
    data = _bytes(tmp_path, ct_array())
    with pytest.raises(InputError, match=r"ct.nii.gz is truncated: its gzip stream ends early"):
        nifti.decode(data[: len(data) // 2], "ct.nii.gz")
    corrupt = bytearray(data)
    corrupt[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    with pytest.raises(InputError, match=r"ct\.nii\.gz is (corrupt|truncated)"):
        nifti.decode(bytes(corrupt), "ct.nii.gz")


def test_truncated_uncompressed_file_is_named(tmp_path):
    data = _bytes(tmp_path, ct_array(), name="v.nii")
    with pytest.raises(InputError, match=r"v.nii is truncated: its header promises [\d,]+ bytes"):
        nifti.decode(data[:-100], "v.nii")


@pytest.mark.parametrize(
    "content", [b"just some text, not an image\n" * 30, gzip.compress(b"<html></html>" * 40)]
)
def test_files_that_are_not_nifti(content):
    with pytest.raises(InputError, match=r"x\.nii\.gz is not a NIfTI file"):
        nifti.decode(content, "x.nii.gz")


def test_nifti2_is_read(tmp_path):
    path = tmp_path / "v2.nii"
    nib.save(nib.Nifti2Image(ct_array(), AFFINE), path)
    volume = nifti.decode(path.read_bytes(), "v2.nii")
    assert np.array_equal(nifti.hounsfield(volume), ct_array())


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((20, 20), "is 2D"),
        ((20, 20, 1), "is 2D"),
        ((20, 20, 10, 3), "is 4D"),
        ((20, 20, 10, 1, 2), "is 5D"),
    ],
)
def test_volumes_must_be_3d(tmp_path, shape, message):
    with pytest.raises(InputError, match=message):
        nifti.decode(_bytes(tmp_path, np.zeros(shape, np.int16)), "v.nii.gz")


def test_a_trailing_singleton_dimension_is_dropped(tmp_path):
    volume = nifti.decode(_bytes(tmp_path, np.zeros((20, 20, 10, 1), np.int16)), "v.nii.gz")
    assert volume.shape == (20, 20, 10)


def test_nan_and_inf_are_counted(tmp_path):
    ct = ct_array().astype(np.float32)
    ct[0, 0, 0] = ct[1, 1, 1] = np.nan
    ct[2, 2, 2] = np.inf
    volume = nifti.decode(_bytes(tmp_path, ct), "ct.nii.gz")
    with pytest.raises(InputError, match=r"ct\.nii\.gz contains 2 NaN and 1 infinite voxels"):
        nifti.hounsfield(volume)


def _patch_pixdim(data: bytes, axis: int, value: float) -> bytes:
    raw = bytearray(gzip.decompress(data))
    raw[76 + 4 * axis : 80 + 4 * axis] = np.float32(value).tobytes()
    return bytes(raw)


@pytest.mark.parametrize("value", [0.0, -1.5])
def test_zero_or_negative_spacing(tmp_path, value):
    data = _patch_pixdim(_bytes(tmp_path, ct_array()), 2, value)
    with pytest.raises(InputError, match="zero, negative or non-finite voxel spacing"):
        nifti.decode(data, "ct.nii.gz")


def test_degenerate_affine(tmp_path):
    raw = bytearray(gzip.decompress(_bytes(tmp_path, ct_array())))
    raw[300:304] = np.float32(0.0).tobytes()  # srow_y[1]: the j axis has no length
    with pytest.raises(
        InputError, match=r"ct.nii.gz has a degenerate affine \(voxel spacing 1.5 x 0"
    ):
        nifti.decode(bytes(raw), "ct.nii.gz")


@pytest.mark.parametrize(
    ("values", "hint"),
    [
        (np.linspace(0.0, 1.0, 24 * 20 * 16, dtype=np.float32), "normalised"),
        (np.arange(24 * 20 * 16, dtype=np.uint16) % 4000, "rescale intercept"),
    ],
)
def test_values_must_be_hounsfield_units(tmp_path, values, hint):
    volume = nifti.decode(_bytes(tmp_path, values.reshape(24, 20, 16)), "ct.nii.gz")
    with pytest.raises(InputError, match=f"does not look like a CT in Hounsfield units.*{hint}"):
        nifti.hounsfield(volume)


def test_values_beyond_int16_are_refused(tmp_path):
    ct = ct_array().astype(np.float32)
    ct[0, 0, 0] = 40000.0
    with pytest.raises(InputError, match="beyond the int16 range"):
        nifti.hounsfield(nifti.decode(_bytes(tmp_path, ct), "ct.nii.gz"))


def test_binary_masks(tmp_path):
    mask = np.zeros((6, 6, 6), np.uint8)
    mask[1:3, 2:4, 3:5] = 255
    assert nifti.binary(nifti.decode(_bytes(tmp_path, mask), "m.nii.gz")).sum() == 8
    mask[0, 0, 0], mask[5, 5, 5] = 1, 2
    with pytest.raises(InputError, match=r"m\.nii\.gz is not a binary mask: it holds 3 different"):
        nifti.binary(nifti.decode(_bytes(tmp_path, mask), "m.nii.gz"))


def test_label_maps(tmp_path):
    labels = np.zeros((6, 6, 6), np.int16)
    labels[1:3] = 300
    out = nifti.label_map(nifti.decode(_bytes(tmp_path, labels), "l.nii.gz"))
    assert out.dtype == np.uint16 and out.max() == 300
    labels[0, 0, 0] = -1
    with pytest.raises(InputError, match="negative values"):
        nifti.label_map(nifti.decode(_bytes(tmp_path, labels), "l.nii.gz"))
    fractional = np.full((6, 6, 6), 0.5, np.float32)
    with pytest.raises(InputError, match="non-integer values"):
        nifti.label_map(nifti.decode(_bytes(tmp_path, fractional), "l.nii.gz"))


def test_same_grid_within_tolerance():
    ct = nifti.Grid("ct.nii.gz", (24, 20, 16), AFFINE)
    rounded = nifti.Grid("m.nii.gz", (24, 20, 16), AFFINE.astype(np.float32).astype(float))
    nifti.check_same_grid(ct, rounded)  # float32 header rounding is not a different grid
    shifted = AFFINE.copy()
    shifted[0, 3] += 1.5  # one voxel
    with pytest.raises(InputError, match=r"m.nii.gz is not on the CT's grid: .* up to 1.5 mm"):
        nifti.check_same_grid(ct, nifti.Grid("m.nii.gz", (24, 20, 16), shifted))
    flipped = AFFINE @ np.diag([-1.0, 1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="orientation RPS vs LPS"):
        nifti.check_same_grid(ct, nifti.Grid("m.nii.gz", (24, 20, 16), flipped))
    with pytest.raises(
        InputError, match=r"has shape 24 x 20 x 15 but the CT ct\.nii\.gz has 24 x 20"
    ):
        nifti.check_same_grid(ct, nifti.Grid("m.nii.gz", (24, 20, 15), AFFINE))


def test_grid_affine_from_spacing_and_codes():
    assert np.array_equal(nifti.grid_affine((1, 1, 3), "RAS"), np.diag([1.0, 1.0, 3.0, 1.0]))
    lps = nifti.grid_affine((1, 2, 3), "lps")
    assert nifti.axis_codes(lps) == "LPS" and nifti.spacing_of(lps) == (1.0, 2.0, 3.0)
    assert nifti.axis_codes(nifti.grid_affine((1, 1, 1), "SAL")) == "SAL"
    for bad in ("RAA", "RA", "XYZ", "RASR"):
        with pytest.raises(ValueError, match="three letters"):
            nifti.grid_affine((1, 1, 3), bad)
    with pytest.raises(ValueError, match="must be positive"):
        nifti.grid_affine((1, 0, 3), "RAS")


def test_obliquity():
    assert nifti.obliquity_deg(AFFINE) == 0.0
    angle = np.radians(10.0)
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    assert nifti.obliquity_deg(rotation @ AFFINE) == pytest.approx(10.0, abs=1e-6)


def _blob(shape=(13, 11, 9), seed=0) -> np.ndarray:
    """An irregular blob away from the edges, with an empty slice inside its k range."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    mask[3:9, 2:8, 2:7] = rng.random((6, 6, 5)) < 0.4
    mask[5, 4, 2] = mask[7, 6, 6] = True
    mask[:, :, 4] = False
    return mask


@pytest.mark.parametrize(
    ("dtype", "value", "header"),
    [
        (np.uint8, 1, {}),
        (np.uint8, 255, {}),
        (np.int16, -1, {}),
        (np.float32, 1.0, {}),
        (np.uint8, 1, {"scl_slope": 2.0, "scl_inter": 0.0}),
        (np.uint8, 2, {"scl_slope": 1.0, "scl_inter": -1.0}),  # zero bytes are not background
    ],
)
def test_mask_decoding_slice_by_slice_equals_the_dense_path(tmp_path, dtype, value, header):
    blob = _blob()
    stored = np.where(blob, value, 0).astype(dtype)
    if header.get("scl_inter"):
        stored = np.where(blob, value, 1).astype(dtype)  # 1 - 1 = 0 is background
    data = _bytes(tmp_path, stored, **header)
    grid, box = nifti.decode_mask(data, "m.nii.gz")
    dense = nifti.binary(nifti.decode(data, "m.nii.gz"))
    assert np.array_equal(dense, blob)
    assert grid.shape == blob.shape and np.allclose(grid.affine, AFFINE)
    assert box.origin == (3, 2, 2) and np.array_equal(box.to_dense(blob.shape), blob)


def test_mask_decoding_of_empty_and_negative_zero_masks(tmp_path):
    empty = np.zeros((5, 6, 7), np.uint8)
    _, box = nifti.decode_mask(_bytes(tmp_path, empty), "m.nii.gz")
    assert box.data.shape == (0, 0, 0)
    negative_zero = np.zeros((5, 6, 7), np.float32)
    negative_zero[:, :, 3] = -0.0  # non-zero bytes, no set voxel
    negative_zero[1, 2, 5] = 1.0
    _, box = nifti.decode_mask(_bytes(tmp_path, negative_zero), "m.nii.gz")
    assert box.origin == (1, 2, 5) and box.data.shape == (1, 1, 1)


def test_mask_decoding_checks_like_the_dense_path(tmp_path):
    mask = _blob().astype(np.uint8)
    mask[5, 4, 2], mask[7, 6, 6] = 2, 3
    with pytest.raises(InputError, match=r"m\.nii\.gz is not a binary mask: it holds 3 different"):
        nifti.decode_mask(_bytes(tmp_path, mask), "m.nii.gz")
    floats = _blob().astype(np.float32)
    floats[0, 0, 0], floats[1, 1, 8] = np.nan, np.inf
    with pytest.raises(InputError, match=r"m\.nii\.gz contains 1 NaN and 1 infinite voxels"):
        nifti.decode_mask(_bytes(tmp_path, floats), "m.nii.gz")
    data = _bytes(tmp_path, _blob().astype(np.uint8))
    with pytest.raises(InputError, match=r"m\.nii\.gz is truncated"):
        nifti.decode_mask(data[: len(data) * 2 // 3], "m.nii.gz")
    corrupt = bytearray(data)
    corrupt[-8] ^= 0xFF  # the CRC: caught only by decoding to the end
    with pytest.raises(InputError, match=r"m\.nii\.gz is corrupt"):
        nifti.decode_mask(bytes(corrupt), "m.nii.gz")


@pytest.mark.parametrize("codes", ["LAS", "LPS", "PSR", "ILA", "SAL"])
def test_boxes_are_brought_to_ras_like_whole_arrays(codes):
    ras = _blob(shape=(13, 11, 9))
    transform = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(tuple(codes)))
    stored = apply_orientation(ras, transform)
    affine = np.eye(4) @ inv_ornt_aff(transform, ras.shape)
    canonical = nifti.to_ras(affine, stored.shape)
    box = canonical.box(box_mask(stored))
    assert np.array_equal(box.to_dense(ras.shape), ras)
