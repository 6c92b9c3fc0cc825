"""Study ids and store addresses (storage/location.py); the sources store's contracts run on
every store implementation in tests/storage/test_store_contract.py."""

from pathlib import Path

import pytest

from storage.location import StoreRef, check_study_id


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
