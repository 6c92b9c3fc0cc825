"""Whole chunks and shards of our own arrays, encoded and stored without zarr's generic pipeline.

zarr 3.1 writes a region chunk by chunk (a fill-valued chunk allocated, merged, tested for
emptiness, encoded, on a thread pool) and reads part of a shard chunk by chunk, one request after
another, copying every chunk twice. For the sources store's two layouts that machinery is most
of the I/O cost (benchmarks/RESULTS.md), so this module does the same work directly:

- ``encode_chunks`` encodes a whole unsharded array (the CT), one object per chunk;
- ``BoxEncoder`` encodes one label of the sharded mask array as one shard object holding the
  chunks its box touches (chunks without a set voxel are left out: they read as fill);
- ``put`` stores encoded objects, all in one go;
- ``read_box`` fetches a label's shard in one request and decodes its chunks into the box.

The encoders produce the zarr v3 format exactly (``sharding_indexed`` with the index at the end
and its CRC32C, Blosc inner chunks, edge chunks padded), so zarr and any zarr v3 reader read the
result; they refuse arrays of another layout (``storage/sources.py`` creates these). The
encoded bytes are what the study's content hash is computed from: a pass over the compressed
bytes, not over the volumes. ``read_box`` leaves arrays of other layouts to zarr. Encoding
makes the process's Blosc single-threaded, for deterministic bytes (see ``_encoder``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import google_crc32c
import numcodecs.blosc
import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.bytes import Endian
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

_EMPTY = 2**64 - 1  # offset and length of a chunk that is not stored
_BLOSC = Blosc()  # Blosc frames describe themselves: one decoder reads any of them
Stored = tuple[tuple[int, ...], bytes]  # an encoded object and the chunk (or shard) it stores
_SHUFFLE = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}


def encode_chunks(array: zarr.Array, values: np.ndarray) -> list[Stored]:
    """The objects that store ``array[...] = values`` for an unsharded array of our layout."""
    blosc = _plain_blosc(array.metadata.codecs if array.metadata.zarr_format == 3 else ())
    if array.shards is not None or blosc is None or values.shape != array.shape:
        raise ValueError(f"{array.path} is not an unsharded [bytes, blosc] array of {values.shape}")
    encoder, chunk = _encoder(blosc), np.array(array.chunks)
    values = values.astype(array.dtype.newbyteorder("<"), copy=False)
    padded = np.full(tuple(chunk), array.fill_value, values.dtype)  # for edge chunks
    return [
        (tuple(origin // chunk), _encode_chunk(encoder, padded, values[part], inside))
        for origin, part, inside in _pieces(np.zeros_like(chunk), np.array(values.shape), chunk)
    ]


class BoxEncoder:
    """Encodes labels' boxes as whole shards of one mask array of the sources layout.

    One chunk-sized buffer is reused for every edge chunk of every box: a fresh 2 MiB buffer
    per label costs fresh pages, which on a Dask worker (glibc trimming aggressively) add up.
    """

    def __init__(self, array: zarr.Array) -> None:
        sharding = _sharding(array, 0)
        if sharding is None:
            raise ValueError(f"{array.path} is not a one-shard-per-label Blosc mask array")
        self.labels = array.shape[0]
        self.chunk = np.array(sharding.chunk_shape[1:])
        self.per_shard = tuple(np.array(array.shards[1:]) // self.chunk)
        self.encoder = _encoder(sharding.codecs[1])
        self.padded = np.full(tuple(self.chunk), array.fill_value, array.dtype)

    def encode(self, label: int, start: Sequence[int], values: np.ndarray) -> Stored | None:
        """The shard that stores ``array[label, start:start + values.shape] = values``.

        Outside the box everything reads as the fill value, and so do the box's chunks without
        a set voxel (they are not stored); None when nothing needs storing at all.
        """
        if not 0 <= label < self.labels:
            raise IndexError(f"label {label} is outside the mask array's {self.labels} labels")
        index = np.full((*self.per_shard, 2), _EMPTY, "<u8")
        low = np.array(start)
        parts, offset = [], 0
        for origin, part, inside in _pieces(low, low + values.shape, self.chunk):
            if not values[part].any():
                continue
            encoded = _encode_chunk(self.encoder, self.padded, values[part], inside)
            index[tuple(origin // self.chunk)] = (offset, len(encoded))
            parts.append(encoded)
            offset += len(encoded)
        if not parts:
            return None
        table = index.tobytes()
        shard = b"".join([*parts, table, google_crc32c.value(table).to_bytes(4, "little")])
        return (label, *(0,) * len(start)), shard


def _pieces(
    low: np.ndarray, high: np.ndarray, chunk: np.ndarray
) -> Iterator[tuple[np.ndarray, tuple[slice, ...], tuple[slice, ...]]]:
    """Each chunk the box [low, high) touches: its origin, the part of the box inside it (in box
    coordinates) and where that part lies in the chunk."""
    for coords in np.ndindex(*((high - 1) // chunk - low // chunk + 1)):
        origin = (low // chunk + coords) * chunk
        a, b = np.maximum(origin, low), np.minimum(origin + chunk, high)
        yield origin, tuple(map(slice, a - low, b - low)), tuple(map(slice, a - origin, b - origin))


def _encode_chunk(encoder: Blosc, padded: np.ndarray, part: np.ndarray, inside: tuple) -> bytes:
    """``part`` at ``inside`` of an otherwise fill-valued chunk, encoded.

    ``padded`` is scratch of the chunk's shape, all fill value before and after (zarr v3 stores
    edge chunks at full size); a part that fills the chunk is encoded as it is.
    """
    if part.shape == padded.shape:
        return encoder.encode(np.ascontiguousarray(part))
    fill = padded.flat[0]
    padded[inside] = part
    try:
        return encoder.encode(padded)
    finally:
        padded[inside] = fill


def put(array: zarr.Array, objects: Iterable[Stored]) -> None:
    """Store encoded chunks or shards of ``array``, concurrently (what counts on object stores)."""
    prototype = default_buffer_prototype()
    keys = [(array.metadata.encode_chunk_key(coords), data) for coords, data in objects]

    async def put_all() -> None:
        await asyncio.gather(
            *((array.store_path / key).set(prototype.buffer.from_bytes(data)) for key, data in keys)
        )

    sync(put_all())


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
    decoded = np.empty(tuple(chunk), array.dtype)  # reused: a fresh one per chunk is page faults
    low, high = np.array(start), np.array(stop)
    for coords in np.argwhere(index[..., 0] != _EMPTY):
        origin = coords[1:] * chunk  # the label axis has one chunk per shard
        a, b = np.maximum(origin, low), np.minimum(origin + chunk, high)
        if np.any(a >= b):
            continue
        offset, length = index[tuple(coords)]
        stored = raw[int(offset) : int(offset) + int(length)]
        _BLOSC.decode(stored, out=decoded)
        wanted = decoded[tuple(map(slice, a - origin, b - origin))]
        out[tuple(map(slice, a - low, b - low))] = wanted
    return out


def _sharding(array: zarr.Array, label: int) -> ShardingCodec | None:
    """The array's sharding codec when this module can handle it directly, else None."""
    codecs = array.metadata.codecs if array.metadata.zarr_format == 3 else ()
    if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
        return None
    sharding = codecs[0]
    shards = tuple(array.shards or ())
    one_shard = len(shards) == array.ndim and shards[0] == 1
    one_shard = one_shard and all(s >= n for s, n in zip(shards[1:], array.shape[1:], strict=True))
    index_codecs = sharding.index_codecs
    plain = (
        _plain_blosc(sharding.codecs) is not None
        and sharding.index_location == ShardingCodecIndexLocation.end
        and len(index_codecs) == 2
        and _little_endian(index_codecs[0])
        and isinstance(index_codecs[1], Crc32cCodec)
        and sharding.chunk_shape[0] == 1
        and array.dtype.itemsize == 1
    )
    return sharding if one_shard and plain and 0 <= label < array.shape[0] else None


def _plain_blosc(codecs: Sequence[Any]) -> BloscCodec | None:
    """The Blosc codec of a ``[bytes (little-endian), blosc]`` pipeline, else None."""
    if len(codecs) == 2 and _little_endian(codecs[0]) and isinstance(codecs[1], BloscCodec):
        return codecs[1]
    return None


def _little_endian(codec: Any) -> bool:
    return isinstance(codec, BytesCodec) and codec.endian in (None, Endian.little)


def _encoder(codec: BloscCodec) -> Blosc:
    """numcodecs' Blosc configured as the array's codec (zarr's BloscCodec wraps the same).

    With several threads Blosc lays blocks out as the threads finish, so its bytes vary from
    run to run; numcodecs uses threads when called from a process's main thread (a plain
    ``rga`` run), not from others (Dask workers, zarr's own pool). So this process's Blosc is
    made single-threaded: the same inputs then give the same bytes wherever they are ingested.
    """
    numcodecs.blosc.use_threads = False
    return Blosc(codec.cname.value, codec.clevel, _SHUFFLE[codec.shuffle.value], codec.blocksize)


def _index(data: bytes, sharding: ShardingCodec, array: zarr.Array) -> np.ndarray:
    """The shard's (offset, length) per inner chunk, its CRC checked."""
    per_shard = tuple(s // c for s, c in zip(array.shards, sharding.chunk_shape, strict=True))
    size = 16 * int(np.prod(per_shard))
    index, checksum = data[-size - 4 : -4], data[-4:]
    if google_crc32c.value(index) != int.from_bytes(checksum, "little"):
        raise ValueError(f"the shard index of {array.path} is corrupt (CRC mismatch)")
    return np.frombuffer(index, "<u8").reshape(*per_shard, 2)
