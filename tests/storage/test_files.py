"""Input folders on disk only (storage/files.py): empty folders, names, symbolic links. Listing and
reading run on disk and on S3 in tests/storage/test_store_contract.py."""

import pytest

from storage.files import Folder


def test_an_empty_folder_lists_nothing(tmp_path):
    # object stores have no empty folders; disks do
    (tmp_path / "b").mkdir()
    folder = Folder(str(tmp_path))
    assert [(e.name, e.is_dir) for e in folder.list()] == [("b", True)]
    assert folder.child("b").list() == [] and folder.child("b").exists()


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../x", "", "a\\b"])
def test_names_cannot_leave_the_folder(tmp_path, name):
    folder = Folder(str(tmp_path))
    with pytest.raises(ValueError, match="is not a single file or folder name"):
        folder.child(name)
    with pytest.raises(ValueError, match="is not a single file or folder name"):
        folder.read(name)


def test_linked_folders_and_files_are_listed_as_what_they_point_at(tmp_path):
    # Datasets are often linked into place; fsspec alone lists a linked folder as "other".
    (tmp_path / "data" / "seg_a").mkdir(parents=True)
    (tmp_path / "data" / "seg_a" / "heart.nii.gz").write_bytes(b"h")
    (tmp_path / "data" / "a.nii.gz").write_bytes(b"ct")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "seg_a").symlink_to(tmp_path / "data" / "seg_a")
    (tmp_path / "linked" / "a.nii.gz").symlink_to(tmp_path / "data" / "a.nii.gz")
    (tmp_path / "linked" / "dangling").symlink_to(tmp_path / "nowhere")
    folder = Folder(str(tmp_path / "linked"))
    listed = [(e.name, e.is_dir) for e in folder.list()]
    assert listed == [("a.nii.gz", False), ("dangling", False), ("seg_a", True)]
    assert folder.read("a.nii.gz") == b"ct"
    assert folder.child("seg_a").read("heart.nii.gz") == b"h"
