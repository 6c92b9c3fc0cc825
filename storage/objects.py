"""Plain objects kept inside a store beside its zarr arrays (the sources' study index, the
build log): whole-object put, get, list and delete, through fsspec.

A local put is atomic (a partial file renamed over the target), so a full disk leaves the old
object; an object store replaces an object in one PUT.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

import fsspec

from storage.location import StoreRef


def _fs(ref: StoreRef) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(ref.url, **dict(ref.storage_options))
    return fs, root.rstrip("/")


def put_object(ref: StoreRef, key: str, data: bytes) -> None:
    """Write (or replace) the object ``key`` of the store with ``data``."""
    if not ref.is_local:
        fs, root = _fs(ref)
        fs.pipe_file(f"{root}/{key}", data)
        return
    path = ref.local_path / key
    partial = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def get_object(ref: StoreRef, key: str) -> bytes | None:
    """The bytes of the object ``key``; None when there is no such object."""
    fs, root = _fs(ref)
    try:
        return fs.cat_file(f"{root}/{key}")
    except FileNotFoundError:
        return None


def list_objects(ref: StoreRef, prefix: str) -> list[str]:
    """The keys directly under the folder ``prefix`` (one listing request), sorted."""
    fs, root = _fs(ref)
    try:
        entries = fs.ls(f"{root}/{prefix}", detail=False, refresh=True)
    except FileNotFoundError:
        return []
    keys = (str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)
    return sorted(f"{prefix}/{name}" for name in keys if not name.endswith(".partial"))


def delete_objects(ref: StoreRef, keys: Iterable[str]) -> None:
    """Delete the objects ``keys``; ones already gone are fine."""
    fs, root = _fs(ref)
    for key in keys:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{root}/{key}")
