"""TotalSegmentator names and ids mapped onto the vocabulary (catalog/totalsegmentator.py)."""

import csv

import pytest

from catalog.taxonomy import load_taxonomy
from catalog.totalsegmentator import default_name_map, parse_class_map, parse_name_map, v2_class_map

TAXONOMY = load_taxonomy()


def test_the_packaged_tables():
    names = default_name_map().classes
    v2 = v2_class_map()
    assert sorted(v2) == list(range(1, 118)) and len(set(v2.values())) == 117
    assert set(v2.values()) <= set(names)  # every v2 name is known (mapped or known unmapped)
    mapped = [c for c in names.values() if c]
    assert len(mapped) == len(set(mapped)), "the packaged table maps one name per class"
    assert set(mapped) <= set(TAXONOMY.names)
    assert names["atrial_appendage_left"] == "left auricle of heart"
    assert names["vertebrae_S1"] == "sacral vertebrae 1 (s1)"
    assert names["lung_upper_lobe_left"] == "left lung upper lobe"
    assert names["autochthon_left"] is None
    with pytest.raises(KeyError, match="is not one of the 210 classes"):
        parse_name_map("totalsegmentator,class\nheart,hearts\n", "x.csv")
    with pytest.raises(ValueError, match="id 3 is listed twice"):
        parse_class_map("id,name\n3,a\n3,b\n", "x.csv")
    with pytest.raises(ValueError, match="at least 1"):
        parse_class_map("id,name\n0,background\n", "x.csv")


def test_table_files_parse_like_the_packaged_ones(tmp_path):
    path = tmp_path / "structures.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["group", "original_idx", "structure", "id"])
        writer.writerow(["ribs", "26", "costal_cartilages", "118"])
    assert parse_class_map(path.read_text(), str(path)) == {118: "costal_cartilages"}
