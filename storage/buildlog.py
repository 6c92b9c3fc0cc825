"""The build log: one JSON line per run that changed the store, kept beside its arrays."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import fsspec

from storage.location import StoreRef

LOG_NAME = "rga-log.jsonl"


def _log_url(ref: StoreRef) -> str:
    return f"{ref.url.rstrip('/')}/{LOG_NAME}"


def append_record(ref: StoreRef, record: Mapping[str, Any]) -> None:
    """Add one record (the store's lock must be held: this is a read-modify-write)."""
    existing = read_records(ref)
    lines = [json.dumps(r, sort_keys=True) for r in [*existing, dict(record)]]
    with fsspec.open(_log_url(ref), "w", **dict(ref.storage_options)) as f:
        f.write("\n".join(lines) + "\n")


def read_records(ref: StoreRef) -> list[dict[str, Any]]:
    """Every record, oldest first; an empty list for a store without a log."""
    try:
        with fsspec.open(_log_url(ref), "r", **dict(ref.storage_options)) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
