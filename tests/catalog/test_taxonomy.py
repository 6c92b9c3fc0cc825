"""The label space (catalog/taxonomy.py, catalog/taxonomy.csv)."""

import csv
from collections import Counter
from pathlib import Path

import pytest

from catalog.taxonomy import LEVELS, SYSTEMS, load_taxonomy

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
PAPER_COUNTS = {
    "Skeletal": 93,
    "Abdominal": 42,
    "Mediastinal": 25,
    "Esophageal": 2,
    "Breast": 3,
    "Neural/soft tissue": 5,
}


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy()


def test_every_name_once(taxonomy):
    assert len(taxonomy) == 210
    assert len(set(taxonomy.names)) == 210


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference notes not beside the repo")
def test_names_are_exactly_the_reference_vocabulary(taxonomy):
    with open(REFERENCE / "radgenome_chestct_labels.csv") as f:
        reference = {row["name"]: row["system_guess"] for row in csv.DictReader(f)}
    assert set(taxonomy.names) == set(reference)
    assert {i.name: i.system for i in taxonomy.labels} == reference


def test_system_counts_match_the_paper(taxonomy):
    counts = Counter(info.system for info in taxonomy.labels)
    assert set(counts) == set(SYSTEMS) and len(SYSTEMS) == 10
    for system, expected in PAPER_COUNTS.items():
        assert counts[system] == expected
    rest = sum(counts[s] for s in ("Cardiac", "Pulmonary", "Airway", "Endocrine"))
    assert rest == 40


def test_parent_chains_end_at_their_system_without_cycles(taxonomy):
    for info in taxonomy.labels:
        seen = {info.name}
        node = info.parent
        while node not in SYSTEMS:
            assert node not in seen, f"cycle through {node}"
            seen.add(node)
            assert taxonomy[node].system == info.system
            node = taxonomy[node].parent
        assert node == info.system
        assert len(seen) <= 3  # organ > substructure > leaf below the system


def test_levels_organ_and_substructure_follow_the_tree(taxonomy):
    for info in taxonomy.labels:
        assert info.level in LEVELS
        depth = len(taxonomy.ancestors(info.name))  # includes the system
        assert LEVELS[depth - 1] == info.level
        assert info.organ == ([info.name, *taxonomy.ancestors(info.name)][depth - 1])
        if info.level == "organ":
            assert info.substructure == "" and info.parent == info.system
        elif info.level == "substructure":
            assert info.substructure == info.name and info.parent == info.organ
        else:
            assert info.substructure == info.parent
    rib = taxonomy["left rib 7"]
    assert (rib.organ, rib.substructure, rib.level) == ("rib", "left rib", "leaf")
    auricle = taxonomy["left auricle of heart"]
    assert (auricle.organ, auricle.substructure) == ("heart atrium", "left heart atrium")


def test_unions_are_acyclic_within_a_system_and_ordered(taxonomy):
    order = taxonomy.union_order()
    assert sorted(order) == sorted(taxonomy.names)
    position = {name: i for i, name in enumerate(order)}
    for info in taxonomy.labels:
        for member in info.union_of:
            assert taxonomy[member].system == info.system
            assert position[member] < position[info.name]
    assert set(taxonomy["rib 7"].union_of) == {"left rib 7", "right rib 7"}
    assert set(taxonomy["lung"].union_of) == {"left lung", "right lung"}


def test_containers_cover_tree_and_unions(taxonomy):
    assert set(taxonomy.containers("left rib 7")) == {"left rib", "rib", "rib 7", "bone"}
    assert "lung" in taxonomy.containers("right lung middle lobe")
    assert taxonomy.containers("skin") == ()


def test_systems_index_the_label_axis(taxonomy):
    indices = [i for s in SYSTEMS for i in taxonomy.system_indices(s)]
    assert sorted(indices) == list(range(210))
    assert taxonomy.index("heart") in taxonomy.system_indices("Cardiac")
    with pytest.raises(KeyError, match="not one of the 210 classes"):
        taxonomy.index("hearts")
