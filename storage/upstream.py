"""The one place rga relies on a third-party internal (docs/DESIGN.md, "Third-party internals").

zarr's stores are asynchronous, and a remote store (s3fs through ``FsspecStore``) is bound to
the event loop zarr runs it on, so the direct shard I/O of ``storage/direct_io.py`` must run its
coroutines on that loop. zarr has no public function for this; ``zarr.core.sync.sync`` is what
zarr's own synchronous API calls. ``check()`` fails with a sentence naming the version when a
zarr release moves it, and ``tests/storage/test_upstream.py`` calls it on every supported zarr.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Coroutine
from typing import Any, TypeVar

import zarr

T = TypeVar("T")


class IncompatibleUpstream(RuntimeError):
    """A dependency no longer offers an internal that rga relies on."""


@functools.cache
def _zarr_sync() -> Any:
    try:
        sync = importlib.import_module("zarr.core.sync").sync
    except (ImportError, AttributeError) as error:
        raise IncompatibleUpstream(
            f"zarr {zarr.__version__} has no zarr.core.sync.sync, which rga's direct shard I/O "
            "uses to run store requests on zarr's event loop: install a zarr that rga supports "
            "(pyproject.toml) or update storage/upstream.py"
        ) from error
    if "coro" not in inspect.signature(sync).parameters:
        raise IncompatibleUpstream(
            f"zarr {zarr.__version__} changed zarr.core.sync.sync's signature: update "
            "storage/upstream.py"
        )
    return sync


def run_on_zarr_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` (store requests) on zarr's event loop and return its result."""
    return _zarr_sync()(coroutine)


def check() -> None:
    """Raise IncompatibleUpstream when an internal this module relies on has moved."""
    _zarr_sync()
