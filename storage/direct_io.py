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
result; they refuse arrays of another layout (``storage/sources.py`` creates these). What an
array's layout is comes from its metadata document as the zarr v3 specification publishes it
(``array.metadata.to_dict()``, the ``zarr.json`` contents), never from zarr's codec objects,
whose attributes change between releases; requests go through the public ``Store`` API. The
encoded bytes are what the study's content hash is computed from: a pass over the compressed
bytes, not over the volumes. ``read_box`` leaves arrays of other layouts to zarr. Encoding
makes the process's Blosc single-threaded, for deterministic bytes (see ``_encoder``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import google_crc32c
import numcodecs.blosc
import numpy as np
import zarr
from numcodecs import Blosc
from zarr.buffer import default_buffer_prototype

from storage.upstream import run_on_zarr_loop

_EMPTY = 2**64 - 1  # offset and length of a chunk that is not stored
_BLOSC = Blosc()  # Blosc frames describe themselves: one decoder reads any of them
Stored = tuple[tuple[int, ...], bytes]  # an encoded object and the chunk (or shard) it stores
_SHUFFLE = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}


def encode_chunks(array: zarr.Array, values: np.ndarray) -> list[Stored]:
    """The objects that store ``array[...] = values`` for an unsharded array of our layout."""
    blosc = _plain_blosc(_document(array).get("codecs", ()))
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
        self.encoder = _encoder(sharding.blosc)
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
    store, keys = array.store, [(_key(array, coords), data) for coords, data in objects]

    async def put_all() -> None:
        await asyncio.gather(
            *(store.set(key, prototype.buffer.from_bytes(data)) for key, data in keys)
        )

    run_on_zarr_loop(put_all())


def read_box(
    array: zarr.Array, label: int, start: Sequence[int], stop: Sequence[int]
) -> np.ndarray:
    """``array[label, start:stop]`` (one index on the first axis, a box on the others)."""
    sharding = _sharding(array, label)
    if sharding is None:
        return array[(label, *map(slice, start, stop))]
    key = _key(array, (label, *(0,) * len(start)))
    data = run_on_zarr_loop(array.store.get(key, prototype=default_buffer_prototype()))
    out = np.zeros(tuple(b - a for a, b in zip(start, stop, strict=True)), array.dtype)
    if data is None:  # nothing stored: all fill value
        out[...] = array.fill_value
        return out
    chunk = np.array(sharding.chunk_shape[1:])
    index = _index(data.to_bytes(), sharding.chunk_shape, array)
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


@dataclass(frozen=True)
class _Sharding:
    """What this module needs of a one-shard-per-label mask array's ``sharding_indexed`` codec."""

    chunk_shape: tuple[int, ...]  # the inner chunks
    blosc: dict[str, Any]  # the inner chunks' Blosc configuration, as the spec writes it


def _document(array: zarr.Array) -> dict[str, Any]:
    """The array's metadata document as the zarr v3 specification defines it (its zarr.json);
    empty for a zarr v2 array."""
    return array.metadata.to_dict() if array.metadata.zarr_format == 3 else {}


def _sharding(array: zarr.Array, label: int) -> _Sharding | None:
    """The array's sharding layout when this module can handle it directly, else None."""
    codecs = list(_document(array).get("codecs", ()))
    if len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
        return None
    config = codecs[0].get("configuration", {})
    chunk_shape = tuple(config.get("chunk_shape", ()))
    shards = tuple(array.shards or ())
    one_shard = len(shards) == array.ndim == len(chunk_shape) and shards[0] == 1
    one_shard = one_shard and all(s >= n for s, n in zip(shards[1:], array.shape[1:], strict=True))
    index_codecs = list(config.get("index_codecs", ()))
    blosc = _plain_blosc(config.get("codecs", ()))
    plain = (
        blosc is not None
        and config.get("index_location", "end") == "end"
        and len(index_codecs) == 2
        and _little_endian(index_codecs[0])
        and index_codecs[1].get("name") == "crc32c"
        and chunk_shape[0] == 1
        and array.dtype.itemsize == 1
    )
    if one_shard and plain and 0 <= label < array.shape[0]:
        return _Sharding(chunk_shape, blosc)
    return None


def _plain_blosc(codecs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The Blosc configuration of a ``[bytes (little-endian), blosc]`` pipeline, else None."""
    codecs = list(codecs)
    if len(codecs) == 2 and _little_endian(codecs[0]) and codecs[1].get("name") == "blosc":
        return dict(codecs[1].get("configuration", {}))
    return None


def _little_endian(codec: dict[str, Any]) -> bool:
    """A ``bytes`` codec that lays numbers out little-endian (or has one byte per number)."""
    endian = codec.get("configuration", {}).get("endian")
    return codec.get("name") == "bytes" and endian in (None, "little")


def _key(array: zarr.Array, coords: Sequence[int]) -> str:
    """The store key of the chunk (or shard) at grid ``coords``, by the spec's key encodings."""
    encoding = _document(array).get("chunk_key_encoding", {"name": "default"})
    separator = encoding.get("configuration", {}).get("separator")
    if encoding.get("name") == "default":
        key = "c" + "".join((separator or "/") + str(int(c)) for c in coords)
    elif encoding.get("name") == "v2":
        key = (separator or ".").join(str(int(c)) for c in coords) or "0"
    else:
        raise ValueError(f"{array.path} uses the unknown chunk key encoding {encoding!r}")
    return f"{array.path}/{key}" if array.path else key


def _encoder(config: dict[str, Any]) -> Blosc:
    """numcodecs' Blosc configured as the array's ``blosc`` codec (same format, same bytes).

    With several threads Blosc lays blocks out as the threads finish, so its bytes vary from
    run to run; numcodecs uses threads when called from a process's main thread (a plain
    ``rga`` run), not from others (Dask workers, zarr's own pool). So this process's Blosc is
    made single-threaded: the same inputs then give the same bytes wherever they are ingested.
    """
    numcodecs.blosc.use_threads = False
    shuffle = _SHUFFLE[config.get("shuffle", "noshuffle")]
    return Blosc(config["cname"], int(config["clevel"]), shuffle, int(config.get("blocksize", 0)))


def _index(data: bytes, chunk_shape: Sequence[int], array: zarr.Array) -> np.ndarray:
    """The shard's (offset, length) per inner chunk, its CRC checked."""
    per_shard = tuple(s // c for s, c in zip(array.shards, chunk_shape, strict=True))
    size = 16 * int(np.prod(per_shard))
    index, checksum = data[-size - 4 : -4], data[-4:]
    if google_crc32c.value(index) != int.from_bytes(checksum, "little"):
        raise ValueError(f"the shard index of {array.path} is corrupt (CRC mismatch)")
    return np.frombuffer(index, "<u8").reshape(*per_shard, 2)
