"""storage/upstream.py: the third-party internals rga relies on are where it expects them (that
coroutines run on zarr's loop against a real store, local and S3: test_store_contract.py)."""

import pytest

from storage import upstream


def test_the_internals_rga_relies_on_exist_in_this_zarr():
    # Fails with a sentence naming the zarr version when a release moves zarr.core.sync.sync.
    upstream.check()


def test_a_moved_internal_is_reported_with_the_zarr_version(monkeypatch):
    import zarr.core.sync

    upstream._zarr_sync.cache_clear()
    monkeypatch.delattr(zarr.core.sync, "sync")  # as a zarr release that moved it would be
    try:
        with pytest.raises(upstream.IncompatibleUpstream, match=f"zarr {zarr.__version__} has no"):
            upstream.check()
    finally:
        monkeypatch.undo()
        upstream._zarr_sync.cache_clear()
    upstream.check()
