"""The build log: one JSON record per run that changed the store, kept beside its arrays.

Each run writes its own object, ``rga-log/<lock token>.json`` (the token of the store's lock
grows with every acquisition, so the names sort in run order): an update writes one small
object however long the log is. Stores from before this layout keep their ``rga-log.jsonl``,
read as the oldest records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from storage.location import StoreRef
from storage.objects import get_object, list_objects, put_object

LOG_FOLDER = "rga-log"
LEGACY_LOG = "rga-log.jsonl"


def append_record(ref: StoreRef, record: Mapping[str, Any]) -> None:
    """Add a run's record, named by its ``lock_token`` (the lock's, held by that run)."""
    body = json.dumps(dict(record), sort_keys=True).encode() + b"\n"
    put_object(ref, f"{LOG_FOLDER}/{int(record['lock_token']):012d}.json", body)


def read_records(ref: StoreRef) -> list[dict[str, Any]]:
    """Every record, oldest first; an empty list for a store without a log."""
    legacy = get_object(ref, LEGACY_LOG) or b""
    records = [json.loads(line) for line in legacy.decode().splitlines() if line.strip()]
    for key in list_objects(ref, LOG_FOLDER):
        body = get_object(ref, key)
        if body is not None:
            records.append(json.loads(body))
    return records
