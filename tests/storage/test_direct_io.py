"""Direct chunk and shard I/O (storage/direct_io.py) agrees with zarr's own reads and writes."""

import numcodecs.blosc
import numpy as np
import pytest
import zarr
from numcodecs import Blosc
from zarr.codecs import ZstdCodec

from storage.direct_io import BoxEncoder, _sharding, encode_chunks, put, read_box
from storage.sources import _CT_COMPRESSORS, MASK_CHUNK, _create_masks

SHAPE = (270, 300, 70)  # (i, j, k): stored as (k, j, i) in MASK_CHUNK chunks, edges padded


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


def _random_box(rng, shape):
    start = rng.integers(0, shape)
    stop = start + rng.integers(1, np.array(shape) - start + 1)
    return tuple(int(v) for v in start), tuple(int(v) for v in stop)


def test_the_direct_path_is_taken_for_the_sources_layout(masks):
    assert _sharding(masks, 0) is not None


@pytest.mark.parametrize("label", [0, 1, 2, 3])
def test_boxes_equal_zarr_indexing(masks, label):
    rng = np.random.default_rng(label)
    boxes = [((0, 0, 0), masks.shape[1:]), ((31, 255, 255), (33, 257, 257))]
    boxes += [_random_box(rng, masks.shape[1:]) for _ in range(20)]
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


# ---------------------------------------------------------------------------------------------
# Writing: what BoxEncoder and encode_chunks store reads back, through zarr, as zarr would have


def test_encoded_boxes_read_back_through_zarr_as_written(tmp_path):
    group = zarr.open_group(str(tmp_path / "w.zarr"), mode="w")
    array = _create_masks(group, 24, SHAPE)
    encoder, rng, expected, shards = BoxEncoder(array), np.random.default_rng(7), {}, []
    for label in range(24):
        start, stop = _random_box(rng, array.shape[1:])
        values = rng.random(tuple(b - a for a, b in zip(start, stop, strict=True))) < 0.3
        values[tuple(slice(n // 4, 3 * n // 4) for n in values.shape)] = False  # hollow chunks
        dense = np.zeros(array.shape[1:], bool)
        dense[tuple(map(slice, start, stop))] = values
        expected[label] = dense
        shard = encoder.encode(label, start, values)
        if shard is not None:
            shards.append(shard)
    put(array, shards)
    reopened = zarr.open_array(str(tmp_path / "w.zarr" / "masks"), mode="r")
    for label, dense in expected.items():
        assert np.array_equal(reopened[label], dense), label
        start, stop = _random_box(rng, array.shape[1:])
        assert np.array_equal(
            read_box(reopened, label, start, stop), dense[tuple(map(slice, start, stop))]
        )


def test_chunks_without_a_set_voxel_are_not_stored(tmp_path):
    group = zarr.open_group(str(tmp_path / "e.zarr"), mode="w")
    array = _create_masks(group, 2, SHAPE)
    grid = tuple(-(-n // c) for n, c in zip(array.shape[1:], MASK_CHUNK, strict=True))
    values = np.zeros(array.shape[1:], bool)
    values[0, 0, 0] = values[-1, -1, -1] = True  # two opposite corner chunks
    _, shard = BoxEncoder(array).encode(0, (0, 0, 0), values)
    index = np.frombuffer(shard[-4 - 16 * int(np.prod(grid)) : -4], "<u8").reshape(*grid, 2)
    assert np.prod(grid) > 8 and (index[..., 0] != 2**64 - 1).sum() == 2
    assert BoxEncoder(array).encode(1, (5, 5, 5), np.zeros((3, 3, 3), bool)) is None


def test_encoding_is_deterministic(tmp_path):
    group = zarr.open_group(str(tmp_path / "d.zarr"), mode="w")
    array = _create_masks(group, 1, SHAPE)
    values = np.random.default_rng(1).random((40, 100, 90)) < 0.2
    assert BoxEncoder(array).encode(0, (3, 4, 5), values) == BoxEncoder(array).encode(
        0, (3, 4, 5), values
    )


def test_encoded_chunks_read_back_through_zarr(tmp_path):
    array = zarr.create_array(
        str(tmp_path / "ct.zarr"),
        shape=(70, 40, 30),  # a last chunk of 6 slices: stored padded to 32
        dtype=np.int16,
        chunks=(32, 40, 30),
        compressors=_CT_COMPRESSORS,
        fill_value=0,
    )
    values = np.random.default_rng(2).integers(-1024, 3000, array.shape).astype(np.int16)
    put(array, encode_chunks(array, values))
    assert np.array_equal(zarr.open_array(str(tmp_path / "ct.zarr"), mode="r")[...], values)


def test_other_layouts_are_refused_for_writing(tmp_path):
    plain = zarr.create_array(
        str(tmp_path / "z.zarr"), shape=(2, 8, 8, 8), dtype=bool, chunks=(1, 8, 8, 8)
    )
    with pytest.raises(ValueError, match="not a one-shard-per-label"):
        BoxEncoder(plain)
    with pytest.raises(ValueError, match="not an unsharded"):
        encode_chunks(plain, np.zeros((2, 8, 8, 8), bool))  # zstd, not blosc


def test_encoded_bytes_do_not_depend_on_blosc_threads(tmp_path, monkeypatch):
    # numcodecs compresses with several threads when called from the main thread, and then the
    # bytes vary from run to run (blocks are laid out as threads finish): encoding must not
    values = np.random.default_rng(4).random(MASK_CHUNK) < 0.1  # one chunk
    single = Blosc(cname="lz4", clevel=5, shuffle=Blosc.NOSHUFFLE)
    monkeypatch.setattr(numcodecs.blosc, "use_threads", False)
    expected = single.encode(values)
    group = zarr.open_group(str(tmp_path / "t.zarr"), mode="w")
    array = _create_masks(group, 1, values.shape[::-1])
    previous = numcodecs.blosc.set_nthreads(4)
    try:
        for _ in range(20):  # one threaded encoding differs from the expected bytes about 1 in 3
            monkeypatch.setattr(numcodecs.blosc, "use_threads", True)
            _, shard = BoxEncoder(array).encode(0, (0, 0, 0), values)
            assert shard[: len(expected)] == expected
    finally:
        numcodecs.blosc.set_nthreads(previous)
