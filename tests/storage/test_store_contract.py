"""The storage layer's contracts, written once and run on every store implementation.

Each test takes ``store_root`` (tests/storage/conftest.py): a local folder, then a bucket on a
real S3-compatible server (moto) on loopback. Only the public functions of storage/ and
catalog/ are used; raw objects are put and inspected through fsspec. Tests that hold for one
implementation only stay beside their module (symlinks and flock locally, lease take-over,
credentials and endpoint options on S3).
"""

import json
import pickle
import threading
import time

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

import storage.dataset as dataset_store
from catalog import open_catalog, select
from storage.buildlog import LEGACY_LOG, LOG_FOLDER, append_record, read_records
from storage.direct_io import BoxEncoder, encode_chunks, put, read_box
from storage.files import read_text, walk
from storage.lock import StoreLocked, store_lock
from storage.masks import PngFolder, is_dataset_store, read_study_masks
from storage.reports import read_report, report_ref, update_report
from storage.results import (
    create_results,
    mark_evaluated,
    open_results,
    results_template,
    write_results,
    write_text,
)
from storage.sources import (
    INDEX_FOLDER,
    MASK_CHUNK,
    SourceStudy,
    add_to_index,
    check_listed,
    create_sources,
    list_studies,
    merge_index,
    open_sources,
    read_available,
    read_composed,
    read_ct,
    read_masks,
    write_study,
)
from storage.upstream import run_on_zarr_loop

LABELS = ["a", "b", "c", "d"]


# ---------------------------------------------------------------------------------------------
# Sources store (storage/sources.py)


def _study(ref, study_id="s1", *, shift=0):
    """A small study in the sources store ``ref`` (created if needed): label 0 has two voxels
    in a corner box, label 2 is given but empty."""
    create_sources(ref, LABELS)
    ct = (np.arange(70 * 80 * 90, dtype=np.int16).reshape(70, 80, 90) + shift) % 2000 - 1000
    box = np.zeros((3, 4, 5), bool)
    box[0, 0, 0] = box[-1, -1, -1] = True
    masks = [(0, (60, 70, 80), box, False), (2, (0, 0, 0), np.zeros((0, 0, 0), bool), True)]
    digest = write_study(
        ref,
        study_id,
        ct=ct,
        spacing=(0.7, 0.7, 2.5),
        affine=np.diag([0.7, 0.7, 2.5, 1.0]),
        masks=iter(masks),
        attrs={"split": "train", "layout": "test"},
    )
    return ct, box, digest


def test_sources_round_trip_keeps_ct_boxes_counts_and_availability(store_root):
    ref = store_root.ref("sources.zarr")
    assert not ref.exists()
    ct, box, digest = _study(ref)
    assert ref.exists()
    root = open_sources(ref)
    [study] = list_studies(ref)
    assert (study.study_id, study.split, study.shape) == ("s1", "train", (70, 80, 90))
    assert study.spacing == (0.7, 0.7, 2.5) and study.revision == 1
    assert study.content_sha256 == digest and root["studies"]["s1"].attrs["complete"] is True
    assert root["studies"]["s1"].attrs["layout"] == "test"
    assert np.array_equal(read_ct(root, "s1"), ct)
    # label 0 has voxels, label 2 was given but empty (available), 1 and 3 absent (unknown)
    assert read_available(root, "s1").tolist() == [True, False, True, False]
    assert read_composed(root, "s1").tolist() == [False, False, True, False]
    [(label, origin, data)] = list(read_masks(root, "s1"))
    assert (label, origin) == (0, (60, 70, 80))
    assert np.array_equal(data, box)
    group = root["studies"]["s1"]
    assert group["mask_voxels"][...].tolist() == [2, 0, 0, 0]
    assert group["mask_box"][0].tolist() == [60, 70, 80, 63, 74, 85]
    assert list(read_masks(root, "s1", skip=np.array([True, False, False, False]))) == []


def test_sources_masks_are_stored_sparsely(store_root):
    _study(store_root.ref("sources.zarr"))
    shards = store_root.objects("sources.zarr/studies/s1/masks/c")
    assert len(shards) == 1  # one label has voxels: one shard object, the others none


def test_sources_list_complete_studies_sorted_by_id(store_root):
    ref = store_root.ref("sources.zarr")
    for study_id in ("s2", "s1", "s10"):
        _study(ref, study_id)
    assert [s.study_id for s in list_studies(ref)] == ["s1", "s10", "s2"]
    _study(ref, "s0")  # an existing store opens for more writes
    assert [s.study_id for s in list_studies(ref)] == ["s0", "s1", "s10", "s2"]


def _crashed_write(ref, study_id):
    """A write of ``study_id`` whose worker dies after its first mask."""

    def crashing():
        yield 0, (0, 0, 0), np.ones((2, 2, 2), bool), False
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError):
        write_study(
            ref,
            study_id,
            ct=np.zeros((8, 8, 8), np.int16),
            spacing=(1, 1, 1),
            affine=np.eye(4),
            masks=crashing(),
            attrs={},
        )


def test_sources_incomplete_studies_are_invisible(store_root):
    ref = store_root.ref("sources.zarr")
    _study(ref, "done")
    _crashed_write(ref, "half")
    assert [s.study_id for s in list_studies(ref)] == ["done"]


def test_sources_same_input_gives_identical_bytes(store_root):
    digests = []
    for name in ("one.zarr", "two.zarr"):
        _, _, content = _study(store_root.ref(name))
        digests.append((content, store_root.objects(name)))
    assert digests[0] == digests[1]


def test_sources_are_byte_identical_on_disk_and_on_s3(local_root, s3_root):
    """The content hash and every stored object are the same wherever the study is written."""
    written = {}
    for root in (local_root, s3_root):
        _, _, content = _study(root.ref("sources.zarr"))
        [study] = list_studies(root.ref("sources.zarr"))
        written[root.kind] = (content, study.content_sha256, root.objects("sources.zarr"))
    assert written["local"] == written["s3"]
    assert len(written["s3"][2]) > 10  # the comparison covered the whole store


def test_sources_a_rewrite_replaces_the_study(store_root):
    ref = store_root.ref("sources.zarr")
    _, _, first = _study(ref)
    ct = np.full((20, 30, 40), 7, np.int16)
    box = np.ones((2, 2, 2), bool)
    second = write_study(
        ref,
        "s1",
        ct=ct,
        spacing=(1, 1, 1),
        affine=np.eye(4),
        masks=iter([(3, (1, 2, 3), box, False)]),
        attrs={"split": "test"},
    )
    assert second != first
    reader = open_sources(ref)
    [study] = list_studies(ref)
    assert (study.split, study.shape, study.content_sha256) == ("test", (20, 30, 40), second)
    assert study.revision == 2
    assert (
        "layout" not in reader["studies"]["s1"].attrs
    )  # nothing of the old version's attrs survives
    assert np.array_equal(read_ct(reader, "s1"), ct)
    assert read_available(reader, "s1").tolist() == [False, False, False, True]
    [(label, origin, data)] = list(read_masks(reader, "s1"))
    assert (label, origin) == (3, (1, 2, 3)) and np.array_equal(data, box)
    # the old label's shard is gone, not just unreferenced
    assert list(store_root.objects("sources.zarr/studies/s1/masks/c")) == ["3/0/0/0"]
    _, _, again = _study(ref)  # the first version back: its hash too
    assert again == first


def test_sources_label_axis_must_match(store_root):
    ref = store_root.ref("sources.zarr")
    create_sources(ref, LABELS)
    with pytest.raises(ValueError, match="another label vocabulary"):
        create_sources(ref, ["x"])


def test_sources_missing_store_is_a_clear_error(store_root):
    with pytest.raises(FileNotFoundError, match="no sources store"):
        open_sources(store_root.ref("nothing.zarr"))


def test_sources_store_of_another_format_is_refused_with_what_to_do(store_root):
    ref = store_root.ref("sources.zarr")
    create_sources(ref, LABELS).attrs["format"] = 1  # as written before issue 7's layout
    for opening in (lambda: open_sources(ref), lambda: create_sources(ref, LABELS)):
        with pytest.raises(ValueError, match="format 1, and this rga reads format 2: ingest"):
            opening()


# ---------------------------------------------------------------------------------------------
# Direct shard and chunk I/O (storage/direct_io.py): what it writes and reads is what zarr
# writes and reads, through zarr's event loop on S3 (storage/upstream.py)

SHAPE = (270, 300, 70)  # (i, j, k): stored as (k, j, i) in MASK_CHUNK chunks, edges padded


def _mask_array(store_root, n_labels, shape=SHAPE):
    """The (writable) mask array of a study of the sources layout, no mask written yet."""
    ref = store_root.ref("shards.zarr")
    labels = [f"l{i}" for i in range(n_labels)]
    root = create_sources(ref, labels)
    ct = np.zeros(shape, np.int16)
    write_study(ref, "s", ct=ct, spacing=(1, 1, 1), affine=np.eye(4), masks=(), attrs={})
    return ref, root["studies"]["s"]["masks"]


def _random_box(rng, shape):
    start = rng.integers(0, shape)
    stop = start + rng.integers(1, np.array(shape) - start + 1)
    return tuple(int(v) for v in start), tuple(int(v) for v in stop)


def test_coroutines_run_on_zarr_loop_against_the_store(store_root):
    store = store_root.ref("raw").open()
    prototype = zarr.buffer.default_buffer_prototype()
    run_on_zarr_loop(store.set("a/b", prototype.buffer.from_bytes(b"bytes")))
    read = run_on_zarr_loop(store.get("a/b", prototype=prototype))
    assert read.to_bytes() == b"bytes" and store_root.cat("raw/a/b") == b"bytes"


def test_read_box_equals_zarr_indexing(store_root):
    _, masks = _mask_array(store_root, 4)
    rng = np.random.default_rng(3)
    for label, (k0, k1) in enumerate([(0, 70), (5, 40), (33, 34)]):  # label 3 is never written
        data = np.zeros(masks.shape[1:], bool)
        data[k0:k1, 10:290, 3:260] = rng.random((k1 - k0, 280, 257)) < 0.05
        data[k0:k1, 100:200, 100:200] = False  # a hollow: chunks inside the box left empty
        masks[label] = data  # through zarr's own pipeline
    for label in range(4):
        rng = np.random.default_rng(label)
        boxes = [((0, 0, 0), masks.shape[1:]), ((31, 255, 255), (33, 257, 257))]
        boxes += [_random_box(rng, masks.shape[1:]) for _ in range(20)]
        for start, stop in boxes:
            expected = masks[(label, *map(slice, start, stop))]
            got = read_box(masks, label, start, stop)
            assert np.array_equal(got, expected), (label, start, stop)


def test_encoded_boxes_read_back_through_zarr_as_written(store_root):
    ref, array = _mask_array(store_root, 24)
    encoder, rng, expected, shards = BoxEncoder(array), np.random.default_rng(7), {}, []
    for label in range(24):
        start, stop = _random_box(rng, array.shape[1:])
        values = rng.random(tuple(b - a for a, b in zip(start, stop, strict=True))) < 0.3
        values[tuple(slice(n // 4, 3 * n // 4) for n in values.shape)] = False  # hollow chunks
        dense = np.zeros(array.shape[1:], bool)
        dense[tuple(map(slice, start, stop))] = values
        expected[label] = dense
        shard = encoder.encode(label, start, values)
        if shard is not None:
            shards.append(shard)
    put(array, shards)
    reopened = zarr.open_array(ref.open(read_only=True), path="studies/s/masks", mode="r")
    for label, dense in expected.items():
        assert np.array_equal(reopened[label], dense), label
        start, stop = _random_box(rng, array.shape[1:])
        assert np.array_equal(
            read_box(reopened, label, start, stop), dense[tuple(map(slice, start, stop))]
        )


def test_chunks_without_a_set_voxel_are_not_stored(store_root):
    _, array = _mask_array(store_root, 2)
    values = np.zeros(array.shape[1:], bool)
    values[0, 0, 0] = values[-1, -1, -1] = True  # two opposite corner chunks
    put(array, [BoxEncoder(array).encode(0, (0, 0, 0), values)])
    shard = store_root.cat("shards.zarr/studies/s/masks/c/0/0/0/0")
    grid = tuple(-(-n // c) for n, c in zip(array.shape[1:], MASK_CHUNK, strict=True))
    index = np.frombuffer(shard[-4 - 16 * int(np.prod(grid)) : -4], "<u8").reshape(*grid, 2)
    assert np.prod(grid) > 8 and (index[..., 0] != 2**64 - 1).sum() == 2
    assert np.array_equal(array[0], values)
    assert BoxEncoder(array).encode(1, (5, 5, 5), np.zeros((3, 3, 3), bool)) is None


def test_encoded_chunks_read_back_through_zarr(store_root):
    ref = store_root.ref("ct.zarr")
    array = zarr.create_array(
        ref.open(),
        shape=(70, 40, 30),  # a last chunk of 6 slices: stored padded to 32
        dtype=np.int16,
        chunks=(32, 40, 30),
        compressors=(BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle", typesize=2),),
        fill_value=0,
    )
    values = np.random.default_rng(2).integers(-1024, 3000, array.shape).astype(np.int16)
    put(array, encode_chunks(array, values))
    assert np.array_equal(zarr.open_array(ref.open(read_only=True), mode="r")[...], values)
    assert sorted(store_root.objects("ct.zarr")) == ["c/0/0/0", "c/1/0/0", "c/2/0/0", "zarr.json"]


def test_other_layouts_are_left_to_zarr(store_root):
    array = zarr.create_array(
        store_root.ref("z.zarr").open(),
        shape=(2, 40, 40, 40),
        dtype=bool,
        chunks=(1, 16, 16, 16),
        compressors=(ZstdCodec(),),
        fill_value=False,
    )
    array[1, 5:30, 5:30, 5:30] = True
    assert read_box(array, 1, (4, 4, 4), (31, 31, 31)).sum() == 25**3


def test_a_corrupt_shard_index_is_reported(store_root):
    # the message is read_box's own: the direct path is taken on this store
    _, array = _mask_array(store_root, 1, (20, 20, 20))
    array[0, 2:5, 2:5, 2:5] = True
    key = "shards.zarr/studies/s/masks/c/0/0/0/0"
    data = bytearray(store_root.cat(key))
    data[-10] ^= 0xFF
    store_root.put(key, bytes(data))
    with pytest.raises(ValueError, match=r"shard index .* is corrupt"):
        read_box(array, 0, (0, 0, 0), (20, 20, 20))


# ---------------------------------------------------------------------------------------------
# Dataset store (storage/dataset.py) and its read side (catalog/reader.py, storage/masks.py)

CANVAS = 8
VIEWS = ["PA", "LL"]
CLASSES = ["heart", "lung", "rib"]
SYSTEMS = ["Cardiovascular", "Pulmonary"]


def _template(studies, splits):
    coords = {
        "view": ("view", np.array(VIEWS, dtype=object)),
        "label": ("label", np.array(CLASSES, dtype=object)),
        "system": ("label", np.array(["Cardiovascular", "Pulmonary", "Skeletal"], dtype=object)),
        "region": ("region", np.array(SYSTEMS, dtype=object)),
        "split": ("study", np.array(splits, dtype=object)),
    }
    attrs = {"rga_format": dataset_store.DATASET_FORMAT, "rga_parameters": {"canvas": CANVAS}}
    return dataset_store.template(studies, CANVAS, coords, attrs)


def _projected(seeds):
    """Heavy and small per-study values as the build makes them: one dask block per study."""
    n, v, c = len(seeds), len(VIEWS), CANVAS
    rngs = [np.random.default_rng(s) for s in seeds]
    image = np.stack([r.integers(0, 256, (v, c, c), dtype=np.uint8) for r in rngs])
    mask = np.stack([r.random((v, len(CLASSES), c, c)) < 0.3 for r in rngs])
    region = mask[:, :, :2]
    heavy = xr.Dataset(
        {
            "image": (("study", "view", "y", "x"), da.from_array(image, chunks=(1, v, c, c))),
            "mask": (
                ("study", "view", "label", "y", "x"),
                da.from_array(mask, chunks=(1, v, len(CLASSES), c, c)),
            ),
            "region_mask": (
                ("study", "view", "region", "y", "x"),
                da.from_array(region, chunks=(1, v, 2, c, c)),
            ),
        }
    )
    small = xr.Dataset(
        {
            "footprint": (("study", "view", "label"), mask.sum(axis=(-2, -1)).astype(np.int32)),
            "available": (("study", "label"), np.ones((n, len(CLASSES)), bool)),
            "pixel_spacing": (("study", "view"), np.full((n, v), 1.5, np.float32)),
            "input_hash": ("study", np.array([f"hash-{s}" for s in seeds], dtype=object)),
        }
    )
    return heavy, small


def _write_slots(ref, seeds, region):
    heavy, small = _projected(seeds)
    with dask.config.set(scheduler="synchronous"):
        dataset_store.write_heavy(ref, heavy, region).compute()
    dataset_store.write_small(ref, small, region)
    return heavy, small


def _first_build(ref):
    """Lay out two slots, fill both and commit the first (what ``rga update`` does)."""
    dataset_store.create(ref, _template(["a", "b"], ["train", "test"]))
    heavy, small = _write_slots(ref, [10, 11], slice(0, 2))
    dataset_store.set_committed(ref, {0: True})
    return heavy, small


def test_dataset_template_slots_and_commits(store_root):
    ref = store_root.ref("dataset.zarr")
    assert not ref.exists()
    dataset_store.create(ref, _template(["a", "b", "c"], ["train", "test", "train"]))
    assert ref.exists() and dataset_store.is_complete(ref)
    index = dataset_store.read_index(ref)
    assert index.study == ("a", "b", "c") and index.committed.tolist() == [False] * 3
    assert index.input_hash == ("",) * 3 and index.attrs["rga_parameters"] == {"canvas": CANVAS}
    assert open_catalog(ref).sizes["study"] == 0  # laid out, nothing committed
    laid_out = open_catalog(ref, include_uncommitted=True)
    assert dict(laid_out.sizes) == {
        "study": 3,
        "view": 2,
        "label": 3,
        "region": 2,
        "y": CANVAS,
        "x": CANVAS,
    }
    assert int(laid_out.footprint.min()) == -1 and np.isnan(laid_out.pixel_spacing).all()

    heavy, small = _write_slots(ref, [10, 11, 12], slice(0, 3))
    assert open_catalog(ref).sizes["study"] == 0  # written is not committed
    dataset_store.set_committed(ref, {0: True, 2: True})
    # the middle study is hidden; a URL with storage options opens the store like a StoreRef
    ds = open_catalog(store_root.url("dataset.zarr"), store_root.storage_options)
    assert list(ds.study.values) == ["a", "c"] and list(ds.split.values) == ["train", "train"]
    assert open_catalog(ref, include_uncommitted=True).sizes["study"] == 3
    assert isinstance(ds.mask.data, da.Array)  # lazy
    shown = [0, 2]
    with dask.config.set(scheduler="synchronous"):
        assert np.array_equal(ds.image.values, heavy.image.values[shown])
        assert np.array_equal(ds.mask.values, heavy.mask.values[shown])
        assert np.array_equal(ds.region_mask.values, heavy.region_mask.values[shown])
        assert np.array_equal(ds.footprint.values, small.footprint.values[shown])
        heart = select(ds, label="heart", view="PA").mask.values
        assert np.array_equal(heart, heavy.mask.values[shown][:, :1, :1])
        assert select(ds, system="Pulmonary").sizes == {**ds.sizes, "label": 1, "region": 1}
    assert ds.pixel_spacing.values.tolist() == [[1.5, 1.5]] * 2
    index = dataset_store.read_index(ref)
    assert index.committed.tolist() == [True, False, True]
    assert index.input_hash == ("hash-10", "hash-11", "hash-12")

    # storage/masks.py reads a study's masks straight from the store
    assert is_dataset_store(ref) and not is_dataset_store(store_root.ref("nothing.zarr"))
    assert np.array_equal(read_study_masks(ref, 1), heavy.mask.values[1])


def test_catalog_graph_has_one_chunk_per_study_not_per_mask(store_root):
    """Issue 21: at 100,000 studies a chunk per (study, view, label) is 42 million chunks, and a
    Dask selection of the committed rows plans each of them; the catalog must not pay that."""
    ref = store_root.ref("dataset.zarr")
    dataset_store.create(ref, _template(["a", "b", "c"], ["train", "test", "train"]))
    _write_slots(ref, [10, 11, 12], slice(0, 3))
    dataset_store.set_committed(ref, {0: True, 2: True})
    for ds, n in ((open_catalog(ref), 2), (open_catalog(ref, include_uncommitted=True), 3)):
        for name in dataset_store.SCHEMA:
            array = ds[name].data
            assert isinstance(array, da.Array), name
            per_study = name in dataset_store.HEAVY
            assert array.numblocks == (n if per_study else 1, *(1,) * (array.ndim - 1)), name
            # the store's rows are chosen before Dask: its graph is only the chunks' reads
            assert len(array.__dask_graph__()) == array.npartitions + 1, name


def test_dataset_append_rename_swap_erase(store_root):
    ref = store_root.ref("dataset.zarr")
    heavy, _ = _first_build(ref)
    append_record(ref, {"added": ["a"], "lock_token": 3})  # the build log lies beside the arrays
    dataset_store.append(ref, ["c"], ["val"])
    index = dataset_store.read_index(ref)
    assert index.study == ("a", "b", "c") and index.committed.tolist() == [True, False, False]
    everything = open_catalog(ref, include_uncommitted=True)
    assert list(everything.split.values) == ["train", "test", "val"]
    assert everything.sizes["study"] == 3 and list(open_catalog(ref).study.values) == ["a"]
    assert dataset_store.is_complete(ref) and read_records(ref) == [
        {"added": ["a"], "lock_token": 3}
    ]

    dataset_store.name_slots(ref, [1], ["b2"], ["train"])  # a spare slot reused
    assert dataset_store.read_index(ref).study == ("a", "b2", "c")

    # a changed study: built in a spare slot, swapped in by one write that retires the old one
    changed, _ = _write_slots(ref, [12], slice(2, 3))
    dataset_store.set_committed(ref, {2: True, 0: False})
    ds = open_catalog(ref)
    assert list(ds.study.values) == ["c"]
    with dask.config.set(scheduler="synchronous"):
        assert np.array_equal(ds.mask.values, changed.mask.values)

    dataset_store.erase(ref, [0, 1])  # the uncommitted slots' shards are deleted
    for name in dataset_store.HEAVY:
        assert store_root.objects(f"dataset.zarr/{name}/c/0") == {}
        assert store_root.objects(f"dataset.zarr/{name}/c/1") == {}
        assert store_root.objects(f"dataset.zarr/{name}/c/2") != {}
    everything = open_catalog(ref, include_uncommitted=True)
    with dask.config.set(scheduler="synchronous"):
        assert not everything.mask.isel(study=0).values.any()  # erased slots read as fill
        assert (everything.image.isel(study=0).values == 0).all()
    assert np.array_equal(read_study_masks(ref, 2), changed.mask.values[0])
    assert heavy.mask.values[0].any()  # the erased slot really had data


def test_dataset_repair_finishes_an_interrupted_append(store_root):
    ref = store_root.ref("dataset.zarr")
    _first_build(ref)
    assert dataset_store.repair(ref) is False  # nothing to repair
    # a crash in the middle of append: one array grown, the others and the readers' view not
    writer = zarr.open_group(ref.open(), mode="r+", use_consolidated=False)
    writer["committed"].resize((3,))
    assert open_catalog(ref, include_uncommitted=True).sizes["study"] == 2  # still consistent
    assert dataset_store.repair(ref) is True
    everything = open_catalog(ref, include_uncommitted=True)
    assert everything.sizes["study"] == 3 and list(open_catalog(ref).study.values) == ["a"]
    assert dataset_store.read_index(ref).committed.tolist() == [True, False, False]
    assert dataset_store.repair(ref) is False


def test_dataset_is_byte_identical_on_disk_and_on_s3(local_root, s3_root):
    stored = {}
    for root in (local_root, s3_root):
        ref = root.ref("dataset.zarr")
        _first_build(ref)
        dataset_store.append(ref, ["c"], ["val"])
        stored[root.kind] = root.objects("dataset.zarr")
    assert stored["local"] == stored["s3"]
    assert "zarr.json" in stored["s3"] and "mask/c/1/0/0/0/0" in stored["s3"]


# ---------------------------------------------------------------------------------------------
# The failure report (storage/reports.py) and the build log (storage/buildlog.py)


def test_report_run_replaces_the_entries_of_the_studies_it_attempted(store_root):
    sources = store_root.ref("sources.zarr")
    assert report_ref(sources).url == store_root.url("sources.zarr.failures.json")
    assert read_report(sources)["failures"] == {}
    run = {"layout": "generic"}
    url = update_report(sources, ["a", "b", "c"], {"b": "bad", "a": "worse"}, {"c": ["odd"]}, run)
    report = json.loads(store_root.cat("sources.zarr.failures.json"))
    assert url == store_root.url("sources.zarr.failures.json")
    assert list(report["failures"]) == ["a", "b"] and report["warnings"] == {"c": ["odd"]}
    assert report["sources"] == sources.url
    update_report(sources, ["a", "c"], {}, {}, run)  # a fixed, c re-ingested without warning
    report = read_report(sources)
    assert report["failures"] == {"b": "bad"} and report["warnings"] == {}
    assert report["last_run"] == run
    assert not store_root.exists("sources.zarr")  # the report is beside the store, not in it


def test_report_same_outcome_same_bytes(store_root):
    contents = []
    for name in ("one.zarr", "two.zarr"):
        sources = store_root.ref(name)
        update_report(sources, ["x", "y"], {"y": "e", "x": "f"}, {"x": ["w"]}, {"layout": "g"})
        contents.append(store_root.cat(f"{name}.failures.json").decode().replace(name, ""))
    assert contents[0] == contents[1]


def test_build_log_round_trip(store_root):
    ref = store_root.ref("dataset.zarr")
    assert read_records(ref) == []  # a store without a log
    first = {"added": ["a", "b"], "seconds": 1.5, "lock_token": 9}
    second = {"removed": ["a"], "changed": [], "parameters": {"canvas": 8}, "lock_token": 10}
    append_record(ref, first)
    append_record(ref, second)
    assert read_records(ref) == [first, second]  # oldest first: 10 sorts after 9
    # one object per run, so an update writes one small object however long the log is
    body = store_root.cat(f"dataset.zarr/{LOG_FOLDER}/000000000010.json").decode()
    assert body == json.dumps(second, sort_keys=True) + "\n"
    assert len(store_root.objects(f"dataset.zarr/{LOG_FOLDER}")) == 2
    # a log from before that layout is kept, and read as the oldest records
    legacy = {"added": ["z"], "lock_token": 1}
    store_root.put(f"dataset.zarr/{LEGACY_LOG}", (json.dumps(legacy) + "\n").encode())
    assert read_records(ref) == [legacy, first, second]


# ---------------------------------------------------------------------------------------------
# The update lock (storage/lock.py): flock locally, a fenced conditional-write lease on S3

BUSY = r"is being updated by process \d+ on .* since .*pass --wait"


def test_lock_is_exclusive_names_its_holder_and_is_released(store_root):
    ref = store_root.ref("dataset.zarr")
    with store_lock(ref) as first:
        assert store_root.exists("dataset.zarr.lock")  # beside the store
        with pytest.raises(StoreLocked, match=BUSY), store_lock(ref):
            pass
        with store_lock(store_root.ref("other.zarr")):  # another store's lock is another lock
            pass
        first.fence()  # the holder may write
    assert store_root.exists("dataset.zarr.lock")  # it keeps the last token, unlocked
    with store_lock(ref) as second:  # released on exit
        assert not second.taken_over  # the first holder released it
    with store_lock(ref) as third:
        pass
    # The fencing token grows with every acquisition, whoever holds the lock.
    assert (first.token, second.token, third.token) == (1, 2, 3)


def test_lock_is_released_when_the_block_raises(store_root):
    ref = store_root.ref("dataset.zarr")
    with pytest.raises(KeyError), store_lock(ref):
        raise KeyError("update failed")
    with store_lock(ref):
        pass


def test_a_waiting_updater_gets_the_lock_once_it_is_released(store_root):
    ref = store_root.ref("dataset.zarr")
    events = []

    def waiter():
        with store_lock(ref, wait=True, poll_seconds=0.05):
            events.append(("acquired", time.monotonic()))

    with store_lock(ref):
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.5)
        assert events == []  # still waiting while the lock is held
        released = time.monotonic()
    thread.join(timeout=30)
    assert not thread.is_alive()
    [(what, when)] = events
    assert what == "acquired" and when >= released


# ---------------------------------------------------------------------------------------------
# Input folders (storage/files.py)


def test_folder_list_read_and_child(store_root):
    store_root.put("in/a.nii.gz", b"abc")
    store_root.put("in/b/inner.nii.gz", b"")
    folder = store_root.folder("in")
    assert folder.exists() and not store_root.folder("none").exists()
    assert [(e.name, e.is_dir) for e in folder.list()] == [("a.nii.gz", False), ("b", True)]
    assert folder.list()[0].size == 3
    assert folder.read("a.nii.gz") == b"abc"
    assert folder.path_of("a.nii.gz") == store_root.url("in/a.nii.gz")
    assert [e.name for e in folder.child("b").list()] == ["inner.nii.gz"]
    assert folder.child("b").read("inner.nii.gz") == b""
    assert store_root.folder("none").list() == []
    with pytest.raises(FileNotFoundError, match=r"missing\.nii\.gz does not exist"):
        folder.read("missing.nii.gz")
    assert folder.is_local is (store_root.kind == "local")


def test_folder_listings_are_never_stale_and_folders_pickle(store_root):
    store_root.put("in/a.nii.gz", b"a")
    folder = store_root.folder("in")
    assert [e.name for e in folder.list()] == ["a.nii.gz"]
    store_root.put("in/b.nii.gz", b"b")  # written behind the folder's back
    assert [e.name for e in folder.list()] == ["a.nii.gz", "b.nii.gz"]
    shipped = pickle.loads(pickle.dumps(folder))  # as a worker receives it
    assert shipped == folder and shipped.read("b.nii.gz") == b"b"


def test_walk_prunes_and_goes_level_by_level(store_root):
    for path in ("x/y/v.nii.gz", "x/seg_v/heart.nii.gz", "z/w.nii.gz"):
        store_root.put(f"in/{path}", b"")
    root = store_root.folder("in")
    visited = [f.url.removeprefix(root.url) for f, _ in walk(root, lambda n: n.startswith("seg_"))]
    assert visited == ["", "/x", "/z", "/x/y"]


def test_read_text(store_root):
    store_root.put("map.csv", b"id,name\n1,heart\n")
    options = store_root.storage_options
    assert read_text(store_root.url("map.csv"), options) == "id,name\n1,heart\n"
    with pytest.raises(FileNotFoundError, match=r"none\.csv does not exist"):
        read_text(store_root.url("none.csv"), options)


# ---------------------------------------------------------------------------------------------
# Evaluation results (storage/results.py) and predicted masks as PNGs (storage/masks.py)


def test_results_round_trip(store_root):
    folder = store_root.ref("evaluation")
    ref = store_root.ref("evaluation/metrics.zarr")
    coords = {
        "view": ("view", np.array(VIEWS, dtype=object)),
        "label": ("label", np.array(CLASSES, dtype=object)),
    }
    studies = ["s0", "s1", "s2"]
    create_results(ref, results_template(studies, ["dice"], coords, {"ground_truth": "gt.zarr"}))
    dice = np.random.default_rng(0).random((2, 2, 3))
    dice[0, 0, 0] = np.nan
    write_results(ref, xr.Dataset({"dice": (("study", "view", "label"), dice)}), slice(0, 2))
    mark_evaluated(ref, slice(0, 2), np.ones(2, bool))
    write_text(store_root.ref("evaluation/summary.md"), "### summary\n")
    with dask.config.set(scheduler="synchronous"):
        results = open_results(folder).load()  # the folder finds its metrics.zarr
        everything = open_results(ref, include_unevaluated=True).load()
    assert list(results.study.values) == ["s0", "s1"]
    assert np.array_equal(results.dice.values, dice, equal_nan=True)
    assert results.attrs["ground_truth"] == "gt.zarr"
    assert everything.sizes["study"] == 3 and np.isnan(everything.dice.values[2]).all()
    assert (everything.gt_components.values[2] == -1).all()
    assert store_root.cat("evaluation/summary.md") == b"### summary\n"
    with pytest.raises(FileNotFoundError, match="no evaluation results"):
        open_results(store_root.ref("elsewhere"))


def test_png_masks_round_trip(store_root):
    pngs = PngFolder(store_root.url("pngs"), store_root.storage_options)
    assert not pngs.exists()
    masks = np.zeros((2, 3, 6, 5), bool)
    masks[0, 0, 1:3, 2:4] = masks[1, 2, 5, 4] = True
    pngs.write("s1", masks, VIEWS, CLASSES)
    assert pngs.exists() and pngs.studies() == ["s1"]
    assert sorted(store_root.objects("pngs")) == ["s1/LL/rib.png", "s1/PA/heart.png"]
    assert np.array_equal(pngs.read("s1", VIEWS, CLASSES, (6, 5)), masks)
    with pytest.raises(ValueError, match="the dataset's masks are 4 x 6"):
        pngs.read("s1", VIEWS, CLASSES, (6, 4))


# ---------------------------------------------------------------------------------------------
# The sources' study index (storage/sources.py): what an update lists, in one small read


def _segments(store_root):
    return sorted(store_root.objects(f"sources.zarr/{INDEX_FOLDER}"))


def test_study_index_lists_from_segments_then_from_one_merged_segment(store_root):
    ref = store_root.ref("sources.zarr")
    for study_id in ("b", "a", "c"):
        _study(ref, study_id)
    assert len(_segments(store_root)) == 3  # one per write, until merged
    before = list_studies(ref)
    merge_index(ref)
    assert len(_segments(store_root)) == 1
    assert list_studies(ref) == before and [s.study_id for s in before] == ["a", "b", "c"]
    merge_index(ref)  # merging a merged index changes nothing
    assert len(_segments(store_root)) == 1 and list_studies(ref) == before


def test_study_index_does_not_read_the_studies(store_root):
    """An update learns the studies from the index alone: the groups are never opened."""
    ref = store_root.ref("sources.zarr")
    for study_id in ("a", "b"):
        _study(ref, study_id)
    merge_index(ref)
    listed = list_studies(ref)
    for study_id in ("a", "b"):  # the groups' documents gone: the index does not notice
        store_root.remove(f"sources.zarr/studies/{study_id}/zarr.json")
    assert list_studies(ref) == listed


def test_study_index_the_newest_revision_wins_in_any_segment_order(store_root):
    ref = store_root.ref("sources.zarr")
    _study(ref, "s1")
    _, _, second = _study(ref, "s1", shift=5)
    [study] = list_studies(ref)
    assert (study.revision, study.content_sha256) == (2, second)
    old = SourceStudy("s1", "train", (70, 80, 90), (0.7, 0.7, 2.5), "0" * 64, revision=1)
    add_to_index(ref, [old])  # a stale segment written late (a slow concurrent ingest)
    merge_index(ref)
    assert list_studies(ref) == [study]


def test_study_index_a_crashed_rewrite_keeps_the_old_entry_and_a_build_refuses_it(store_root):
    ref = store_root.ref("sources.zarr")
    _, _, first = _study(ref, "s1")
    _crashed_write(ref, "s1")
    [study] = list_studies(ref)
    assert study.content_sha256 == first  # the index still names the version it had
    with pytest.raises(ValueError, match="study s1 changed in the sources after this update"):
        check_listed(open_sources(ref), study)
    _, _, third = _study(ref, "s1", shift=3)  # ingested again: the new version wins
    [study] = list_studies(ref)
    assert (study.content_sha256, study.revision) == (third, 2)
    check_listed(open_sources(ref), study)


def test_study_index_a_store_from_before_it_is_scanned_then_indexed(store_root):
    ref = store_root.ref("sources.zarr")
    for study_id in ("a", "b"):
        _study(ref, study_id)
    for key in _segments(store_root):  # as written before the index existed
        store_root.remove(f"sources.zarr/{INDEX_FOLDER}/{key}")
    root = zarr.open_group(ref.open(), mode="r+")
    del root.attrs["indexed"]
    scanned = list_studies(ref)  # read by a scan until it is indexed
    assert [s.study_id for s in scanned] == ["a", "b"]
    create_sources(ref, LABELS)  # the next ingest indexes it, once
    assert open_sources(ref).attrs["indexed"] is True and len(_segments(store_root)) == 1
    assert list_studies(ref) == scanned
