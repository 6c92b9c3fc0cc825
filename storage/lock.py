"""One writer per dataset store: an exclusive lock beside the store.

Local stores use ``fcntl.flock`` on ``<store>.lock``: the kernel releases it when the holder
dies, even under ``kill -9``, so a crashed update never blocks the next one. Object stores use
a lease object created with a conditional put (``If-None-Match: *``) and refreshed by a
heartbeat; a lease whose heartbeat is older than ``lease_seconds`` is taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import fsspec

from storage.location import StoreRef


class StoreLocked(RuntimeError):
    """Another process holds the store's lock."""


def _holder() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "heartbeat": time.time(),
    }


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process"
    return f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"


@contextlib.contextmanager
def store_lock(
    ref: StoreRef, *, wait: bool = False, poll_seconds: float = 1.0, lease_seconds: float = 120.0
) -> Iterator[None]:
    """Hold the exclusive lock of ``ref`` for the block; raise StoreLocked unless ``wait``."""
    lock = StoreRef(ref.url.rstrip("/") + ".lock", ref.storage_options)
    if lock.is_local:
        with _local_lock(lock, wait, poll_seconds):
            yield
    else:
        with _lease(lock, wait, poll_seconds, lease_seconds):
            yield


@contextlib.contextmanager
def _local_lock(lock: StoreRef, wait: bool, poll_seconds: float) -> Iterator[None]:
    path = lock.local_path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise StoreLocked(_busy_message(lock, _read_local(path))) from None
                time.sleep(poll_seconds)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _read_local(path: os.PathLike) -> dict[str, Any]:
    try:
        with open(path) as f:
            return json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}


def _busy_message(lock: StoreRef, holder: dict[str, Any]) -> str:
    store = lock.url.removesuffix(".lock")
    return (
        f"{store} is being updated by {_describe(holder)}; "
        "wait for it to finish or pass --wait to queue behind it"
    )


@contextlib.contextmanager
def _lease(lock: StoreRef, wait: bool, poll_seconds: float, lease_seconds: float) -> Iterator[None]:
    fs, path = fsspec.core.url_to_fs(lock.url, **dict(lock.storage_options))
    me = _holder()
    while not _try_create(fs, path, me):
        holder = _read_remote(fs, path)
        if time.time() - float(holder.get("heartbeat", 0)) > lease_seconds:
            fs.rm_file(path)  # the holder stopped beating: take the lease over
            continue
        if not wait:
            raise StoreLocked(_busy_message(lock, holder))
        time.sleep(poll_seconds)
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat, args=(fs, path, me, stop, lease_seconds / 3), daemon=True
    )
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        fs.rm_file(path)


def _try_create(fs: Any, path: str, me: dict[str, Any]) -> bool:
    try:
        fs.pipe_file(path, json.dumps(me).encode(), mode="create")
    except (FileExistsError, OSError) as error:
        if isinstance(error, FileExistsError) or "PreconditionFailed" in str(error):
            return False
        raise
    return True


def _read_remote(fs: Any, path: str) -> dict[str, Any]:
    try:
        return json.loads(fs.cat_file(path) or b"{}")
    except (FileNotFoundError, ValueError):
        return {}


def _heartbeat(fs: Any, path: str, me: dict[str, Any], stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        fs.pipe_file(path, json.dumps({**me, "heartbeat": time.time()}).encode())
