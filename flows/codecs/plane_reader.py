"""Decoded NIfTI bytes as a stream that can skip all-zero planes: what mask decoding reads from.

``open_planes`` gives the C reader of ``_sparse_gzip.c`` (beside this file) for gzip files.
It never writes the zero runs that fill most of a mask file, so an all-zero plane costs only its
compressed symbols; decoding a study's 210 reference masks takes 0.38 s instead of 2.2 s for
zlib-ng plus a zero test (benchmarks/RESULTS.md). Where the extension could not be built (no C
compiler at install time) or the file is not gzip, ``ScanningReader`` gives the same interface,
and the same results, by decoding every plane and comparing it with zeros. ``set_bounds`` then
finds the rectangle around a set plane's non-zero bytes, in C where the extension is built.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO, Protocol

import numpy as np
from zlib_ng import gzip_ng, zlib_ng

try:
    from flows.codecs._sparse_gzip import Reader as _SparseReader
    from flows.codecs._sparse_gzip import error as SparseGzipError
    from flows.codecs._sparse_gzip import set_bounds as _byte_bounds
except ImportError:  # pragma: no cover - exercised by installing without a compiler
    _SparseReader = _byte_bounds = None

    class SparseGzipError(ValueError):  # type: ignore[no-redef]
        """Never raised: the C reader is absent."""


GZIP_MAGIC = b"\x1f\x8b"
SPARSE_READER_BUILT = _SparseReader is not None


class PlaneReader(Protocol):
    """A decoded byte stream that can also skip planes holding nothing but zero bytes."""

    position: int  # decoded bytes so far
    span: tuple[int, int]  # after next_set_plane: (first, stop) around the plane's set bytes

    def read(self, size: int, /) -> bytes: ...
    def readinto(self, buffer: Any, /) -> int: ...

    def next_set_plane(self, plane: Any, planes: int, /) -> int:
        """Decode up to ``planes`` planes of ``len(plane)`` bytes; leave the first holding a
        non-zero byte in ``plane`` and return how many all-zero planes came before it
        (``planes``: none held one; -1: the data ended first)."""
        ...

    def finish(self) -> None:
        """Decode the rest, so that gzip's end-of-stream checks (CRC, length) run."""
        ...

    def close(self) -> None: ...


def set_bounds(values: np.ndarray) -> tuple[int, int, int, int] | None:
    """Rows [r0, r1) and columns [c0, c1) around a 2D array's non-zero values; None if none.

    For a C-ordered array of single bytes (a mask plane), one C pass over its rows, which stops
    at each row's first and last set byte; numpy otherwise.
    """
    if not values.size:
        return None
    if _byte_bounds is not None and values.itemsize == 1 and values.flags.c_contiguous:
        return _byte_bounds(values, values.shape[1])
    set_ = values != 0
    rows = np.flatnonzero(set_.any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero(set_[rows[0] : rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def open_planes(data: bytes) -> PlaneReader:
    """The fastest plane reader for the bytes of a ``.nii`` or ``.nii.gz`` file."""
    if data[:2] == GZIP_MAGIC and _SparseReader is not None:
        return _SparseReader(data)
    return ScanningReader(open_dense(data))


def open_dense(data: bytes) -> BinaryIO:
    """A plain decoded stream: zlib-ng for gzip (the fastest dense decoder measured), the bytes
    as they are otherwise."""
    return gzip_reader(data) if data[:2] == GZIP_MAGIC else io.BytesIO(data)


def gzip_reader(data: bytes) -> BinaryIO:
    """zlib-ng's C gzip reader: ``readinto`` decodes straight into the caller's buffer."""
    reader = getattr(zlib_ng, "_GzipReader", None)  # not public API: fall back when absent
    return reader(data) if reader else gzip_ng.GzipFile(fileobj=io.BytesIO(data))


class ScanningReader:
    """``PlaneReader`` over any stream: every plane is decoded, then compared with zeros."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.position = 0
        self.span = (0, 0)  # the whole plane: finding the set bytes would cost another scan

    def read(self, size: int) -> bytes:
        data = self.stream.read(size)
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        n = self.stream.readinto(buffer)
        self.position += n
        return n

    def next_set_plane(self, plane: bytearray, planes: int) -> int:
        view = memoryview(plane)
        zero = bytes(len(plane))
        for skipped in range(planes):
            got = 0
            while got < len(view):
                n = self.readinto(view[got:])
                if not n:
                    return -1
                got += n
            if plane != zero:  # memcmp (a memoryview would compare item by item)
                self.span = (0, len(plane))
                return skipped
        return planes

    def finish(self) -> None:
        while self.read(1 << 20):
            pass

    def close(self) -> None:
        self.stream.close()
