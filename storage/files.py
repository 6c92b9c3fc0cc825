"""Input folders on local disk or object storage: list them and read whole files.

A ``Folder`` is a small picklable address (URL plus storage options); the filesystem object is
made where it is used (fsspec caches one per process), so the same ``Folder`` works on the
client and on every worker. Listings are never served from a stale cache.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from storage.location import resolve_storage_options

_LIST_THREADS = 16  # concurrent listings when walking an object store


@dataclass(frozen=True)
class Entry:
    """One child of a folder."""

    name: str
    is_dir: bool
    size: int


@dataclass(frozen=True)
class Folder:
    """A folder's address. Options (credentials) never appear in its repr."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Like StoreRef: defaults from the Dask config key rga.storage-options, flags win.
        if "://" in self.url and not self.url.startswith("file://"):
            options = resolve_storage_options(self.storage_options)
            object.__setattr__(self, "storage_options", options)

    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, path = fsspec.core.url_to_fs(self.url, **dict(self.storage_options))
        return fs, path.rstrip("/") or "/"

    def child(self, name: str) -> Folder:
        """The folder ``name`` inside this one; ``name`` is one path component, never ``..``."""
        _check_component(name)
        return Folder(f"{self.url.rstrip('/')}/{name}", self.storage_options)

    def path_of(self, name: str) -> str:
        """The URL of the file ``name`` in this folder (for messages and provenance)."""
        _check_component(name)
        return f"{self.url.rstrip('/')}/{name}"

    def exists(self) -> bool:
        """Whether the folder exists (on object stores: whether anything lies under it)."""
        fs, path = self._fs()
        return fs.isdir(path)

    def list(self) -> list[Entry]:
        """The children, sorted by name (a missing folder has none)."""
        fs, path = self._fs()
        fs.invalidate_cache(path)
        try:
            infos = fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        entries = {}
        for info in infos:
            name = posixpath.basename(str(info["name"]).rstrip("/"))
            if name and str(info["name"]).rstrip("/") != path:
                is_dir = info.get("type") == "directory" or _links_to_folder(fs, info)
                entries[name] = Entry(name, is_dir, int(info.get("size") or 0))
        return [entries[name] for name in sorted(entries)]

    def read(self, name: str) -> bytes:
        """The whole file ``name`` in this folder; FileNotFoundError names it."""
        fs, path = self._fs()
        _check_component(name)
        try:
            return fs.cat_file(f"{path}/{name}")
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.path_of(name)} does not exist") from None

    @property
    def is_local(self) -> bool:
        return isinstance(self._fs()[0], LocalFileSystem)

    def holds(self, other: Folder) -> bool:
        """Whether ``other`` is this folder or lies below it (by address)."""
        mine, theirs = self.url.rstrip("/"), other.url.rstrip("/")
        return theirs == mine or theirs.startswith(mine + "/")

    def local_path(self, name: str | None = None) -> str | None:
        """The absolute path of this folder (or of ``name`` in it) on local disk; None on object
        stores."""
        fs, path = self._fs()
        if not isinstance(fs, LocalFileSystem):
            return None
        if name is not None:
            _check_component(name)
            path = f"{path}/{name}"
        return os.path.abspath(path)


def link_target(root: Folder, folder: Folder, name: str) -> str | None:
    """Where the file ``name`` of ``folder`` (at or below ``root``) really is, when a symbolic
    link below ``root`` leads there; None when no link is on the way (object stores have none).
    A ``root`` that is itself a link does not count: it is where the user pointed."""
    path, top = folder.local_path(name), root.local_path()
    if path is None or top is None:
        return None
    real = os.path.realpath(path)
    unlinked = os.path.normpath(os.path.join(os.path.realpath(top), os.path.relpath(path, top)))
    return None if real == unlinked else real


def is_inside(path: str, folder: Folder) -> bool:
    """Whether the local ``path`` lies within ``folder`` once links are resolved."""
    top = folder.local_path()
    if top is None:
        return False
    return os.path.commonpath([os.path.realpath(top), path]) == os.path.realpath(top)


def walk(root: Folder, prune: Callable[[str], bool]) -> Iterator[tuple[Folder, list[Entry]]]:
    """Every folder below ``root`` (root first, then level by level) with its children.

    Folders whose name satisfies ``prune`` are listed as children but not entered. On object
    stores each level's folders are listed concurrently (one request per folder).
    """
    level = [root]
    threads = 1 if root.is_local else _LIST_THREADS
    with ThreadPoolExecutor(max_workers=threads) as pool:
        while level:
            listed = list(pool.map(Folder.list, level))
            next_level = []
            for folder, entries in zip(level, listed, strict=True):
                yield folder, entries
                next_level += [
                    folder.child(e.name) for e in entries if e.is_dir and not prune(e.name)
                ]
            level = sorted(next_level, key=lambda f: f.url)


def read_text(url: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """A small text file (a CSV table) from a path or URL."""
    options = dict(storage_options or {})
    if "://" in url and not url.startswith("file://"):
        options = resolve_storage_options(options)
    try:
        with fsspec.open(url, "r", encoding="utf-8", **options) as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{url} does not exist") from None


def _links_to_folder(fs: fsspec.AbstractFileSystem, info: Mapping[str, Any]) -> bool:
    # fsspec lists a symbolic link as type "other" even when it points at a folder; users link
    # datasets into place, so a linked folder is listed as the folder it points at.
    return bool(info.get("islink")) and fs.isdir(str(info["name"]))


def _check_component(name: str) -> None:
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"{name!r} is not a single file or folder name")
