"""The C sparse gzip reader against zlib, and against the zlib-ng fallback it replaces."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from niftis import save
from zlib_ng import zlib_ng

import flows.codecs.plane_reader as plane_reader
from flows.codecs.plane_reader import (
    SPARSE_READER_BUILT,
    ScanningReader,
    SparseGzipError,
    gzip_reader,
)
from flows.inputs import nifti

pytestmark = pytest.mark.skipif(not SPARSE_READER_BUILT, reason="the C reader is not built")
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


def _streams() -> list[tuple[bytes, bytes]]:
    """(gzip file, its decoded bytes): levels 0-9, four strategies, several members, padding."""
    cases = []
    for data in _payloads():
        for level in (0, 1, 6, 9):
            for strategy in STRATEGIES if level else [zlib.Z_DEFAULT_STRATEGY]:
                cases.append((_gzip(data, level, strategy), data))
        cases.append((_gzip(data) + _gzip(data[::-1], 1), data + data[::-1]))
        cases.append((_gzip(data) + bytes(9), data))  # zero padding after the last member
    return cases


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


def test_the_c_reader_is_built():
    """CI installs with a C compiler: the fast path, not the fallback, is what runs there."""
    assert SPARSE_READER_BUILT
    assert isinstance(plane_reader.open_planes(_gzip(b"x")), plane_reader._SparseReader)


def test_dense_reads_equal_zlib():
    for stream, data in _streams():
        reader = plane_reader.open_planes(stream)
        buffer = bytearray(len(data) + 7)
        got = reader.readinto(buffer)
        reader.finish()
        assert bytes(buffer[:got]) == data
        assert reader.position == len(data)


def test_small_reads_resume_exactly_where_they_stopped():
    for stream, data in _streams()[::7]:
        reader, pieces = plane_reader.open_planes(stream), []
        while piece := reader.read(997):
            pieces.append(piece)
        assert b"".join(pieces) == data


@pytest.mark.parametrize("plane_size", [1000, 4096, 777])
def test_plane_skipping_equals_decoding_every_plane(plane_size):
    """Same set planes, same bytes, as zlib-ng plus a zero test; spans hold every set byte."""
    for stream, data in _streams():
        total = len(data) // plane_size
        fast, spans = _planes(plane_reader.open_planes(stream), plane_size, total)
        slow, _ = _planes(ScanningReader(gzip_reader(stream)), plane_size, total)
        assert fast == slow
        for k, (first, stop) in spans:
            values = np.frombuffer(fast[k], np.uint8)
            set_bytes = np.flatnonzero(values)
            assert (first, stop) == (set_bytes[0], set_bytes[-1] + 1)


def test_the_data_ending_inside_the_planes_is_reported():
    stream = _gzip(bytes(3500) + b"\x01" + bytes(1599))  # 5,100 bytes
    reader = plane_reader.open_planes(stream)
    plane = bytearray(1000)
    assert reader.next_set_plane(plane, 10) == 3  # planes 0-2 empty, plane 3 holds the 1
    assert reader.span == (500, 501)
    assert reader.next_set_plane(plane, 6) == -1  # plane 4 empty, plane 5 cut at 100 bytes
    assert reader.position == 5100


def _outcome(read, stream: bytes) -> tuple[str, bytes | None]:
    try:
        return "ok", read(stream)
    except EOFError:
        return "truncated", None
    except (zlib_ng.error, zlib.error, SparseGzipError, OSError, ValueError):
        return "corrupt", None


def _read_all_c(stream: bytes) -> bytes:
    reader = plane_reader._SparseReader(stream)  # open_planes would take bad magic as no gzip
    out = bytearray(1 << 21)
    got = reader.readinto(out)
    reader.finish()
    return bytes(out[:got])


def _read_all_zlib_ng(stream: bytes) -> bytes:
    reader = gzip_reader(stream)
    return b"".join(iter(lambda: reader.read(1 << 20), b""))


def test_damaged_streams_are_refused_as_zlib_ng_refuses_them():
    """Flipped bits and cut ends: accepted with zlib-ng's bytes, or refused; never a crash."""
    rng = np.random.default_rng(11)
    originals = [stream for stream, _ in _streams()[::5] if len(stream) > 30]
    compared = 0
    for stream in originals:
        for _ in range(12):
            damaged = bytearray(stream)
            if rng.random() < 0.2:
                damaged = damaged[: int(rng.integers(1, len(damaged)))]
            else:
                for _ in range(int(rng.integers(1, 4))):
                    at = int(rng.integers(0, len(damaged)))
                    damaged[at] ^= 1 << int(rng.integers(0, 8))
            ours = _outcome(_read_all_c, bytes(damaged))
            theirs = _outcome(_read_all_zlib_ng, bytes(damaged))
            assert (ours[0] == "ok") == (theirs[0] == "ok")
            assert ours[1] == theirs[1]
            compared += 1
    assert compared > 300


def test_a_failed_reader_stays_failed():
    stream = bytearray(_gzip(bytes(100_000)))
    stream[-8] ^= 0xFF  # the CRC
    reader = plane_reader.open_planes(bytes(stream))
    with pytest.raises(SparseGzipError, match="CRC"):
        reader.finish()
    with pytest.raises(SparseGzipError, match="CRC"):
        reader.read(10)


def test_masks_decode_the_same_through_either_reader(tmp_path, monkeypatch):
    """decode_mask: the C reader and the zlib-ng fallback give the same box, bytes and errors."""
    rng = np.random.default_rng(3)
    mask = np.zeros((40, 30, 25), np.uint8)
    mask[5:17, 3:9, 4:20] = rng.random((12, 6, 16)) < 0.6
    mask[30, 20, 22] = 1
    path = save(tmp_path / "m.nii.gz", mask)
    data = path.read_bytes()
    cut = data[: len(data) // 2]  # the gzip stream ends early
    short = _gzip(zlib.decompress(data, 31)[:20_000])  # a whole stream, too few voxels
    results = []
    for built in (True, False):
        if not built:
            monkeypatch.setattr(plane_reader, "_SparseReader", None)
            monkeypatch.setattr(plane_reader, "_byte_bounds", None)
        grid, box = nifti.decode_mask(data, "m.nii.gz")
        messages = []
        for damaged in (cut, short):
            with pytest.raises(nifti.InputError) as error:
                nifti.decode_mask(damaged, "m.nii.gz")
            messages.append(str(error.value))
        results.append((grid.shape, box.origin, box.data.tobytes(), messages))
    assert results[0] == results[1]
    assert results[0][1] == (5, 3, 4)
    assert "gzip stream ends early" in results[0][3][0]
    assert "header promises 30,352 bytes, the file has 20,000" in results[0][3][1]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.bool_])
def test_set_bounds_in_c_equal_numpy(monkeypatch, dtype):
    """The rows and columns around a plane's set values: C on single bytes, numpy otherwise."""
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
    found_c = [plane_reader.set_bounds(v) for v in values]
    monkeypatch.setattr(plane_reader, "_byte_bounds", None)
    found_numpy = [plane_reader.set_bounds(v) for v in values]
    assert found_c == found_numpy
    assert found_c[:3] == [None, (0, 1, 0, 1), None]
    assert found_c[-1] == (4, 6, 9, 12)
    for plane, bounds in zip(values, found_c, strict=True):
        if bounds is not None:  # tight: the box holds every set value, and its edges hold some
            r0, r1, c0, c1 = bounds
            assert plane[r0:r1, c0:c1].sum() == plane.astype(bool).sum()
            assert plane[r0, c0:c1].any() and plane[r1 - 1, c0:c1].any()
            assert plane[r0:r1, c0].any() and plane[r0:r1, c1 - 1].any()
