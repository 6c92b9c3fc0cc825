"""The store implementations the storage contracts run against: a local folder and real S3.

``store_root`` is parametrised over ``local`` (a ``tmp_path`` folder) and ``s3`` (a fresh bucket
on the session's moto server, tests/conftest.py ``s3_server``); tests ask it for addresses
(``ref``, ``folder``, ``url``) and use it to put and inspect raw objects, so that one test body
checks one contract on every implementation.
"""

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pytest
import s3fs

from storage.files import Folder
from storage.location import StoreRef

KINDS = ["local", "s3"]


@dataclass(frozen=True)
class StoreRoot:
    """A place where stores and input files live: a local folder or an S3 bucket."""

    kind: str  # "local" or "s3"
    root: str  # a path or s3://bucket
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def url(self, name: str = "") -> str:
        """The address of ``name`` (a relative path) under this root."""
        return f"{self.root}/{name}".rstrip("/")

    def ref(self, name: str) -> StoreRef:
        return StoreRef(self.url(name), dict(self.storage_options))

    def folder(self, name: str = "") -> Folder:
        return Folder(self.url(name), dict(self.storage_options))

    def _fs(self, name: str) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, path = fsspec.core.url_to_fs(self.url(name), **dict(self.storage_options))
        fs.invalidate_cache()  # what the stores wrote went through other filesystem objects
        return fs, path

    def put(self, name: str, data: bytes) -> None:
        """Write the object (file) ``name`` with ``data``, making folders as needed."""
        fs, path = self._fs(name)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, data)

    def cat(self, name: str) -> bytes:
        fs, path = self._fs(name)
        return fs.cat_file(path)

    def remove(self, name: str) -> None:
        fs, path = self._fs(name)
        fs.rm_file(path)

    def exists(self, name: str) -> bool:
        fs, path = self._fs(name)
        return fs.exists(path)

    def objects(self, name: str = "") -> dict[str, str]:
        """sha256 of every object (file) below ``name``, by path relative to it."""
        fs, path = self._fs(name)
        if not fs.exists(path):
            return {}
        found = sorted(fs.find(path))
        prefix = path.rstrip("/") + "/"
        return {p.removeprefix(prefix): hashlib.sha256(fs.cat_file(p)).hexdigest() for p in found}


@pytest.fixture
def local_root(tmp_path) -> StoreRoot:
    return StoreRoot("local", str(tmp_path))


@pytest.fixture
def s3_root(s3_server) -> StoreRoot:
    """A fresh bucket (created without a region, as moto's server expects) for this test."""
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(**s3_server).mkdir(bucket)
    return StoreRoot("s3", f"s3://{bucket}", dict(s3_server))


@pytest.fixture(params=KINDS)
def store_root(request) -> StoreRoot:
    """Each store implementation in turn."""
    return request.getfixturevalue(f"{request.param}_root")
