"""Where a store lives: a local path or an fsspec URL, plus its storage options."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zarr.storage
from zarr.abc.store import Store

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_STUDY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class StoreRef:
    """A store's address. Options (credentials) never appear in its repr."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_local(self) -> bool:
        return not _SCHEME.match(self.url) or self.url.startswith("file://")

    @property
    def local_path(self) -> Path:
        return Path(self.url.removeprefix("file://"))

    def open(self, read_only: bool = False) -> Store:
        """A zarr store object for this address."""
        if self.is_local:
            if not read_only:
                self.local_path.mkdir(parents=True, exist_ok=True)
            return zarr.storage.LocalStore(self.local_path, read_only=read_only)
        return zarr.storage.FsspecStore.from_url(
            self.url, storage_options=dict(self.storage_options), read_only=read_only
        )

    def exists(self) -> bool:
        """Whether a zarr group has been written here."""
        try:
            zarr.open_group(self.open(read_only=True), mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError):
            return False
        return True

    def sibling(self, name: str) -> StoreRef:
        """The address ``name`` next to this store (same folder or prefix)."""
        parent = self.url.rstrip("/").rsplit("/", 1)[0] if "/" in self.url.rstrip("/") else "."
        return StoreRef(f"{parent}/{name}", self.storage_options)


def check_study_id(study_id: str) -> str:
    """Reject study ids that could escape the store or confuse paths and URLs."""
    if not _STUDY_ID.match(study_id) or study_id in {".", ".."} or ".." in study_id:
        raise ValueError(
            f"study id {study_id!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return study_id
