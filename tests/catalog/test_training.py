"""catalog.RadiographDataset: items, their cost in store requests, and PyTorch's DataLoader."""

import numpy as np
import pytest
import s3fs
import zarr.storage
from counting import CountingStore

from catalog import RadiographDataset, open_catalog

torch = pytest.importorskip("torch")  # the loader itself needs numpy only; DataLoader needs torch


@pytest.fixture(scope="module")
def truth(demo_dir):
    return open_catalog(str(demo_dir / "dataset.zarr")).load()


def test_items_are_the_stored_radiographs_and_masks(demo_dir, truth):
    data = RadiographDataset(str(demo_dir / "dataset.zarr"))
    assert len(data) == truth.sizes["study"] * 2
    labels = [str(n) for n in truth.label.values]
    for index in (0, 3, len(data) - 1):
        item = data[index]
        s, v = divmod(index, 2)
        assert (item["study"], item["view"]) == (str(truth.study.values[s]), ["PA", "LL"][v])
        assert item["image"].dtype == np.float32 and item["image"].shape == (1, 384, 384)
        assert np.array_equal(item["image"][0], truth.image.values[s, v] / np.float32(255))
        assert item["mask"].dtype == np.uint8 and item["mask"].shape == (len(labels), 384, 384)
        assert np.array_equal(item["mask"], truth.mask.values[s, v])  # overlaps kept per channel
        assert np.array_equal(item["available"], truth.available.values[s])
        assert item["pixel_spacing"] == truth.pixel_spacing.values[s, v]
    with pytest.raises(IndexError):
        data[len(data)]


def test_selection_and_transform(demo_dir, truth):
    data = RadiographDataset(
        str(demo_dir / "dataset.zarr"),
        views=("LL",),
        labels=["heart", "trachea"],
        transform=lambda item: {**item, "seen": True},
    )
    item = data[1]
    assert len(data) == truth.sizes["study"] and item["view"] == "LL" and item["seen"]
    heart = [str(n) for n in truth.label.values].index("heart")
    assert np.array_equal(item["mask"][0], truth.mask.values[1, 1, heart])
    systems = RadiographDataset(str(demo_dir / "dataset.zarr"), systems="Cardiac")
    assert set(truth.system.sel(label=systems.labels).values) == {"Cardiac"}
    with pytest.raises(KeyError, match="did you mean 'heart'"):
        RadiographDataset(str(demo_dir / "dataset.zarr"), labels=["hart"])


@pytest.fixture(scope="module")
def s3_dataset(demo_dir, s3_server):
    """The demo dataset in a bucket of the loopback S3 server."""
    fs = s3fs.S3FileSystem(**s3_server)
    fs.mkdir("loader")
    fs.put(str(demo_dir / "dataset.zarr"), "loader/dataset.zarr", recursive=True)
    return "s3://loader/dataset.zarr"


def _reads_per_item(store, labels):
    data = RadiographDataset(store, labels=labels)
    data[0]  # the first item of a process opens the store (one metadata read)
    store.reads.clear()
    data[2]  # another study: its image shard and its mask shard
    return sum(store.reads.values())


@pytest.mark.parametrize("labels", [None, ["heart"]], ids=["210 classes", "1 class"])
def test_an_item_costs_two_requests_whatever_the_classes_local(demo_dir, labels):
    store = CountingStore(zarr.storage.LocalStore(demo_dir / "dataset.zarr", read_only=True))
    assert _reads_per_item(store, labels) == 2


@pytest.mark.parametrize("labels", [None, ["heart"]], ids=["210 classes", "1 class"])
def test_an_item_costs_two_requests_whatever_the_classes_s3(s3_dataset, s3_server, labels):
    remote = zarr.storage.FsspecStore.from_url(
        s3_dataset, storage_options=s3_server, read_only=True
    )
    assert _reads_per_item(CountingStore(remote), labels) == 2


def test_a_shuffling_dataloader_with_worker_processes(demo_dir, truth):
    data = RadiographDataset(str(demo_dir / "dataset.zarr"), labels=["heart", "left lung"])
    loader = torch.utils.data.DataLoader(
        data, batch_size=2, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0)
    )
    seen = []
    for batch in loader:
        assert batch["image"].shape[1:] == (1, 384, 384) and batch["mask"].dtype == torch.uint8
        assert batch["available"].dtype == torch.bool
        seen += list(zip(batch["study"], batch["view"], strict=True))
    assert sorted(seen) == sorted((str(s), v) for s in truth.study.values for v in ("PA", "LL"))
    assert seen != [(str(s), v) for s in truth.study.values for v in ("PA", "LL")]  # shuffled


def test_a_dataloader_reads_from_s3(demo_dir, s3_dataset, s3_server):
    data = RadiographDataset(s3_dataset, labels=["heart"], storage_options=s3_server)
    local = RadiographDataset(str(demo_dir / "dataset.zarr"), labels=["heart"])
    loader = torch.utils.data.DataLoader(data, batch_size=3, num_workers=2)
    batches = list(loader)
    assert sum(len(b["study"]) for b in batches) == len(local)
    assert np.array_equal(batches[0]["mask"][0].numpy(), local[0]["mask"])
