"""Where a store lives: a local path or an fsspec URL, plus its storage options."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.config
import zarr.storage
from zarr.abc.store import Store

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_STUDY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STORAGE_OPTIONS_CONFIG = "rga.storage-options"  # Dask config key (env DASK_RGA__STORAGE_OPTIONS)
# Option names whose values are credentials: never printed, logged or written to a report.
_SECRET_KEY = re.compile(r"key|secret|token|password|passwd|credential|signature|sas", re.I)


@dataclass(frozen=True)
class StoreRef:
    """A store's address. Options (credentials) never appear in its repr."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Remote stores take defaults from the Dask config, so every command honours it.
        if not self.is_local:
            options = resolve_storage_options(self.storage_options)
            object.__setattr__(self, "storage_options", options)

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


def parse_storage_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` flags as fsspec options; a VALUE that parses as JSON is used as such."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"storage option {key.strip() or pair!r} must look like KEY=VALUE")
        try:
            value: Any = json.loads(text)
        except json.JSONDecodeError:
            value = text
        options[key.strip()] = value
    return options


def resolve_storage_options(flags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Options from the Dask config key ``rga.storage-options``, overridden by ``flags``.

    Anything not given here is left to the filesystem library (s3fs reads ``AWS_*`` and
    ``~/.aws``; fsspec reads ``FSSPEC_<PROTOCOL>_<KEY>``), so credentials can stay out of
    command lines.
    """
    configured = dask.config.get(STORAGE_OPTIONS_CONFIG, None) or {}
    if not isinstance(configured, Mapping):
        raise ValueError(f"the Dask config key {STORAGE_OPTIONS_CONFIG} must be a mapping")
    return {**configured, **(flags or {})}


def redact(text: str, *option_sets: Mapping[str, Any]) -> str:
    """``text`` with every credential value of the given storage options replaced by ***."""
    for secret in sorted(_secrets(option_sets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _secrets(option_sets: Sequence[Mapping[str, Any]]) -> set[str]:
    found: set[str] = set()
    for options in option_sets:
        for key, value in options.items():
            if isinstance(value, Mapping):
                found |= _secrets([value])
            elif isinstance(value, str) and value and _SECRET_KEY.search(str(key)):
                found.add(value)
    return found
