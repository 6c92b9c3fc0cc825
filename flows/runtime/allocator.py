"""Room in the C allocator while a study is processed, memory handed back when it is done.

Why: Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` so that freed
memory goes back to the operating system. Setting it also switches off glibc's dynamic mmap
threshold, so every temporary above 128 KiB (numpy boxes, encoded chunks, decoded planes) becomes
a fresh ``mmap`` whose pages fault in again: on a reference study that was 160,000 extra page
faults and 0.5-1 s of a 3.9 s ingest (benchmarks/RESULTS.md). Inside ``roomy_allocator`` the
thresholds are raised, so temporaries are reused from the heap; when the last task leaves, free
memory is trimmed and the thresholds are restored to what the environment asked for.

Only glibc has ``mallopt``; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_ENVIRONMENT = {
    _M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_",
    _M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_",
}
_GLIBC_DEFAULT = 128 << 10  # both thresholds' defaults
ROOMY = {_M_TRIM_THRESHOLD: 32 << 20, _M_MMAP_THRESHOLD: 32 << 20}  # 32 MiB: glibc's largest

_lock = threading.Lock()
_inside = 0  # tasks of this process inside roomy_allocator (a worker may run several threads)


def fixed_thresholds(environ: Mapping[str, str]) -> dict[int, int] | None:
    """The mallopt thresholds that ``environ`` fixed for this process, or None.

    None means glibc's thresholds are dynamic (no ``MALLOC_*_THRESHOLD_`` variable): they adapt
    to large temporaries by themselves, and are best left alone.
    """
    if not any(name in environ for name in _ENVIRONMENT.values()):
        return None
    fixed = {}
    for parameter, name in _ENVIRONMENT.items():
        value = environ.get(name, "").strip()
        fixed[parameter] = int(value) if value.isdigit() else _GLIBC_DEFAULT
    return fixed


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") else None


_LIBC = _glibc()
_RESTORE = fixed_thresholds(os.environ)


@contextmanager
def roomy_allocator() -> Iterator[None]:
    """Where the environment fixed glibc's thresholds, raise them for the duration; afterwards
    give free memory back and restore them."""
    global _inside
    if _LIBC is None or _RESTORE is None:
        yield
        return
    with _lock:
        _inside += 1
        if _inside == 1:
            _set(ROOMY)
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _LIBC.malloc_trim(0)
                _set(_RESTORE)


def _set(thresholds: dict[int, int]) -> None:
    for parameter, value in thresholds.items():
        _LIBC.mallopt(parameter, value)  # type: ignore[union-attr]
