"""Direct chunk and shard encoding (storage/direct_io.py): which layouts take the direct path,
and deterministic bytes. That what it writes and reads agrees with zarr's own reads and writes
is a store contract, run on disk and on S3 in tests/storage/test_store_contract.py."""

import numcodecs.blosc
import numpy as np
import pytest
import zarr
from numcodecs import Blosc
from zarr.codecs import ZstdCodec

from storage.direct_io import BoxEncoder, _sharding, encode_chunks
from storage.sources import MASK_CHUNK, _create_masks

SHAPE = (270, 300, 70)  # (i, j, k): stored as (k, j, i) in MASK_CHUNK chunks, edges padded


def test_the_direct_path_is_taken_for_the_sources_layout_only(tmp_path):
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    assert _sharding(_create_masks(group, 4, SHAPE), 0) is not None
    other = zarr.create_array(
        str(tmp_path / "z.zarr"),
        shape=(2, 40, 40, 40),
        dtype=bool,
        chunks=(1, 16, 16, 16),
        compressors=(ZstdCodec(),),
        fill_value=False,
    )
    assert _sharding(other, 1) is None  # left to zarr (read_box reads it: the contract tests)


def test_encoding_is_deterministic(tmp_path):
    group = zarr.open_group(str(tmp_path / "d.zarr"), mode="w")
    array = _create_masks(group, 1, SHAPE)
    values = np.random.default_rng(1).random((40, 100, 90)) < 0.2
    assert BoxEncoder(array).encode(0, (3, 4, 5), values) == BoxEncoder(array).encode(
        0, (3, 4, 5), values
    )


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
