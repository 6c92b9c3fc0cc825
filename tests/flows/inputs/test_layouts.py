"""Input layouts (flows/inputs/layouts.py) on real NIfTI trees, ingested in-process into sources."""

import tracemalloc
from pathlib import Path

import dask
import nibabel as nib
import numpy as np
import pytest
from niftis import AFFINE, BOXES, SHAPE, ct_array, generic_study, mask_array, save, ts_study

from catalog.taxonomy import load_taxonomy
from catalog.totalsegmentator import (
    default_name_map,
    parse_name_map,
    v2_class_map,
)
from flows.ingest import ingest
from flows.inputs.layouts import LayoutOptions, discover
from flows.inputs.nifti import InputError
from flows.inputs.staging import stage
from storage.files import Folder
from storage.location import StoreRef
from storage.sources import list_studies, open_sources, read_available, read_ct, read_masks

TAXONOMY = load_taxonomy()


def _ingest(inputs, store: Path):
    with dask.config.set(scheduler="synchronous"):
        return ingest(inputs, StoreRef(str(store)))


def _canonical(array: np.ndarray) -> np.ndarray:
    return np.asarray(nib.as_closest_canonical(nib.Nifti1Image(array, AFFINE)).dataobj)


def _masks(store: Path, study_id: str) -> dict[str, np.ndarray]:
    root = open_sources(StoreRef(str(store)))
    shape = tuple(root["studies"][study_id].attrs["shape"])
    out = {}
    for label, origin, box in read_masks(root, study_id):
        dense = np.zeros(shape, bool)
        dense[tuple(slice(o, o + n) for o, n in zip(origin, box.shape, strict=True))] = box
        out[TAXONOMY.names[label]] = dense
    return out


def _available(store: Path, study_id: str) -> set[str]:
    flags = read_available(open_sources(StoreRef(str(store))), study_id)
    return {name for name, flag in zip(TAXONOMY.names, flags, strict=True) if flag}


# --- generic -----------------------------------------------------------------------------------


def test_generic_layout_canonicalises_and_derives_parents(tmp_path):
    for study_id in ("s2", "s1"):
        generic_study(tmp_path / "in", study_id)
    (tmp_path / "in" / ".ipynb_checkpoints").mkdir()  # hidden folders are not studies
    inputs = discover("generic", Folder(str(tmp_path / "in")), LayoutOptions(split="test"))
    assert [i.study_id for i in inputs] == ["s1", "s2"]
    summary = _ingest(inputs, tmp_path / "s.zarr")
    assert summary.ingested == ["s1", "s2"] and not summary.failed
    root = open_sources(StoreRef(str(tmp_path / "s.zarr")))
    [s1, _] = list_studies(StoreRef(str(tmp_path / "s.zarr")))
    assert s1.split == "test" and s1.spacing == (1.5, 1.5, 2.5)
    attrs = root["studies"]["s1"].attrs
    assert attrs["source_orientation"] == "LPS" and attrs["layout"] == "generic"
    assert np.array_equal(read_ct(root, "s1"), _canonical(ct_array()))
    masks = _masks(tmp_path / "s.zarr", "s1")
    for name, box in BOXES.items():
        assert np.array_equal(
            masks.get(name, np.zeros(SHAPE, bool)), _canonical(mask_array(box)) > 0
        )
    left = masks["left lung upper lobe"] | masks["left lung lower lobe"]
    assert np.array_equal(masks["left lung"], left)
    assert np.array_equal(masks["lung"], masks["left lung"] | masks["right lung"])
    available = _available(tmp_path / "s.zarr", "s1")
    assert {"left lung", "right lung", "lung", "rib 7", "right rib", "rib", "bone"} <= available
    assert "right rib 7" in available and "right rib 7" not in masks  # given, empty
    assert "liver" not in available and "left rib 7" not in available  # absent: unknown
    assert set(attrs["derived"]) == available - set(BOXES)
    assert attrs["derived_partial"]["rib 7"] == ["left rib 7"]
    paths = [entry["path"] for entry in attrs["inputs"]]
    assert paths[0] == "s1/ct.nii.gz" and "s1/masks/heart.nii.gz" in paths


def test_generic_mask_names_must_be_classes(tmp_path):
    folder = generic_study(tmp_path / "in", "s1", {"heart": BOXES["heart"]})
    save(folder / "masks" / "hearts.nii.gz", mask_array(BOXES["heart"]))
    [study] = discover("generic", Folder(str(tmp_path / "in")))
    with pytest.raises(InputError, match=r"'hearts' maps to nothing.*did you mean 'heart'"):
        stage(study.load().masks, SHAPE, TAXONOMY)


# --- TotalSegmentator --------------------------------------------------------------------------


@pytest.mark.parametrize("multilabel", [False, True])
def test_totalsegmentator_names_map_to_classes(tmp_path, multilabel):
    ts_study(tmp_path / "in", "s0001", multilabel=multilabel)
    inputs = discover("totalsegmentator", Folder(str(tmp_path / "in")))
    summary = _ingest(inputs, tmp_path / "s.zarr")
    assert summary.ingested == ["s0001"], summary.failed
    [warning] = summary.warnings["s0001"]
    assert "autochthon_left" in warning and "no class in the vocabulary" in warning
    [study] = list_studies(StoreRef(str(tmp_path / "s.zarr")))
    attrs = open_sources(StoreRef(str(tmp_path / "s.zarr")))["studies"][study.study_id].attrs
    assert attrs["unmapped"] == ["autochthon_left"]
    masks = _masks(tmp_path / "s.zarr", "s0001")
    assert np.array_equal(masks["heart"], _canonical(mask_array(BOXES["heart"])) > 0)
    assert np.array_equal(
        masks["thoracic vertebrae"], _canonical(mask_array(BOXES["thoracic vertebrae 7 (t7)"])) > 0
    )
    available = _available(tmp_path / "s.zarr", "s0001")
    assert {"lung", "left lung", "right lung", "thoracic vertebrae", "rib 7"} <= available
    if multilabel:
        # every class of the class map was segmented: the ones without voxels are empty, given
        assert {"spleen", "liver", "left kidney cyst"} <= available
        assert "liver" not in masks
    else:
        assert "liver" not in available
    assert "mandible" not in available and "skin" not in available


def test_totalsegmentator_unknown_names_fail_the_study(tmp_path):
    folder = ts_study(tmp_path / "in", "s1", extra=False)
    save(folder / "segmentations" / "lung_uper_lobe_left.nii.gz", mask_array(BOXES["heart"]))
    [study] = discover("totalsegmentator", Folder(str(tmp_path / "in")))
    with pytest.raises(
        InputError, match=r"lung_uper_lobe_left.nii.gz: label name .* maps to nothing"
    ):
        stage(study.load().masks, SHAPE, TAXONOMY)


def test_label_ids_must_be_in_the_class_map(tmp_path):
    ts_study(tmp_path / "in", "s1", multilabel=True, extra=False)
    ids = {i: n for i, n in v2_class_map().items() if n != "heart"}
    options = LayoutOptions(class_map=ids)
    [study] = discover("totalsegmentator", Folder(str(tmp_path / "in")), options)
    with pytest.raises(InputError, match=r"label id 51 \(210 voxels\) is not in the class map"):
        stage(study.load().masks, SHAPE, TAXONOMY)
    renamed = {**ids, 51: "heart_v3"}
    [study] = discover(
        "totalsegmentator", Folder(str(tmp_path / "in")), LayoutOptions(class_map=renamed)
    )
    with pytest.raises(InputError, match="named 'heart_v3', which maps to nothing"):
        stage(study.load().masks, SHAPE, TAXONOMY)


def test_two_ids_or_files_mapping_to_one_class_are_refused(tmp_path):
    ids = {**v2_class_map(), 200: "heart"}
    with pytest.raises(
        ValueError, match=r"ids 51 \(heart\) and 200 \(heart\) both map to the class"
    ):
        discover("totalsegmentator", Folder(str(tmp_path)), LayoutOptions(class_map=ids))
    folder = ts_study(tmp_path / "in", "s1", extra=False)
    save(folder / "segmentations" / "heart_custom.nii.gz", mask_array(BOXES["heart"]))
    table = "totalsegmentator,class\nheart,heart\nheart_custom,heart\n"
    rest = "".join(
        f"{n},{c or ''}\n" for n, c in default_name_map().classes.items() if n != "heart"
    )
    options = LayoutOptions(name_map=parse_name_map(table + rest, "mine.csv"))
    [study] = discover("totalsegmentator", Folder(str(tmp_path / "in")), options)
    with pytest.raises(
        InputError,
        match=r"two mask files map to the class 'heart': heart\.nii\.gz and heart_custom",
    ):
        stage(study.load().masks, SHAPE, TAXONOMY)


# --- RadGenome ----------------------------------------------------------------------------------

RADGENOME_SHAPE = (30, 26, 12)  # RAS, 1 x 1 x 3 mm: the 3 mm axis has the fewest slices


def _radgenome(root: Path, volume: str, names=None, shape=RADGENOME_SHAPE, ct=None) -> None:
    """A RadGenome tree: CT under *_preprocessed/, masks under anatomy_mask/seg_<volume>/."""
    split, patient, letter, _ = volume.split("_")
    folder = root / f"{split}_preprocessed" / f"{split}_{patient}" / f"{split}_{patient}{letter}"
    values = ct if ct is not None else np.full(shape, -1000, np.int16)
    if ct is None:
        values[5:25, 4:22, :] = 30
        values[14:16, 18:21, :] = 800
    save(folder / f"{volume}.nii.gz", values, np.eye(4))
    for name in names if names is not None else TAXONOMY.names:
        mask = np.zeros(shape, np.uint8)
        if name == "heart":
            mask[8:14, 6:12, 3:7] = 1
        save(root / "anatomy_mask" / f"seg_{volume}" / f"{name}.nii.gz", mask, np.eye(4))


def test_radgenome_layout_with_all_210_masks(tmp_path):
    _radgenome(tmp_path / "rg", "train_1_a_1")
    _radgenome(tmp_path / "rg", "valid_7_b_2", names=["heart", "left lung"])
    inputs = discover("radgenome", Folder(str(tmp_path / "rg")))
    assert [(i.study_id, i.split) for i in inputs] == [
        ("train_1_a_1", "train"),
        ("valid_7_b_2", "valid"),
    ]
    summary = _ingest(inputs, tmp_path / "s.zarr")
    assert summary.ingested == ["train_1_a_1", "valid_7_b_2"], summary.failed
    assert "train_1_a_1" not in summary.warnings
    assert "2 mask files instead of 210" in summary.warnings["valid_7_b_2"][0]
    root = open_sources(StoreRef(str(tmp_path / "s.zarr")))
    train, _ = list_studies(StoreRef(str(tmp_path / "s.zarr")))
    attrs = root["studies"]["train_1_a_1"].attrs
    assert train.spacing == (1.0, 1.0, 3.0) and attrs["preset"]["orientation"] == "RAS"
    assert np.array_equal(
        root["studies"]["train_1_a_1"].attrs["affine"], np.diag([1.0, 1.0, 3.0, 1.0])
    )
    assert read_available(root, "train_1_a_1").all() and not attrs["derived"]
    voxels = root["studies"]["train_1_a_1"]["mask_voxels"][...]
    assert voxels[TAXONOMY.index("heart")] == 6 * 6 * 4 and voxels.sum() == 6 * 6 * 4


def test_radgenome_preset_is_checked_and_overridable(tmp_path):
    # stored as S-A-R with the 3 mm axis first: the RAS preset does not fit, the flags do
    ct = np.full((12, 26, 30), -1000, np.int16)
    ct[:, 4:22, 5:25] = 30
    ct[:, 18:21, 14:16] = 800
    _radgenome(tmp_path / "rg", "train_2_a_1", names=["heart"], shape=(12, 26, 30), ct=ct)
    [study] = discover("radgenome", Folder(str(tmp_path / "rg")))
    with pytest.raises(InputError, match=r"does not fit the preset: .* axis 3 .* has 30 slices"):
        study.load()
    flagged = LayoutOptions(spacing=(3.0, 1.0, 1.0), orientation="SAR")
    [study] = discover("radgenome", Folder(str(tmp_path / "rg")), flagged)
    loaded = study.load()
    assert loaded.ct.shape == (30, 26, 12) and loaded.spacing == (1.0, 1.0, 3.0)
    assert np.array_equal(loaded.ct, np.transpose(ct, (2, 1, 0)))


def test_radgenome_refuses_geometry_and_values_it_does_not_expect(tmp_path):
    _radgenome(tmp_path / "a", "train_3_a_1", names=["heart"])
    ct_file = next((tmp_path / "a").rglob("train_3_a_1.nii.gz"))
    save(ct_file, np.full(RADGENOME_SHAPE, -1000, np.int16), np.diag([0.7, 0.7, 2.5, 1.0]))
    [study] = discover("radgenome", Folder(str(tmp_path / "a")))
    with pytest.raises(InputError, match=r"non-identity affine .* use --layout generic"):
        study.load()
    normalised = np.random.default_rng(0).random(RADGENOME_SHAPE).astype(np.float32)
    _radgenome(tmp_path / "b", "train_4_a_1", names=["heart"], ct=normalised)
    [study] = discover("radgenome", Folder(str(tmp_path / "b")))
    with pytest.raises(InputError, match="not look like a CT in Hounsfield units"):
        study.load()


def test_radgenome_pairs_volumes_and_mask_folders(tmp_path):
    _radgenome(tmp_path / "rg", "train_5_a_1", names=["heart"])
    _radgenome(tmp_path / "rg", "train_6_a_1", names=["heart"])
    next((tmp_path / "rg").rglob("train_6_a_1.nii.gz")).unlink()  # masks without their CT
    for mask in (tmp_path / "rg" / "anatomy_mask" / "seg_train_5_a_1").iterdir():
        mask.unlink()
    (tmp_path / "rg" / "anatomy_mask" / "seg_train_5_a_1").rmdir()  # a CT without masks
    inputs = {i.study_id: i for i in discover("radgenome", Folder(str(tmp_path / "rg")))}
    with pytest.raises(InputError, match="no masks: no folder seg_train_5_a_1"):
        inputs["train_5_a_1"].load()
    with pytest.raises(InputError, match="missing CT"):
        inputs["train_6_a_1"].load()
    only = discover("radgenome", Folder(str(tmp_path / "rg")), LayoutOptions(studies=("nope",)))
    with pytest.raises(InputError, match=r"no volume nope\.nii\.gz"):
        only[0].load()


# --- memory ------------------------------------------------------------------------------------


def test_binary_masks_are_streamed_one_at_a_time(tmp_path):
    """Reading 40 mask files of 0.5 MB each never holds more than a few of them dense."""
    shape = (80, 80, 80)
    folder = tmp_path / "in" / "big"
    ct = np.full(shape, -1000, np.int16)
    ct[10:70, 10:70, :] = 50
    ct[38:42, 60:66, :] = 700
    save(folder / "ct.nii.gz", ct, np.eye(4))
    names = [n for n in TAXONOMY.names if not TAXONOMY[n].union_of][:40]
    for i, name in enumerate(names):
        mask = np.zeros(shape, np.uint8)
        mask[i : 40 + i, 5:75, 10:60] = 1
        save(folder / "masks" / f"{name}.nii.gz", mask, np.eye(4))
    [study] = discover("generic", Folder(str(tmp_path / "in")))
    loaded = study.load()
    one_dense = int(np.prod(shape))
    tracemalloc.start()
    staged = stage(loaded.masks, shape, TAXONOMY)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(staged) == 40
    assert peak < 10 * one_dense, (
        f"peak {peak / 1e6:.1f} MB; all 40 dense: {40 * one_dense / 1e6:.0f} MB"
    )
