"""Fixtures of the flows tests: the two implementations of ``flows.codecs.plane_reader``, which
the codecs and the inputs tests run over.

The C reader (``_sparse_gzip.c``) is built at install time when a C toolchain is present. Its
tests skip only where it could not have been built; with a compiler present, a missing extension
is a failure, not a skip.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

import flows.codecs.plane_reader as plane_reader
from flows.codecs.plane_reader import SPARSE_READER_BUILT, PlaneReader, ScanningReader, gzip_reader


def c_toolchain() -> str | None:
    """The C compiler setuptools would build the extension with, if it and Python.h exist."""
    command = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    words = shlex.split(command)
    compiler = shutil.which(words[0]) if words else None
    header = Path(sysconfig.get_paths()["include"], "Python.h")
    return compiler if compiler and header.is_file() else None


def require_c_reader() -> None:
    """Skip where the extension could not be built; fail where it should have been."""
    if SPARSE_READER_BUILT:
        return
    compiler = c_toolchain()
    if compiler is None:
        pytest.skip("the C reader is not built, and there is no C compiler to build it")
    pytest.fail(
        f"the C reader is not built although {compiler} is present: "
        "python -m pip install --no-deps -e . shows why"
    )


class Implementation(NamedTuple):
    name: str  # "c" or "fallback"
    open_gzip: Callable[[bytes], PlaneReader]  # a reader of gzip bytes (no magic check)


@pytest.fixture(params=["c", "fallback"])
def implementation(request, monkeypatch) -> Implementation:
    """Each plane reader in turn. For "fallback", the module's C entry points are switched off,
    so ``open_planes`` and ``set_bounds`` (and ``nifti``, which calls them) take the zlib-ng and
    numpy paths, as on an install without a C compiler."""
    if request.param == "c":
        require_c_reader()
        return Implementation("c", plane_reader._SparseReader)
    monkeypatch.setattr(plane_reader, "_SparseReader", None)
    monkeypatch.setattr(plane_reader, "_byte_bounds", None)
    return Implementation("fallback", lambda data: ScanningReader(gzip_reader(data)))


@pytest.fixture
def c_compiler() -> str | None:
    """The C compiler the install would have built the extension with; None if there is none."""
    return c_toolchain()


@pytest.fixture
def c_reader() -> type:
    """The C reader's class, for tests of it alone (the fuzz test)."""
    require_c_reader()
    return plane_reader._SparseReader
