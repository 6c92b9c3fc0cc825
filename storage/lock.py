"""One writer per dataset store: an exclusive, fenced lock beside the store (``<store>.lock``).

Local stores use ``fcntl.flock``: the kernel holds it for as long as the holder lives and drops
it when the holder dies, even under ``kill -9``, so nothing can take it over from a live holder.

Object stores have no such lock and no atomic rename, so they get a fenced lease, built on the
two conditional writes S3, MinIO and moto honour (docs/DESIGN.md, "The update lease"):

- the lease object carries a fencing token that grows with every acquisition; it is created with
  ``If-None-Match: *`` and every later write of it (take-over, heartbeat, release) is a
  compare-and-swap with ``If-Match: <the ETag this holder last saw>``;
- a lease is taken over when its holder released it, or when it stopped beating: its heartbeat is
  older than the lease by the wall clock, or this process has seen it unchanged for that long;
- before each write that publishes (slot allocation, every commit, pruning, the build log) the
  holder calls ``Hold.fence()``, a heartbeat swap: it fails once another process holds a newer
  token, and the run stops with ``LeaseLost`` before publishing anything.

A store that ignores the conditions would admit two holders: each acquisition checks that a
create and a swap against a wrong ETag are refused, and stops with ConditionalWritesUnsupported.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dask.config
import fsspec

from storage.location import StoreRef

log = logging.getLogger(__name__)
LEASE_SECONDS_CONFIG = "rga.lease-seconds"  # Dask config key (env DASK_RGA__LEASE_SECONDS)
DEFAULT_LEASE_SECONDS = 120.0
_NEVER_AN_ETAG = '"rga-probe-not-an-etag"'


class StoreLocked(RuntimeError):
    """Another process holds the store's lock."""


class LeaseLost(RuntimeError):
    """Another process took this run's lease over: the run may no longer write to the store."""


class ConditionalWritesUnsupported(RuntimeError):
    """The object store ignores ``If-None-Match`` or ``If-Match``: a lease cannot be fenced."""


@dataclass(frozen=True)
class Hold:
    """What the lock's holder gets for the block."""

    token: int  # the fencing token: one more than the previous holder's
    taken_over: bool  # the previous holder stopped without releasing: it may still be writing
    fence: Callable[[], None]  # call before each write that publishes; raises LeaseLost


@contextlib.contextmanager
def store_lock(
    ref: StoreRef,
    *,
    wait: bool = False,
    poll_seconds: float = 1.0,
    lease_seconds: float | None = None,
) -> Iterator[Hold]:
    """Hold the exclusive lock of ``ref`` for the block; raise StoreLocked unless ``wait``.

    ``lease_seconds`` (object stores) defaults to the Dask config key ``rga.lease-seconds``.
    """
    lock = StoreRef(ref.url.rstrip("/") + ".lock", ref.storage_options)
    if lock.is_local:
        with _local_lock(lock, wait, poll_seconds) as hold:
            yield hold
        return
    seconds = lease_seconds or float(dask.config.get(LEASE_SECONDS_CONFIG, DEFAULT_LEASE_SECONDS))
    lease = _Lease(lock, seconds)
    hold = lease.acquire(wait, poll_seconds)
    try:
        yield hold
    finally:
        lease.release()


# --- local disks: flock -----------------------------------------------------------------------


@contextlib.contextmanager
def _local_lock(lock: StoreRef, wait: bool, poll_seconds: float) -> Iterator[Hold]:
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
        token = int(_read_local(path).get("token", 0)) + 1
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({**_holder(), "token": token}).encode(), 0)
        # Nothing to fence: no other process can hold the flock while this one lives.
        yield Hold(token=token, taken_over=False, fence=lambda: None)
    finally:
        os.close(fd)  # closing releases the flock


def _read_local(path: os.PathLike) -> dict[str, Any]:
    try:
        with open(path) as f:
            return json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}


# --- object stores: a fenced lease ------------------------------------------------------------


class _Lease:
    """The lease object of one store, as this process sees it (its content and ETag)."""

    def __init__(self, lock: StoreRef, lease_seconds: float):
        self.lock = lock
        self.lease_seconds = lease_seconds
        self.fs, self.path = fsspec.core.url_to_fs(lock.url, **dict(lock.storage_options))
        self.record: dict[str, Any] = {}
        self.etag = ""
        self.lost = False
        self._guard = threading.Lock()  # the heartbeat thread and fence() both swap
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self, wait: bool, poll_seconds: float) -> Hold:
        """Create the lease or take it over (token + 1), then start the heartbeat."""
        seen: dict[str, float] = {}  # ETag -> when this process first saw it (monotonic)
        while True:
            current = self._read()
            if current is None:
                mine = self._record(token=1, taken_over=False)
                if self._create(mine):
                    break
                continue
            record, etag = current
            seen.setdefault(etag, time.monotonic())
            if record.get("released") or self._stale(record, seen[etag]):
                mine = self._record(int(record.get("token", 0)) + 1, not record.get("released"))
                new_etag = self._swap(mine, etag)
                if new_etag is not None:
                    self.etag = new_etag
                    break
                continue  # someone else moved first: look again
            if not wait:
                raise StoreLocked(_busy_message(self.lock, record))
            time.sleep(poll_seconds)
        self.record = mine
        self._check_conditions()
        if mine["taken_over"]:
            log.warning(
                "%s: took the update lease over (token %d) from a holder that stopped beating",
                self.lock.url.removesuffix(".lock"),
                mine["token"],
            )
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="rga-lease")
        self._beat.start()
        return Hold(token=mine["token"], taken_over=mine["taken_over"], fence=self.renew)

    def renew(self) -> None:
        """Swap in a fresh heartbeat; raise LeaseLost if another process holds the lease now."""
        with self._guard:
            if self.lost:
                raise LeaseLost(self._lost_message())
            mine = {**self.record, "heartbeat": time.time()}
            etag = self._swap(mine, self.etag)
            if etag is None:
                self.lost = True
                raise LeaseLost(self._lost_message())
            self.record, self.etag = mine, etag

    def release(self) -> None:
        """Stop beating and mark the lease released (its token stays, for the next holder)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        with self._guard:
            if self.lost:
                return
            try:
                released = self._swap({**self.record, "released": True}, self.etag)
            except OSError as error:  # the lease then expires on its own
                log.warning("%s: could not release the lease (%s)", self.lock.url, error)
                return
            if released is None:
                log.warning("%s: the lease was taken over before it was released", self.lock.url)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.renew()
            except LeaseLost:
                log.error("%s", self._lost_message())
                return
            except OSError as error:  # a transient store error: the next beat tries again
                log.warning("%s: lease heartbeat failed (%s)", self.lock.url, error)

    def _stale(self, record: dict[str, Any], first_seen: float) -> bool:
        """Stopped beating: by the holder's heartbeat time, or by this process's own clock
        (unchanged since first seen), so a skewed clock delays a take-over at most."""
        beat_age = time.time() - float(record.get("heartbeat", 0))
        unchanged_for = time.monotonic() - first_seen
        return max(beat_age, unchanged_for) > self.lease_seconds

    def _record(self, token: int, taken_over: bool) -> dict[str, Any]:
        return {**_holder(), "token": token, "taken_over": taken_over}

    def _read(self) -> tuple[dict[str, Any], str] | None:
        """The lease's content and the ETag of a version no newer than that content (so a
        swap based on what was read fails if anything changed after the ETag was taken)."""
        self.fs.invalidate_cache(self.path)  # a cached listing would give an old ETag
        try:
            etag = self.fs.info(self.path).get("ETag")
            body = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None
        if not etag:
            raise ConditionalWritesUnsupported(self._unsupported("reports no ETag"))
        try:
            return json.loads(body or b"{}"), etag
        except ValueError:
            return {}, etag  # not ours: an unreadable lease is stale like any other

    def _create(self, record: dict[str, Any]) -> bool:
        """Write the lease if there is none (``If-None-Match: *``); False if there is."""
        try:
            reply = self.fs.pipe_file(self.path, _encode(record), mode="create")
        except FileExistsError:
            return self._landed(record)
        except OSError as error:
            if _precondition_failed(error):
                return self._landed(record)
            raise
        self.etag = _etag_of(reply) or ""
        if not self.etag:
            raise ConditionalWritesUnsupported(self._unsupported("returns no ETag for a write"))
        return True

    def _swap(self, record: dict[str, Any], etag: str) -> str | None:
        """Replace the lease if it is still the version ``etag`` (``If-Match``): its new ETag,
        or None if another process changed or removed it first."""
        try:
            reply = self.fs.pipe_file(self.path, _encode(record), IfMatch=etag)
        except FileNotFoundError:
            return None
        except OSError as error:
            if _precondition_failed(error):
                return self.etag if self._landed(record) else None
            raise
        new_etag = _etag_of(reply)
        if not new_etag:
            raise ConditionalWritesUnsupported(self._unsupported("returns no ETag for a write"))
        return new_etag

    def _landed(self, record: dict[str, Any]) -> bool:
        """Whether the lease is exactly ``record`` after all: a write whose answer was lost
        lands, and the client's retry is then refused by the condition the write changed.
        Records are unique (host, pid, token, heartbeat), so no other writer made this one."""
        current = self._read()
        if current is None or current[0] != record:
            return False
        self.etag = current[1]
        return True

    def _check_conditions(self) -> None:
        """Refuse a store that would let a second holder in: both writes below must fail."""
        body = _encode(self.record)  # the current content: an ignored condition changes nothing
        for condition, name in (
            ({"mode": "create"}, "If-None-Match"),
            ({"IfMatch": _NEVER_AN_ETAG}, "If-Match"),
        ):
            try:
                self.fs.pipe_file(self.path, body, **condition)
            except FileExistsError:
                continue
            except OSError as error:
                if _precondition_failed(error):
                    continue
                raise
            raise ConditionalWritesUnsupported(self._unsupported(f"ignores {name}"))

    def _unsupported(self, what: str) -> str:
        store = self.lock.url.removesuffix(".lock")
        return (
            f"{store}: the object store {what}, so concurrent updates cannot be fenced; "
            "use a store with conditional writes (S3, MinIO, moto) or a local disk"
        )

    def _lost_message(self) -> str:
        store = self.lock.url.removesuffix(".lock")
        return (
            f"{store}: this run's update lease (token {self.record.get('token')}) was taken "
            "over by another process; it stopped before committing anything more. Studies "
            "committed so far are intact; run the update again to finish"
        )


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True).encode()


def _etag_of(reply: Any) -> str | None:
    """The ETag of a write, from s3fs's reply to ``pipe_file`` (the PutObject response)."""
    return reply.get("ETag") if isinstance(reply, dict) else None


def _precondition_failed(error: OSError) -> bool:
    """Whether a conditional write was refused because another write came first.

    s3fs turns S3's answer into an OSError whose cause is botocore's ClientError: 412
    PreconditionFailed, or 409 ConditionalRequestConflict (AWS, two conditional writes at once).
    """
    response = getattr(error.__cause__, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


# --- both -------------------------------------------------------------------------------------


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


def _busy_message(lock: StoreRef, holder: dict[str, Any]) -> str:
    store = lock.url.removesuffix(".lock")
    return (
        f"{store} is being updated by {_describe(holder)}; "
        "wait for it to finish or pass --wait to queue behind it"
    )
