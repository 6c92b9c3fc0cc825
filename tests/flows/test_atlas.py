"""The mean-shape atlas baseline (flows/atlas.py): its masks, availability, and its store."""

import shutil

import dask
import numpy as np
import pytest
import zarr
from digests import tree_digest

from catalog import SYSTEMS, open_catalog
from flows.atlas import predict_atlas, split_studies
from flows.cli import main
from storage.location import StoreRef

STUDIES = ["phantom-0000", "phantom-0001", "phantom-0002"]


@pytest.fixture(autouse=True)
def in_process():
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture(scope="module")
def truth(demo_dir):
    return open_catalog(str(demo_dir / "dataset.zarr"))[["mask", "pixel_spacing"]].load()


def test_atlas_is_the_thresholded_share_of_training_masks(demo_dir, truth, tmp_path):
    gt = StoreRef(str(demo_dir / "dataset.zarr"))
    dest = StoreRef(str(tmp_path / "atlas.zarr"))
    summary = predict_atlas(gt, dest, STUDIES, ["phantom-0002", "phantom-0000"], threshold=0.5)
    assert summary.classes == 210 and summary.predicted == ["phantom-0002", "phantom-0000"]
    names = ["mask", "region_mask", "footprint", "available", "pixel_spacing", "committed"]
    predicted = open_catalog(dest.url)[names].load()
    counts = truth.mask.values.sum(axis=0)  # (view, label, y, x)
    expected = counts >= 1.5  # at least half of three studies: two of them
    assert expected.any() and not np.array_equal(expected, truth.mask.values[0])
    for s in range(2):
        assert np.array_equal(predicted.mask.values[s], expected)
    assert list(predicted.study.values) == ["phantom-0002", "phantom-0000"]
    assert predicted.committed.all() and predicted.available.all()
    assert np.array_equal(predicted.footprint.values[0], expected.sum(axis=(-2, -1)))
    for r, system in enumerate(SYSTEMS):  # region masks are the per-system unions
        members = np.flatnonzero(predicted.system.values == system)
        union = expected[:, members].any(axis=1)
        assert np.array_equal(predicted.region_mask.values[0, :, r], union), system
    spacing = truth.pixel_spacing.sel(study=["phantom-0002", "phantom-0000"]).values
    assert np.array_equal(predicted.pixel_spacing.values, spacing)
    assert list(predicted.label.values) == list(truth.label.values)
    assert predicted.attrs["rga_prediction"]["training_studies"] == 3


def test_threshold_one_is_the_intersection_and_atlases_are_deterministic(demo_dir, truth, tmp_path):
    gt = StoreRef(str(demo_dir / "dataset.zarr"))
    for name in ("atlas.zarr", "again.zarr"):
        predict_atlas(gt, StoreRef(str(tmp_path / name)), STUDIES[:2], ["phantom-0002"], 1.0)
    predicted = open_catalog(str(tmp_path / "atlas.zarr")).mask.values[0]
    assert np.array_equal(predicted, truth.mask.values[0] & truth.mask.values[1])
    assert tree_digest(tmp_path / "atlas.zarr") == tree_digest(tmp_path / "again.zarr")


def test_unavailable_training_classes_do_not_count_as_empty(demo_dir, truth, tmp_path):
    copy = tmp_path / "dataset.zarr"
    shutil.copytree(demo_dir / "dataset.zarr", copy)
    heart, liver = list(truth.label.values).index("heart"), list(truth.label.values).index("liver")
    available = zarr.open_array(copy / "available", mode="r+")
    available[0, heart] = False  # study 0 does not have the heart
    available[:, liver] = False  # no study has the liver
    dest = StoreRef(str(tmp_path / "atlas.zarr"))
    summary = predict_atlas(StoreRef(str(copy)), dest, STUDIES, ["phantom-0002"], threshold=1.0)
    predicted = open_catalog(dest.url)[["mask", "available"]].load()
    masks = truth.mask.values
    # the heart comes from studies 1 and 2 only (an absent class is unknown, not empty)
    assert np.array_equal(
        predicted.mask.values[0, :, heart], masks[1, :, heart] & masks[2, :, heart]
    )
    assert not predicted.mask.values[0, :, liver].any()
    assert not predicted.available.values[0, liver] and predicted.available.values[0, heart]
    assert summary.classes == 209


def test_atlas_refuses_unknown_studies_and_bad_thresholds(demo_dir, tmp_path):
    gt = StoreRef(str(demo_dir / "dataset.zarr"))
    dest = StoreRef(str(tmp_path / "atlas.zarr"))
    with pytest.raises(KeyError, match="phantom-9999"):
        predict_atlas(gt, dest, ["phantom-9999"], ["phantom-0000"])
    with pytest.raises(ValueError, match="at least one target"):
        predict_atlas(gt, dest, STUDIES, [])
    with pytest.raises(ValueError, match="threshold"):
        predict_atlas(gt, dest, STUDIES, ["phantom-0000"], threshold=0.0)
    assert split_studies(gt, "train") == STUDIES and split_studies(gt, "valid") == []


def test_atlas_command(demo_dir, tmp_path, capsys):
    gt, dest = str(demo_dir / "dataset.zarr"), str(tmp_path / "atlas.zarr")
    assert main(["atlas", gt, dest, "--split", "train", "--scheduler", "threads"]) == 0
    assert "Atlas of 3 training studies (210 classes)" in capsys.readouterr().out
    assert open_catalog(dest).sizes["study"] == 3
    assert main(["atlas", gt, dest, "--scheduler", "threads"]) == 2  # no valid split here
    assert "at least one target study" in capsys.readouterr().err
