"""Incremental updates (flows/update.py): plan, idempotence, changes, pruning, parameters, log."""

import shutil
from pathlib import Path

import dask
import numpy as np
import pytest
from digests import tree_digest

import storage.dataset as dataset_store
from catalog import open_catalog
from flows.build import BuildParameters, input_hash
from flows.cli import main
from flows.ingest import ingest
from flows.phantom import phantom_inputs
from flows.update import ParametersChanged, build, plan_update, update
from storage.buildlog import read_records
from storage.location import StoreRef
from storage.sources import SourceStudy

SHAPE = (64, 64, 64)


@pytest.fixture(autouse=True)
def in_process():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def inputs():
    return phantom_inputs(6, SHAPE, seed=7)


@pytest.fixture(scope="module")
def full_sources(tmp_path_factory, inputs) -> Path:
    folder = tmp_path_factory.mktemp("full") / "sources.zarr"
    with dask.config.set(scheduler="synchronous"):
        assert not ingest(inputs, StoreRef(str(folder))).failed
    return folder


def _study(study_id: str, content: str) -> SourceStudy:
    return SourceStudy(study_id, "train", (1, 1, 1), (1.0, 1.0, 1.0), content)


def _index(rows, params):
    ids = tuple(r[0] for r in rows)
    committed = np.array([r[1] for r in rows], bool)
    hashes = tuple(input_hash(_study(r[0], r[2]), params) if r[2] else "" for r in rows)
    return dataset_store.StoreIndex(ids, committed, hashes, {})


def test_plan_builds_only_new_and_changed_and_reuses_leftover_slots():
    params = BuildParameters()
    index = _index(
        [
            ("a", True, "1"),  # unchanged
            ("b", True, "2"),  # changes to "2b"
            ("c", False, ""),  # left uncommitted by a crash: reused
            ("d", True, "4"),  # gone from the sources
            ("b", False, "x"),  # a spare slot of b from an earlier change: reused for b
        ],
        params,
    )
    studies = [_study("a", "1"), _study("b", "2b"), _study("c", "3"), _study("e", "5")]
    plan = plan_update(studies, index, params)
    assert plan.unchanged == ("a",)
    assert [(s.study_id, slot) for s, slot in plan.build] == [("c", 2), ("b", 4), ("e", 5)]
    assert plan.retire == {"b": 1}
    assert [s.study_id for s in plan.new_rows] == ["e"]
    assert plan.gone == {"d": 3}


def test_after_a_lease_take_over_the_plan_leaves_uncommitted_slots_alone():
    # The previous holder may still be writing its uncommitted slots (storage/lock.py).
    params = BuildParameters()
    index = _index([("a", True, "1"), ("b", False, "2"), ("", False, "")], params)
    studies = [_study("a", "1b"), _study("b", "2"), _study("c", "3")]
    plan = plan_update(studies, index, params, reuse_uncommitted=False)
    assert [(s.study_id, slot) for s, slot in plan.build] == [("a", 3), ("b", 4), ("c", 5)]
    assert plan.retire == {"a": 0}
    assert [s.study_id for s in plan.new_rows] == ["a", "b", "c"]
    reused = plan_update(studies, index, params)  # a clean hand-over reuses them
    assert [(s.study_id, slot) for s, slot in reused.build] == [("b", 1), ("a", 2), ("c", 3)]


def test_plan_sees_parameter_changes_as_changes():
    studies = [_study("a", "1")]
    index = _index([("a", True, "1")], BuildParameters())
    assert plan_update(studies, index, BuildParameters()).build == ()
    changed = plan_update(studies, index, BuildParameters(attenuation="exponential"))
    assert [s.study_id for s, _ in changed.build] == ["a"]


def test_second_update_with_nothing_new_changes_no_byte(full_sources, tmp_path):
    dest = tmp_path / "dataset.zarr"
    first = update(StoreRef(str(full_sources)), StoreRef(str(dest)))
    assert len(first.added) == 6 and not first.failed
    before = tree_digest(dest, ignore=())
    second = update(StoreRef(str(full_sources)), StoreRef(str(dest)))
    assert second.built == [] and len(second.unchanged) == 6
    assert tree_digest(dest, ignore=()) == before  # the log too: a no-op is not logged
    assert len(read_records(StoreRef(str(dest)))) == 1


def test_many_small_updates_equal_one_full_build(full_sources, inputs, tmp_path):
    sources, dest = StoreRef(str(tmp_path / "sources.zarr")), StoreRef(str(tmp_path / "d.zarr"))
    for start, stop in ((0, 1), (1, 3), (3, 6)):
        assert not ingest(inputs[start:stop], sources).failed
        summary = update(sources, dest)
        assert summary.added == [i.study_id for i in inputs[start:stop]]
    full = StoreRef(str(tmp_path / "full.zarr"))
    build(StoreRef(str(full_sources)), full)
    assert tree_digest(tmp_path / "d.zarr") == tree_digest(tmp_path / "full.zarr")
    assert len(read_records(dest)) == 3


def test_changed_study_is_rebuilt_alone_and_unchanged_ones_are_not_read(
    full_sources, inputs, tmp_path
):
    sources_dir = tmp_path / "sources.zarr"
    shutil.copytree(full_sources, sources_dir)
    sources, dest = StoreRef(str(sources_dir)), StoreRef(str(tmp_path / "d.zarr"))
    update(sources, dest)
    old = open_catalog(dest).sel(study=inputs[2].study_id).image.values
    # a new version of study 2, and study 4's CT made unreadable: only 2 may be read
    changed = type(inputs[2])(inputs[2].study_id, "train", SHAPE, 12345, inputs[2].geometry)
    assert not ingest([changed], sources).failed
    chunks = [p for p in (sources_dir / "studies" / inputs[4].study_id / "ct" / "c").rglob("*")]
    assert chunks
    for chunk in chunks:
        if chunk.is_file():
            chunk.unlink()
    summary = update(sources, dest)
    assert summary.changed == [inputs[2].study_id] and summary.added == []
    assert not summary.failed and len(summary.unchanged) == 5
    ds = open_catalog(dest)
    assert ds.sizes["study"] == 6 and len(set(map(str, ds.study.values))) == 6
    new = ds.sel(study=inputs[2].study_id).image.values
    assert not np.array_equal(old, new)
    assert read_records(dest)[-1]["changed"] == [inputs[2].study_id]


def test_gone_studies_are_reported_and_pruned(full_sources, inputs, tmp_path):
    dest = StoreRef(str(tmp_path / "d.zarr"))
    update(StoreRef(str(full_sources)), dest)
    fewer = StoreRef(str(tmp_path / "fewer.zarr"))
    ingest(inputs[:4], fewer)
    kept = update(fewer, dest)
    assert kept.gone == [inputs[4].study_id, inputs[5].study_id] and kept.removed == []
    assert open_catalog(dest).sizes["study"] == 6
    pruned = update(fewer, dest, prune=True)
    assert pruned.removed == kept.gone
    ds = open_catalog(dest)
    assert list(map(str, ds.study.values)) == [i.study_id for i in inputs[:4]]
    slot = 4  # study 4's slot: its shards are gone from the store
    assert not list((tmp_path / "d.zarr" / "mask" / "c" / str(slot)).rglob("*"))


def test_parameter_change_is_refused_or_rebuilt(full_sources, tmp_path, capsys):
    sources, dest = StoreRef(str(full_sources)), StoreRef(str(tmp_path / "d.zarr"))
    update(sources, dest)
    with pytest.raises(ParametersChanged, match="pass --rebuild"):
        update(sources, dest, BuildParameters(canvas=128))
    code = main(
        ["update", str(full_sources), dest.url, "--image-size", "128", "--scheduler", "synchronous"]
    )
    assert code == 2 and "image size" in capsys.readouterr().err
    rebuilt = update(sources, dest, BuildParameters(canvas=128), rebuild=True)
    assert len(rebuilt.added) == 6
    ds = open_catalog(dest)
    assert ds.sizes["y"] == 128 and ds.attrs["rga_parameters"]["canvas"] == 128


def test_update_creates_the_store_and_log_is_shown(full_sources, tmp_path, capsys):
    dest = str(tmp_path / "d.zarr")
    assert main(["update", str(full_sources), dest, "--scheduler", "synchronous"]) == 0
    assert main(["log", dest]) == 0
    out = capsys.readouterr().out
    assert "+6 added, 0 changed, 0 removed, 0 unchanged" in out
    assert "'canvas': 384" in out and "rga 0.1.0" in out


def test_union_classes_composed_from_members_give_the_bytes_of_reading_them(full_sources, tmp_path):
    """Footprints of exact unions are the OR of their members': the store is byte-identical."""
    import zarr

    composed = tmp_path / "composed.zarr"
    build(StoreRef(str(full_sources)), StoreRef(str(composed)))
    read_all = tmp_path / "sources.zarr"
    shutil.copytree(full_sources, read_all)
    for group in zarr.open_group(str(read_all / "studies"), mode="r+").group_values():
        flags = group["mask_composed"]
        assert flags[...].sum() >= 40  # the phantoms' unions are exact: most are composed
        flags[...] = False  # now every mask is read
    build(StoreRef(str(read_all)), StoreRef(str(tmp_path / "read.zarr")))
    assert tree_digest(tmp_path / "read.zarr") == tree_digest(composed)


def test_default_batches_are_two_studies_per_scheduler_thread(full_sources, tmp_path, scheduler):
    """A worker holds a batch's projections until their writes run: batches follow the cluster."""
    from distributed import Client

    from flows.runtime.cluster import scheduler_threads

    progress = []
    with Client(scheduler) as client, dask.config.set(scheduler=client):
        threads = scheduler_threads()
        build(
            StoreRef(str(full_sources)),
            StoreRef(str(tmp_path / "d.zarr")),
            on_batch=lambda done, total: progress.append(done),
        )
    assert threads == 2  # the session cluster: two workers of one thread
    assert progress == [4, 6]  # six studies, four at a time
    with dask.config.set(scheduler="synchronous"):
        assert scheduler_threads() == 1
