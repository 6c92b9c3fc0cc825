"""Reading a label's box from its whole shard (storage/shards.py) equals zarr's own indexing."""

import numpy as np
import pytest
import zarr
from zarr.codecs import ZstdCodec

from storage.shards import _sharding, read_box
from storage.sources import _create_masks

SHAPE = (270, 300, 70)  # (i, j, k): stored as (k, j, i) in 32 x 256 x 256 chunks, edges padded


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    group = zarr.open_group(str(tmp_path_factory.mktemp("shards") / "s.zarr"), mode="w")
    array = _create_masks(group, 4, SHAPE)
    rng = np.random.default_rng(3)
    for label, (k0, k1) in enumerate([(0, 70), (5, 40), (33, 34)]):  # label 3 is never written
        data = np.zeros(array.shape[1:], bool)
        data[k0:k1, 10:290, 3:260] = rng.random((k1 - k0, 280, 257)) < 0.05
        data[k0:k1, 100:200, 100:200] = False  # a hollow: chunks inside the box left empty
        array[label] = data
    return array


def test_the_direct_path_is_taken_for_the_sources_layout(masks):
    assert _sharding(masks, 0) is not None


@pytest.mark.parametrize("label", [0, 1, 2, 3])
def test_boxes_equal_zarr_indexing(masks, label):
    rng = np.random.default_rng(label)
    boxes = [((0, 0, 0), masks.shape[1:]), ((31, 255, 255), (33, 257, 257))]
    for _ in range(20):
        start = rng.integers(0, masks.shape[1:])
        stop = start + rng.integers(1, np.array(masks.shape[1:]) - start + 1)
        boxes.append((tuple(start), tuple(stop)))
    for start, stop in boxes:
        expected = masks[(label, *map(slice, start, stop))]
        assert np.array_equal(read_box(masks, label, start, stop), expected), (start, stop)


def test_other_layouts_are_left_to_zarr(tmp_path):
    array = zarr.create_array(
        str(tmp_path / "z.zarr"),
        shape=(2, 40, 40, 40),
        dtype=bool,
        chunks=(1, 16, 16, 16),
        compressors=(ZstdCodec(),),
        fill_value=False,
    )
    array[1, 5:30, 5:30, 5:30] = True
    assert _sharding(array, 1) is None
    assert read_box(array, 1, (4, 4, 4), (31, 31, 31)).sum() == 25**3


def test_a_corrupt_shard_index_is_reported(tmp_path):
    group = zarr.open_group(str(tmp_path / "c.zarr"), mode="w")
    array = _create_masks(group, 1, (20, 20, 20))
    array[0, 2:5, 2:5, 2:5] = True
    [shard] = [
        p for p in (tmp_path / "c.zarr" / "masks").rglob("*") if p.is_file() and p.name == "0"
    ]
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"shard index .* is corrupt"):
        read_box(array, 0, (0, 0, 0), (20, 20, 20))
