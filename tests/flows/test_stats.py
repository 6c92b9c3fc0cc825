"""Dataset statistics: hand-made footprints with known tables, and the demo dataset read
through a counting store to prove no image or mask chunk is read."""

import json

import numpy as np
import pytest
import xarray as xr
import zarr
from counting import CountingStore
from PIL import Image

from catalog import SYSTEMS, load_taxonomy, open_catalog
from flows.cli import main
from flows.reports.tables import to_csv
from flows.stats import dataset_statistics

TAXONOMY = load_taxonomy()
SYSTEM_OF = np.array([info.system for info in TAXONOMY.labels], object)


def synthetic(footprint, available, splits, spacing=None) -> xr.Dataset:
    """A catalog-like dataset holding only the small per-study arrays."""
    n = len(splits)
    spacing = np.ones((n, 2), np.float32) if spacing is None else spacing
    return xr.Dataset(
        {
            "footprint": (("study", "view", "label"), np.asarray(footprint, np.int32)),
            "available": (("study", "label"), np.asarray(available, bool)),
            "pixel_spacing": (("study", "view"), np.asarray(spacing, np.float32)),
        },
        coords={
            "study": [f"s{i}" for i in range(n)],
            "split": ("study", list(splits)),
            "view": ["PA", "LL"],
            "label": list(TAXONOMY.names),
            "system": ("label", list(SYSTEM_OF)),
            "level": ("label", [info.level for info in TAXONOMY.labels]),
            "y": np.arange(100),
            "x": np.arange(100),
        },
    )


def table(stats, name):
    return next(t for t in stats.tables if t.name == name)


def row(tab, *keys):
    width = len(keys)
    return next(r for r in tab.rows if tuple(r[:width]) == keys)


def test_inventory_counts_stored_available_and_nonempty_separately():
    n_labels = len(TAXONOMY)
    footprint = np.full((3, 2, n_labels), 10)
    available = np.ones((3, n_labels), bool)
    heart = TAXONOMY.index("heart")
    available[0, heart] = False  # study 0: heart unknown...
    footprint[0, :, heart] = 0  # ...and stored empty
    footprint[1, 1, TAXONOMY.index("liver")] = 0  # study 1: liver empty on LL only
    endocrine = [i for i in range(n_labels) if SYSTEM_OF[i] == "Endocrine"]
    footprint[2][:, endocrine] = 0  # study 2: the whole Endocrine region empty on both views
    spacing = np.ones((3, 2), np.float32)
    spacing[2, 1] = np.nan  # study 2: no LL projection stored
    stats = dataset_statistics(
        synthetic(footprint, available, ["train", "valid", "train"], spacing), resamples=50
    )
    inv = table(stats, "inventory")
    assert inv.columns == ("item", "view", "train", "valid", "total")
    assert row(inv, "Studies", "")[2:] == (2, 1, 3)
    assert row(inv, "Projections", "LL")[2:] == (1, 1, 2)
    assert row(inv, "Anatomy masks, stored", "PA")[2:] == (2 * n_labels, n_labels, 3 * n_labels)
    assert row(inv, "Anatomy masks, stored", "Total")[-1] == 5 * n_labels
    assert row(inv, "Anatomy masks, available", "PA")[2:] == (
        2 * n_labels - 1,
        n_labels,
        3 * n_labels - 1,
    )
    nonempty_pa = 3 * n_labels - 1 - len(endocrine)
    assert row(inv, "Anatomy masks, non-empty", "PA")[-1] == nonempty_pa
    assert row(inv, "Anatomy masks, non-empty", "LL")[-1] == 2 * n_labels - 1 - 1
    assert row(inv, "Region masks, stored", "Total")[-1] == 5 * len(SYSTEMS)
    assert row(inv, "Region masks, non-empty", "PA")[-1] == 3 * len(SYSTEMS) - 1
    assert row(inv, "Region masks, available", "LL")[-1] == 2 * len(SYSTEMS)


def test_footprint_means_shares_ratio_and_intervals():
    n_labels = len(TAXONOMY)
    footprint = np.zeros((4, 2, n_labels), np.int32)
    cardiac = SYSTEM_OF == "Cardiac"
    footprint[:, 0, cardiac] = np.array([100, 200, 300, 400])[:, None]
    footprint[:, 1, cardiac] = 50
    available = np.ones((4, n_labels), bool)
    stats = dataset_statistics(synthetic(footprint, available, ["train"] * 4), resamples=200)
    fp = table(stats, "footprint")
    cardiac_row = row(fp, "Cardiac")
    assert cardiac_row[1] == pytest.approx(250.0)  # PA mean over non-empty masks
    assert cardiac_row[2] < 250.0 < cardiac_row[3]  # interval around it
    assert cardiac_row[4] == pytest.approx(50.0) and cardiac_row[5:7] == (50.0, 50.0)
    assert cardiac_row[7] == pytest.approx(100 * 250 / 10_000)  # % of a 100 x 100 image
    assert cardiac_row[9] == pytest.approx(5.0)  # PA/LL
    assert cardiac_row[10] == 4 * cardiac.sum()
    assert fp.rows[0][0] == "Cardiac"  # sorted by PA mean; every other system is empty
    again = dataset_statistics(synthetic(footprint, available, ["train"] * 4), resamples=200)
    assert to_csv(table(again, "footprint")) == to_csv(fp)  # fixed seed: same intervals


def test_unavailable_classes_count_neither_in_means_nor_prevalence():
    n_labels = len(TAXONOMY)
    heart = TAXONOMY.index("heart")
    footprint = np.full((2, 2, n_labels), 7, np.int32)
    footprint[:, :, heart] = [[1000, 1000], [0, 0]]
    available = np.ones((2, n_labels), bool)
    available[1, heart] = False
    stats = dataset_statistics(synthetic(footprint, available, ["train"] * 2), resamples=20)
    prevalence = row(table(stats, "prevalence"), "heart")
    assert prevalence[3:] == (1, 1, 1.0, 1, 1.0)  # available once, non-empty there
    cardiac = SYSTEM_OF == "Cardiac"
    expected = (1000 + 7 * (2 * cardiac.sum() - 2)) / (2 * cardiac.sum() - 1)
    assert row(table(stats, "footprint"), "Cardiac")[1] == pytest.approx(expected)


def test_stats_read_no_image_or_mask_chunk(demo_dir):
    store = CountingStore(zarr.storage.LocalStore(demo_dir / "dataset.zarr", read_only=True))
    stats = dataset_statistics(open_catalog(store), resamples=100)
    heavy = [
        key
        for key in store.reads
        if key.split("/")[0] in ("image", "mask", "region_mask") and not key.endswith("zarr.json")
    ]
    assert heavy == []
    assert any(key.startswith("footprint/c/") for key in store.reads)  # it did read footprints
    truth = open_catalog(str(demo_dir / "dataset.zarr"))
    nonempty = int(truth["mask"].any(("y", "x")).sum())  # the slow way, reading every mask
    assert row(table(stats, "inventory"), "Anatomy masks, non-empty", "Total")[-1] == nonempty
    assert table(stats, "measurement_summary").rows[0][2] == 3  # three studies measured


def test_stats_command_writes_tables_and_figures_deterministically(demo_dir, tmp_path, capsys):
    outputs = []
    for run in ("a", "b"):
        assert main(["stats", str(demo_dir / "dataset.zarr"), "--out", str(tmp_path / run)]) == 0
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    printed = capsys.readouterr().out
    assert "Dataset inventory (paper Table 2)" in printed and "Neural/soft tissue" in printed
    assert outputs[0] == outputs[1]
    names = set(outputs[0])
    assert {"inventory.csv", "footprint.csv", "prevalence.csv", "statistics.md"} <= names
    assert {"statistics.json", "footprint.png", "measurements.png"} <= names
    document = json.loads(outputs[0]["statistics.json"])
    assert document["inventory"]["rows"][0] == {
        "item": "Studies",
        "view": "",
        "train": 3,
        "total": 3,
    }
    assert len(document["prevalence"]["rows"]) == len(TAXONOMY)
    for figure in ("footprint.png", "measurements.png"):
        with Image.open(tmp_path / "a" / figure) as image:
            assert image.size[0] > 500 and image.size[1] > 300


def test_stats_command_rejects_bad_cut_points(demo_dir, capsys):
    code = main(["stats", str(demo_dir / "dataset.zarr"), "--ctr-cutpoints", "0.6", "0.5", "0.7"])
    assert code == 2
    assert "cut-points must increase strictly" in capsys.readouterr().err
