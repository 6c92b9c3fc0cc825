"""The read side (catalog/reader.py) on a real build: lazy, selective, readable without us. That
it shows committed studies only is a store contract: tests/storage/test_store_contract.py."""

import subprocess
import sys
import textwrap

import dask
import numpy as np
import pytest
import zarr
import zarr.storage
from counting import CountingStore

from catalog import open_catalog, select


def test_selecting_one_label_of_one_study_reads_one_chunk(demo_dir):
    store = CountingStore(zarr.storage.LocalStore(demo_dir / "dataset.zarr", read_only=True))
    ds = open_catalog(store)
    before = sum(n for key, n in store.reads.items() if key.startswith("mask/"))
    assert before <= 1  # opening reads at most the mask's metadata
    with dask.config.set(scheduler="synchronous"):
        one = select(ds, label="heart", view="PA", study="phantom-0001").mask.values
    mask_reads = {k: n for k, n in store.reads.items() if k.startswith("mask/c/")}
    # one shard object: its index and the single inner chunk of (study 1, PA, heart)
    assert list(mask_reads) == ["mask/c/1/0/0/0/0"]
    assert mask_reads["mask/c/1/0/0/0/0"] <= 2
    assert one.shape == (1, 1, 1, 384, 384) and one.any()
    # not the whole shard (420 masks) fetched and cut afterwards: a 1-request full read
    shard = (demo_dir / "dataset.zarr" / "mask" / "c" / "1" / "0" / "0" / "0" / "0").stat().st_size
    assert store.bytes["mask/c/1/0/0/0/0"] < shard / 4


@pytest.mark.parametrize(
    "selection",
    [
        {"label": ["liver", "heart"], "view": "LL", "study": ["phantom-0002", "phantom-0000"]},
        {"system": "Pulmonary", "split": "train"},
        {"label": "heart", "view": ["LL", "PA"]},
        {"label": ["heart"], "study": ["phantom-0001"]},
    ],
)
def test_select_reads_only_the_span_of_the_chosen_masks(demo_dir, selection):
    """One ``isel`` of the slices spanning the chosen names (Dask fuses one slicing into the
    read); the result equals xarray's own selection of the same names."""
    store = CountingStore(zarr.storage.LocalStore(demo_dir / "dataset.zarr", read_only=True))
    ds = open_catalog(store)
    picked = select(ds, **selection)
    with dask.config.set(scheduler="synchronous"):
        values = picked.mask.values
    reads = sum(n for key, n in store.reads.items() if key.startswith("mask/c/"))
    mask_bytes = sum(n for key, n in store.bytes.items() if key.startswith("mask/c/"))
    expected = ds.mask.sel(
        study=picked.study.values, view=picked.view.values, label=picked.label.values
    )
    assert np.array_equal(values, expected.values)
    assert list(picked.label.values) == list(expected.label.values)

    def span(dim):
        where = [list(ds[dim].values).index(v) for v in picked[dim].values]
        return max(where) - min(where) + 1

    # per study: its shard index and the chunks between the first and last chosen mask
    assert reads <= picked.sizes["study"] * (1 + span("view") * span("label"))
    # and not the whole shard in one read, cut afterwards (all demo slots are committed)
    slots = [list(ds.study.values).index(v) for v in picked.study.values]
    shards = sum((demo_dir / "dataset.zarr/mask/c" / f"{i}/0/0/0/0").stat().st_size for i in slots)
    if span("view") * span("label") < 2 * 210 / 4:
        assert mask_bytes < shards / 2


def test_select_by_system_level_view_split(demo_dir):
    ds = open_catalog(str(demo_dir / "dataset.zarr"))
    lobes = select(ds, system="Pulmonary", level="leaf")
    assert sorted(map(str, lobes.label.values)) == [
        "left lung lower lobe",
        "left lung upper lobe",
        "right lung lower lobe",
        "right lung middle lobe",
        "right lung upper lobe",
    ]
    assert list(lobes.region.values) == ["Pulmonary"]
    assert select(ds, view="LL").sizes["view"] == 1
    assert select(ds, organ="rib", level="leaf").sizes["label"] == 24
    assert select(ds, split="train").sizes["study"] == 3
    assert select(ds, label=["heart", "liver"]).sizes["label"] == 2
    assert select(ds, study=[]).mask.values.shape == (0, 2, 210, 384, 384)


def test_unknown_names_get_suggestions(demo_dir):
    ds = open_catalog(str(demo_dir / "dataset.zarr"))
    with pytest.raises(KeyError, match="did you mean 'heart'"):
        select(ds, label="hearts")
    with pytest.raises(KeyError, match="no system 'Bones'"):
        select(ds, system="Bones")


def test_plain_xarray_opens_the_store_without_this_project(demo_dir):
    script = textwrap.dedent(
        f"""
        import sys
        import xarray as xr
        ds = xr.open_zarr({str(demo_dir / "dataset.zarr")!r})
        ds = ds.isel(study=ds.committed.values)
        heart = ds.mask.sel(label="heart", view="PA").isel(study=0).values
        assert heart.any() and ds.sizes["label"] == 210
        assert not {{"catalog", "flows", "storage"}} & set(sys.modules)
        print("ok", ds.sizes["study"])
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd="/", check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "3"]
