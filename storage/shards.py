"""A box of one label of a sharded mask array, read with one request for the label's shard.

zarr 3.1 reads part of a shard chunk by chunk, one request after another (its index, then each
chunk), and copies every chunk twice on the way. A label's mask is stored only inside its box
(empty chunks are never written), so every stored chunk of its shard is wanted anyway: fetching
the whole shard object in one request and decoding its chunks straight into the box costs one
request per label instead of one per chunk (which is what counts on object stores) and a third
of the time locally (benchmarks/RESULTS.md). This reads the zarr v3 ``sharding_indexed`` format
with the index at the end and Blosc inner chunks, as ``storage/sources.py`` writes it; for any
other codec configuration it leaves the read to zarr.
"""

from __future__ import annotations

from collections.abc import Sequence

import google_crc32c
import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

_EMPTY = 2**64 - 1  # offset and length of a chunk that is not stored
_BLOSC = Blosc()  # Blosc frames describe themselves: one decoder reads any of them


def read_box(
    array: zarr.Array, label: int, start: Sequence[int], stop: Sequence[int]
) -> np.ndarray:
    """``array[label, start:stop]`` (one index on the first axis, a box on the others)."""
    sharding = _sharding(array, label)
    if sharding is None:
        return array[(label, *map(slice, start, stop))]
    key = array.metadata.encode_chunk_key((label, *(0,) * len(start)))
    data = sync((array.store_path / key).get(prototype=default_buffer_prototype()))
    out = np.zeros(tuple(b - a for a, b in zip(start, stop, strict=True)), array.dtype)
    if data is None:  # nothing stored: all fill value
        out[...] = array.fill_value
        return out
    chunk = np.array(sharding.chunk_shape[1:])
    index = _index(data.to_bytes(), sharding, array)
    raw = data.as_numpy_array()
    low, high = np.array(start), np.array(stop)
    for coords in np.argwhere(index[..., 0] != _EMPTY):
        origin = coords[1:] * chunk  # the label axis has one chunk per shard
        a, b = np.maximum(origin, low), np.minimum(origin + chunk, high)
        if np.any(a >= b):
            continue
        offset, length = index[tuple(coords)]
        stored = raw[int(offset) : int(offset) + int(length)]
        values = np.frombuffer(_BLOSC.decode(stored), array.dtype)
        values = values.reshape(tuple(chunk))
        out[tuple(map(slice, a - low, b - low))] = values[tuple(map(slice, a - origin, b - origin))]
    return out


def _sharding(array: zarr.Array, label: int) -> ShardingCodec | None:
    """The array's sharding codec when this module can read it directly, else None."""
    codecs = array.metadata.codecs if array.metadata.zarr_format == 3 else ()
    if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
        return None
    sharding = codecs[0]
    shards = tuple(array.shards or ())
    one_shard = len(shards) == array.ndim and shards[0] == 1
    one_shard = one_shard and all(s >= n for s, n in zip(shards[1:], array.shape[1:], strict=True))
    inner = sharding.codecs
    plain = (
        len(inner) == 2
        and isinstance(inner[0], BytesCodec)
        and isinstance(inner[1], BloscCodec)
        and sharding.index_location == ShardingCodecIndexLocation.end
        and len(sharding.index_codecs) == 2
        and isinstance(sharding.index_codecs[1], Crc32cCodec)
        and sharding.chunk_shape[0] == 1
        and array.dtype.itemsize == 1
    )
    return sharding if one_shard and plain and 0 <= label < array.shape[0] else None


def _index(data: bytes, sharding: ShardingCodec, array: zarr.Array) -> np.ndarray:
    """The shard's (offset, length) per inner chunk, its CRC checked."""
    per_shard = tuple(s // c for s, c in zip(array.shards, sharding.chunk_shape, strict=True))
    size = 16 * int(np.prod(per_shard))
    index, checksum = data[-size - 4 : -4], data[-4:]
    if google_crc32c.value(index) != int.from_bytes(checksum, "little"):
        raise ValueError(f"the shard index of {array.path} is corrupt (CRC mismatch)")
    return np.frombuffer(index, "<u8").reshape(*per_shard, 2)
