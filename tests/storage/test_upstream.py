"""storage/upstream.py: the third-party internals rga relies on are where it expects them."""

import pytest
import zarr

from storage import upstream


def test_the_internals_rga_relies_on_exist_in_this_zarr():
    # Fails with a sentence naming the zarr version when a release moves zarr.core.sync.sync.
    upstream.check()


def test_coroutines_run_on_zarr_loop_against_a_real_store(tmp_path):
    store = zarr.storage.LocalStore(tmp_path)
    prototype = zarr.buffer.default_buffer_prototype()
    upstream.run_on_zarr_loop(store.set("a/b", prototype.buffer.from_bytes(b"bytes")))
    read = upstream.run_on_zarr_loop(store.get("a/b", prototype=prototype))
    assert read.to_bytes() == b"bytes" and (tmp_path / "a" / "b").read_bytes() == b"bytes"


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
