"""Input folders on disk (storage/files.py); the S3 side runs in tests/storage/test_s3.py."""

import pytest

from storage.files import Folder, read_text, walk


def test_list_read_and_child(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a.nii.gz").write_bytes(b"abc")
    folder = Folder(str(tmp_path))
    assert [(e.name, e.is_dir) for e in folder.list()] == [("a.nii.gz", False), ("b", True)]
    assert folder.list()[0].size == 3
    assert folder.read("a.nii.gz") == b"abc"
    assert folder.child("b").list() == [] and Folder(str(tmp_path / "none")).list() == []
    with pytest.raises(FileNotFoundError, match=r"missing\.nii\.gz does not exist"):
        folder.read("missing.nii.gz")


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../x", "", "a\\b"])
def test_names_cannot_leave_the_folder(tmp_path, name):
    folder = Folder(str(tmp_path))
    with pytest.raises(ValueError, match="is not a single file or folder name"):
        folder.child(name)
    with pytest.raises(ValueError, match="is not a single file or folder name"):
        folder.read(name)


def test_walk_prunes_and_goes_level_by_level(tmp_path):
    for path in ("x/y/v.nii.gz", "x/seg_v/heart.nii.gz", "z/w.nii.gz"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    visited = [
        f.url.removeprefix(str(tmp_path))
        for f, _ in walk(Folder(str(tmp_path)), lambda n: n.startswith("seg_"))
    ]
    assert visited == ["", "/x", "/z", "/x/y"]


def test_read_text(tmp_path):
    (tmp_path / "map.csv").write_text("id,name\n1,heart\n")
    assert read_text(str(tmp_path / "map.csv")) == "id,name\n1,heart\n"
    with pytest.raises(FileNotFoundError, match=r"none\.csv does not exist"):
        read_text(str(tmp_path / "none.csv"))


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
