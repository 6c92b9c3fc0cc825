"""The sources store (storage/sources.py, storage/location.py)."""

from pathlib import Path

import numpy as np
import pytest
from digests import tree_digest

from storage.location import StoreRef, check_study_id
from storage.sources import (
    create_sources,
    list_studies,
    open_sources,
    read_available,
    read_composed,
    read_ct,
    read_masks,
    write_study,
)

LABELS = ["a", "b", "c", "d"]


def _study(root, study_id="s1"):
    ct = np.arange(70 * 80 * 90, dtype=np.int16).reshape(70, 80, 90) % 2000 - 1000
    box = np.zeros((3, 4, 5), bool)
    box[0, 0, 0] = box[-1, -1, -1] = True
    masks = [(0, (60, 70, 80), box, False), (2, (0, 0, 0), np.zeros((0, 0, 0), bool), True)]
    digest = write_study(
        root,
        study_id,
        ct=ct,
        spacing=(0.7, 0.7, 2.5),
        affine=np.diag([0.7, 0.7, 2.5, 1.0]),
        masks=iter(masks),
        attrs={"split": "train", "layout": "test"},
    )
    return ct, box, digest


def test_round_trip_keeps_ct_boxes_counts_and_availability(tmp_path):
    ref = StoreRef(str(tmp_path / "sources.zarr"))
    ct, box, _ = _study(create_sources(ref, LABELS))
    root = open_sources(ref)
    [study] = list_studies(root)
    assert (study.study_id, study.split, study.shape) == ("s1", "train", (70, 80, 90))
    assert study.spacing == (0.7, 0.7, 2.5)
    assert np.array_equal(read_ct(root, "s1"), ct)
    # label 0 has voxels, label 2 was given but empty (available), 1 and 3 absent (unknown)
    assert read_available(root, "s1").tolist() == [True, False, True, False]
    assert read_composed(root, "s1").tolist() == [False, False, True, False]
    [(label, origin, data)] = list(read_masks(root, "s1"))
    assert (label, origin) == (0, (60, 70, 80))
    assert np.array_equal(data, box)
    group = root["studies"]["s1"]
    assert group["mask_voxels"][...].tolist() == [2, 0, 0, 0]
    assert group["mask_box"][0].tolist() == [60, 70, 80, 63, 74, 85]
    assert list(read_masks(root, "s1", skip=np.array([True, False, False, False]))) == []


def test_masks_are_stored_sparsely(tmp_path):
    ref = StoreRef(str(tmp_path / "sources.zarr"))
    _study(create_sources(ref, LABELS))
    shards = [p for p in (tmp_path / "sources.zarr/studies/s1/masks/c").rglob("*") if p.is_file()]
    assert len(shards) == 1  # one label has voxels: one shard object, the others none


def test_incomplete_studies_are_invisible(tmp_path):
    ref = StoreRef(str(tmp_path / "sources.zarr"))
    root = create_sources(ref, LABELS)
    _study(root, "done")

    def crashing():
        yield 0, (0, 0, 0), np.ones((2, 2, 2), bool), False
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError):
        write_study(
            root,
            "half",
            ct=np.zeros((8, 8, 8), np.int16),
            spacing=(1, 1, 1),
            affine=np.eye(4),
            masks=crashing(),
            attrs={},
        )
    assert [s.study_id for s in list_studies(open_sources(ref))] == ["done"]


def test_same_input_gives_identical_bytes(tmp_path):
    digests = []
    for name in ("one", "two"):
        ref = StoreRef(str(tmp_path / name))
        _, _, content = _study(create_sources(ref, LABELS))
        digests.append((content, tree_digest(tmp_path / name)))
    assert digests[0] == digests[1]


def test_label_axis_must_match(tmp_path):
    ref = StoreRef(str(tmp_path / "sources.zarr"))
    create_sources(ref, LABELS)
    with pytest.raises(ValueError, match="another label vocabulary"):
        create_sources(ref, ["x"])


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no sources store"):
        open_sources(StoreRef(str(tmp_path / "nothing.zarr")))


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/b", "", ".", "..", "x..y", "sp ace", "é", "-x"])
def test_study_ids_cannot_escape_the_store(bad):
    with pytest.raises(ValueError, match="is not allowed"):
        check_study_id(bad)


def test_good_study_ids_and_store_refs():
    assert check_study_id("train_1_a_1.nii") == "train_1_a_1.nii"
    ref = StoreRef("s3://bucket/data/sources.zarr", {"key": "SECRET"})
    assert "SECRET" not in repr(ref) and not ref.is_local
    assert ref.sibling("failures.json").url == "s3://bucket/data/failures.json"
    assert StoreRef("file:///tmp/x").local_path == Path("/tmp/x")


def test_a_store_of_another_format_is_refused_with_what_to_do(tmp_path):
    ref = StoreRef(str(tmp_path / "sources.zarr"))
    create_sources(ref, LABELS).attrs["format"] = 1  # as written before issue 7's layout
    for opening in (lambda: open_sources(ref), lambda: create_sources(ref, LABELS)):
        with pytest.raises(ValueError, match="format 1, and this rga reads format 2: ingest"):
            opening()
