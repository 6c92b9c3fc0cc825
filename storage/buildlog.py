"""The build log: one JSON line per run that changed the store, kept beside its arrays."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import fsspec

from storage.location import StoreRef

LOG_NAME = "rga-log.jsonl"


def _log_url(ref: StoreRef) -> str:
    return f"{ref.url.rstrip('/')}/{LOG_NAME}"


def append_record(ref: StoreRef, record: Mapping[str, Any]) -> None:
    """Add one record (the store's lock must be held: this is a read-modify-write).

    The log is replaced whole, never truncated in place: a full disk leaves the old log.
    """
    existing = read_records(ref)
    lines = [json.dumps(r, sort_keys=True) for r in [*existing, dict(record)]]
    body = ("\n".join(lines) + "\n").encode()
    if not ref.is_local:  # an object store replaces an object in one PUT
        with fsspec.open(_log_url(ref), "wb", **dict(ref.storage_options)) as f:
            f.write(body)
        return
    path = ref.local_path / LOG_NAME
    partial = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        partial.write_bytes(body)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read_records(ref: StoreRef) -> list[dict[str, Any]]:
    """Every record, oldest first; an empty list for a store without a log."""
    try:
        with fsspec.open(_log_url(ref), "r", **dict(ref.storage_options)) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
