"""The plane reader's contract, once for each implementation: the C sparse gzip reader and the
zlib-ng fallback (``ScanningReader``) give the same bytes, planes, bounds and errors as zlib.

The ``implementation`` fixture (conftest.py) runs each test with the C reader and again with the
module's C entry points switched off; the C variant skips only where no compiler could have
built the extension. The C reader alone is fuzzed against zlib in test_sparse_gzip_fuzz.py.
"""

from __future__ import annotations

import gzip
import importlib
import zlib

import numpy as np
import pytest
from niftis import save
from zlib_ng import zlib_ng

import flows.codecs.plane_reader as plane_reader
from flows.codecs.plane_reader import SPARSE_READER_BUILT, ScanningReader, SparseGzipError
from flows.inputs import nifti

STRATEGIES = [zlib.Z_DEFAULT_STRATEGY, zlib.Z_RLE, zlib.Z_HUFFMAN_ONLY, zlib.Z_FIXED]


def _gzip(data: bytes, level: int = 6, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, 31, 9, strategy)
    return packer.compress(data) + packer.flush()


def _payloads() -> list[bytes]:
    """Zero runs of many lengths, noise, and sparse masks with runs of ones and of other values."""
    rng = np.random.default_rng(7)
    out = [b"", bytes(1), bytes(300), bytes(65537), bytes((1 << 20) + 12345)]
    for n in (1000, 70_000, 600_000):
        out.append(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        sparse = np.zeros(n, np.uint8)
        for start in rng.integers(0, n, 12):
            sparse[start : start + int(rng.integers(1, 3000))] = 1
        out.append(sparse.tobytes())
        out.append((rng.integers(1, 4, n) * (rng.random(n) < 0.05)).astype(np.uint8).tobytes())
    return out


_STREAMS: list[tuple[bytes, bytes]] = []


def _streams() -> list[tuple[bytes, bytes]]:
    """(gzip file, its decoded bytes): levels 0-9, four strategies, several members, padding."""
    if not _STREAMS:  # made once: every test and implementation reads the same files
        for data in _payloads():
            for level in (0, 1, 6, 9):
                for strategy in STRATEGIES if level else [zlib.Z_DEFAULT_STRATEGY]:
                    _STREAMS.append((_gzip(data, level, strategy), data))
            _STREAMS.append((_gzip(data) + _gzip(data[::-1], 1), data + data[::-1]))
            _STREAMS.append((_gzip(data) + bytes(9), data))  # zero padding after the last member
    return _STREAMS


def _planes(reader, plane_size: int, total: int) -> tuple[dict[int, bytes], list[tuple]]:
    """Every set plane by index, and the span reported for each."""
    plane, found, spans, k = bytearray(plane_size), {}, [], 0
    while k < total:
        skipped = reader.next_set_plane(plane, total - k)
        assert skipped >= 0
        k += skipped
        if k < total:
            found[k] = bytes(plane)
            spans.append((k, reader.span))
            k += 1
    reader.finish()
    return found, spans


def test_the_c_reader_is_built(c_compiler):
    """Wherever a C compiler is present (CI), the fast path, not the fallback, is what runs."""
    if c_compiler is None:
        pytest.skip("no C compiler: installs here take the zlib-ng fallback")
    extension = importlib.import_module("flows.codecs._sparse_gzip")  # fails where not built
    assert SPARSE_READER_BUILT
    assert isinstance(plane_reader.open_planes(_gzip(b"x")), extension.Reader)


def test_open_planes_takes_the_implementation_under_test(implementation):
    reader = plane_reader.open_planes(_gzip(b"x"))
    fallback = implementation.name == "fallback"
    assert isinstance(reader, ScanningReader) == fallback
    assert isinstance(implementation.open_gzip(_gzip(b"x")), ScanningReader) == fallback


def test_dense_reads_equal_zlib(implementation):
    for stream, data in _streams():
        reader = plane_reader.open_planes(stream)
        buffer, got = bytearray(len(data) + 7), 0
        while n := reader.readinto(memoryview(buffer)[got:]):  # zlib-ng may return less
            got += n
        reader.finish()
        assert bytes(buffer[:got]) == data
        assert reader.position == len(data)


def test_small_reads_resume_exactly_where_they_stopped(implementation):
    for stream, data in _streams()[::7]:
        reader, pieces = plane_reader.open_planes(stream), []
        while piece := reader.read(997):
            pieces.append(piece)
        assert b"".join(pieces) == data


@pytest.mark.parametrize("plane_size", [1000, 4096, 777])
def test_plane_skipping_equals_decoding_every_plane(implementation, plane_size):
    """The set planes of zlib's bytes, and no others; spans hold every set byte (the C reader's
    exactly, the fallback's are the whole plane)."""
    for stream, data in _streams():
        total = len(data) // plane_size
        found, spans = _planes(plane_reader.open_planes(stream), plane_size, total)
        planes = (data[k * plane_size : (k + 1) * plane_size] for k in range(total))
        assert found == {k: p for k, p in enumerate(planes) if p.count(0) < plane_size}
        for k, (first, stop) in spans:
            set_bytes = np.flatnonzero(np.frombuffer(found[k], np.uint8))
            tight = (set_bytes[0], set_bytes[-1] + 1)
            assert (first, stop) == (tight if implementation.name == "c" else (0, plane_size))


def test_the_data_ending_inside_the_planes_is_reported(implementation):
    stream = _gzip(bytes(3500) + b"\x01" + bytes(1599))  # 5,100 bytes
    reader = plane_reader.open_planes(stream)
    plane = bytearray(1000)
    assert reader.next_set_plane(plane, 10) == 3  # planes 0-2 empty, plane 3 holds the 1
    assert reader.span == ((500, 501) if implementation.name == "c" else (0, 1000))
    assert plane == bytes(500) + b"\x01" + bytes(499)
    assert reader.next_set_plane(plane, 6) == -1  # plane 4 empty, plane 5 cut at 100 bytes
    assert reader.position == 5100


def _outcome(read, stream: bytes) -> tuple[str, bytes | None]:
    try:
        return "ok", read(stream)
    except EOFError:
        return "truncated", None
    except (zlib_ng.error, zlib.error, SparseGzipError, OSError, ValueError):
        return "corrupt", None


def test_damaged_streams_are_refused_as_gzip_refuses_them(implementation):
    """Flipped bits and cut ends: accepted with gzip's bytes, or refused; never a crash. A cut
    file is truncated (EOFError) unless the cut spares every member."""

    def read_all(stream: bytes) -> bytes:
        reader = implementation.open_gzip(stream)  # open_planes would take bad magic as no gzip
        data = b"".join(iter(lambda: reader.read(1 << 20), b""))
        reader.finish()
        return data

    rng = np.random.default_rng(11)
    originals = [stream for stream, _ in _streams()[::5] if len(stream) > 30]
    compared = 0
    for stream in originals:
        for _ in range(12):
            damaged, cut = bytearray(stream), rng.random() < 0.2
            if cut:
                damaged = damaged[: int(rng.integers(1, len(damaged)))]
            else:
                for _ in range(int(rng.integers(1, 4))):
                    at = int(rng.integers(0, len(damaged)))
                    damaged[at] ^= 1 << int(rng.integers(0, 8))
            ours = _outcome(read_all, bytes(damaged))
            theirs = _outcome(gzip.decompress, bytes(damaged))
            assert (ours[0] == "ok") == (theirs[0] == "ok")
            assert ours[1] == theirs[1]
            if cut:
                assert ours[0] in ("ok", "truncated")
            compared += 1
    assert compared > 300


def test_a_failed_reader_stays_failed(implementation):
    stream = bytearray(_gzip(bytes(100_000)))
    stream[-8] ^= 0xFF  # the CRC
    reader = plane_reader.open_planes(bytes(stream))
    with pytest.raises((SparseGzipError, gzip.BadGzipFile), match="CRC"):
        reader.finish()
    with pytest.raises((SparseGzipError, gzip.BadGzipFile), match="CRC"):
        reader.read(10)


def test_masks_decode_the_same_through_either_reader(implementation, tmp_path):
    """decode_mask: either reader gives the same box, bytes and errors."""
    rng = np.random.default_rng(3)
    mask = np.zeros((40, 30, 25), np.uint8)
    mask[5:17, 3:9, 4:20] = rng.random((12, 6, 16)) < 0.6
    mask[30, 20, 22] = 1
    path = save(tmp_path / "m.nii.gz", mask)
    data = path.read_bytes()
    cut = data[: len(data) // 2]  # the gzip stream ends early
    short = _gzip(zlib.decompress(data, 31)[:20_000])  # a whole stream, too few voxels
    grid, box = nifti.decode_mask(data, "m.nii.gz")
    messages = []
    for damaged in (cut, short):
        with pytest.raises(nifti.InputError) as error:
            nifti.decode_mask(damaged, "m.nii.gz")
        messages.append(str(error.value))
    assert grid.shape == (40, 30, 25)
    assert box.origin == (5, 3, 4)
    assert np.array_equal(box.data, mask[5:31, 3:21, 4:23])
    assert messages == [
        "m.nii.gz is truncated: its gzip stream ends early (an interrupted download or copy?)",
        "m.nii.gz is truncated: its header promises 30,352 bytes, the file has 20,000",
    ]


def _numpy_bounds(values: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.nonzero(values)
    if not rows.size:
        return None
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.bool_])
def test_set_bounds_equal_numpy(implementation, dtype):
    """The rows and columns around a plane's set values (in C on single bytes where built)."""
    rng = np.random.default_rng(11)
    planes = [np.zeros((7, 13)), np.ones((1, 1)), np.zeros((0, 5))]
    for shape in [(1, 9), (5, 8), (16, 17), (64, 512), (3, 1)]:
        for density in (0.0005, 0.02, 0.5):
            planes.append(rng.random(shape) < density)
        edge = np.zeros(shape)
        edge[-1, -1] = 1  # the last byte only: the word loop's tail
        planes.append(edge)
    planes.append(np.pad(np.ones((2, 3)), ((4, 5), (9, 10))))  # a block inside
    values = [np.ascontiguousarray(p, dtype=dtype) for p in planes]
    found = [plane_reader.set_bounds(v) for v in values]
    assert found == [_numpy_bounds(v) for v in values]
    assert found[:3] == [None, (0, 1, 0, 1), None]
    assert found[-1] == (4, 6, 9, 12)
    for plane, bounds in zip(values, found, strict=True):
        if bounds is not None:  # tight: the box holds every set value, and its edges hold some
            r0, r1, c0, c1 = bounds
            assert plane[r0:r1, c0:c1].sum() == plane.astype(bool).sum()
            assert plane[r0, c0:c1].any() and plane[r1 - 1, c0:c1].any()
            assert plane[r0:r1, c0].any() and plane[r0:r1, c1 - 1].any()
