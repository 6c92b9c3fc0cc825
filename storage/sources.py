"""The sources store: one group per study with its CT and sparse 3D class masks.

Layout (zarr v3)::

    <root>/zarr.json                      attrs: format, labels (the label axis)
    <root>/studies/<id>/ct                int16 (k, j, i) HU, RAS-canonical, chunks of 32 slices
    <root>/studies/<id>/masks             bool (label, k, j, i), one shard per label; empty
                                          chunks are never written, so storage is sparse
    <root>/studies/<id>/mask_box          int32 (label, 6): i0, j0, k0, i1, j1, k1 (tight box)
    <root>/studies/<id>/mask_voxels       int64 (label,)
    <root>/studies/<id>/available         bool (label,): the input provided the class (maybe empty)
    <root>/studies/<id>/mask_composed     bool (label,): the class equals the union of its
                                          available ``union_of`` members, voxel for voxel

Arrays are stored in NIfTI's own memory order, slices outermost: (k, j, i) in C order is the
(i, j, k) volume in Fortran order, so neither ingest nor build ever transposes a volume (a
transposing copy of a 512 x 512 x 300 CT costs about a second). The readers hand out (i, j, k)
views. Codecs and chunk shapes were chosen by measurement (benchmarks/RESULTS.md).

A study's attrs carry spacing, affine, split, provenance, a content hash and a revision (one
more than the version it replaced); ``complete`` is set last.

The study index (``<root>/studies-index/*.json.gz``) is what ``list_studies`` reads, so that an
update learns every study's id, split, shape, spacing and content hash from one small object
instead of one request per study. Each ``write_study`` adds a segment naming its study once the
study is complete; ingest merges the segments after every batch (``merge_index``), so a
settled store has one. Where segments disagree, the highest revision wins. A study whose
ingest crashed is not in the index until it is ingested again; if its rewrite crashed, the
index still names the old version, and a build of it fails with a sentence instead of reading
a half-written study (``check_listed``). Stores from before the index are indexed by their
first ingest (``create_sources``) and read by a scan until then.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
import zarr.errors
from zarr.codecs import BloscCodec, ZstdCodec

from storage.direct_io import BoxEncoder, encode_chunks, put, read_box
from storage.location import StoreRef, check_study_id
from storage.objects import delete_objects, get_object, list_objects, put_object

SOURCES_FORMAT = 2
INDEX_FOLDER = "studies-index"
INDEX_FORMAT = 1
CT_SLAB = 32  # slices per CT chunk
MASK_CHUNK = (32, 128, 128)  # (k, j, i) voxels per mask chunk (measured: benchmarks/RESULTS.md)
_COMPRESSORS = (ZstdCodec(level=3),)  # small per-label tables
# CT: bit-shuffled LZ4 is both smaller and 5-7x faster to write than zstd-3 on int16 HU
_CT_COMPRESSORS = (BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle", typesize=2),)
_MASK_COMPRESSORS = (BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle", typesize=1),)

MaskBox = tuple[int, tuple[int, int, int], np.ndarray]  # (label index, origin, bool box)
# what ingest writes: a MaskBox and whether the class is exactly the union of its members
SourceMask = tuple[int, tuple[int, int, int], np.ndarray, bool]


@dataclass(frozen=True)
class SourceStudy:
    """What the sources store says about one complete study."""

    study_id: str
    split: str
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    content_sha256: str
    revision: int = 0  # how many times the study was written (0: before revisions)


def create_sources(ref: StoreRef, labels: Sequence[str]) -> zarr.Group:
    """Open the sources store for writing, creating it if needed; the label axis must match.

    A store from before the study index gets its index here (one scan of its studies).
    """
    store = ref.open()
    try:
        root = zarr.open_group(store, mode="r+")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        root = zarr.open_group(store, mode="w")
        root.attrs.update({"format": SOURCES_FORMAT, "labels": list(labels), "indexed": True})
        root.require_group("studies")
        return root
    _check_format(root, ref)
    if list(root.attrs.get("labels", [])) != list(labels):
        raise ValueError(f"{ref.url} was written with another label vocabulary")
    if not root.attrs.get("indexed"):
        add_to_index(ref, _scan(root))
        root.attrs.update({"indexed": True})
    return root


def _check_format(root: zarr.Group, ref: StoreRef) -> None:
    found = root.attrs.get("format")
    if found != SOURCES_FORMAT:
        raise ValueError(
            f"{ref.url} is a sources store of format {found}, and this rga reads format "
            f"{SOURCES_FORMAT}: ingest the inputs again into a new sources store"
        )


def write_study(
    ref: StoreRef,
    study_id: str,
    *,
    ct: np.ndarray,
    spacing: Sequence[float],
    affine: np.ndarray,
    masks: Iterable[SourceMask],
    attrs: Mapping[str, Any],
) -> str:
    """Write one study, replacing any previous version, and return its content hash.

    The hash is SHA-256 over what is stored: the CT's encoded chunks, then each label's box
    and encoded shard (deterministic: see ``storage/direct_io.py``).

    ``masks`` is consumed one box at a time; every label it yields is marked available, even
    when its box is empty. The study is marked complete only after everything is written, and
    added to the study index after that.
    """
    check_study_id(study_id)
    root = zarr.open_group(ref.open(), mode="r+")
    n_labels = len(root.attrs["labels"])
    revision, previous_sha256 = _previous(root, study_id)
    group = root["studies"].create_group(study_id, overwrite=True)
    group.attrs.update({"complete": False, "revision": revision})  # kept if this write crashes
    digest = hashlib.sha256()
    _write_ct(group, ct, digest)
    boxes = np.zeros((n_labels, 6), np.int32)
    voxels = np.zeros(n_labels, np.int64)
    available = np.zeros(n_labels, bool)
    composed = np.zeros(n_labels, bool)
    masks_array = _create_masks(group, n_labels, ct.shape)
    encoder = BoxEncoder(masks_array)
    shards = []  # put together at the end: compressed, they are a few MB per study
    for label, origin, box, union in masks:
        if available[label]:
            raise ValueError(f"study {study_id}: label {label} was given twice")
        available[label], composed[label] = True, union
        digest.update(f"{label}:{tuple(origin)}:{box.shape}".encode())
        count = int(np.count_nonzero(box))  # one pass: whether it is empty, and its size
        if count:
            stop = tuple(int(o) + s for o, s in zip(origin, box.shape, strict=True))
            stored = box.transpose(2, 1, 0)  # (k, j, i): contiguous for a box in file order
            shard = encoder.encode(label, origin[::-1], stored)
            if shard is not None:
                digest.update(shard[1])
                shards.append(shard)
            boxes[label] = (*origin, *stop)
            voxels[label] = count
    put(masks_array, shards)
    tables = {
        "mask_box": boxes,
        "mask_voxels": voxels,
        "available": available,
        "mask_composed": composed,
    }
    for name, values in tables.items():
        group.create_array(name, data=values, compressors=_COMPRESSORS)
    content_sha256 = digest.hexdigest()
    if content_sha256 != previous_sha256:  # the same content again is the same revision
        revision += 1
    group.attrs.update(
        {
            **dict(attrs),
            "study_id": study_id,
            "shape": list(ct.shape),
            "spacing": [float(s) for s in spacing],
            "affine": np.asarray(affine, float).tolist(),
            "content_sha256": content_sha256,
            "revision": revision,
            "complete": True,
        }
    )
    add_to_index(ref, [_listed(study_id, dict(group.attrs))])
    return content_sha256


def _previous(root: zarr.Group, study_id: str) -> tuple[int, str | None]:
    """The revision and content hash of the study's current version (a crashed write has a
    revision but no hash)."""
    try:
        attrs = root["studies"][study_id].attrs
    except KeyError:
        return 0, None
    return int(attrs.get("revision", 0)), attrs.get("content_sha256")


def _write_ct(group: zarr.Group, ct: np.ndarray, digest: Any) -> None:
    stored = ct.astype(np.int16, copy=False).transpose(2, 1, 0)  # (k, j, i)
    array = group.create_array(
        "ct",
        shape=stored.shape,
        dtype=np.int16,
        chunks=(min(CT_SLAB, stored.shape[0]), *stored.shape[1:]),
        compressors=_CT_COMPRESSORS,
        dimension_names=("k", "j", "i"),
    )
    digest.update(f"ct:{ct.shape}".encode())
    chunks = encode_chunks(array, stored)
    for _, data in chunks:
        digest.update(data)
    put(array, chunks)


def _create_masks(group: zarr.Group, n_labels: int, shape: Sequence[int]) -> zarr.Array:
    stored = tuple(shape[::-1])  # (k, j, i)
    chunk = tuple(min(c, n) for c, n in zip(MASK_CHUNK, stored, strict=True))
    shard = tuple(-(-n // c) * c for n, c in zip(stored, chunk, strict=True))
    return group.create_array(
        "masks",
        shape=(n_labels, *stored),
        dtype=bool,
        chunks=(1, *chunk),
        shards=(1, *shard),
        fill_value=False,
        compressors=_MASK_COMPRESSORS,
        dimension_names=("label", "k", "j", "i"),
    )


def open_sources(ref: StoreRef) -> zarr.Group:
    """Open an existing sources store read-only, with a clear error when it is missing."""
    try:
        root = zarr.open_group(ref.open(read_only=True), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        raise FileNotFoundError(f"no sources store at {ref.url}") from None
    _check_format(root, ref)
    return root


def list_studies(ref: StoreRef) -> list[SourceStudy]:
    """The indexed (complete) studies, sorted by id, from the study index: a listing and a
    GET per index segment, however many studies there are."""
    root = open_sources(ref)
    if not root.attrs.get("indexed"):
        return _scan(root)
    for _ in range(5):  # a segment merged away between our listing and our read: list again
        listed = _read_index(ref, list_objects(ref, INDEX_FOLDER))
        if listed is not None:
            return sorted(listed.values(), key=lambda study: study.study_id)
    raise RuntimeError(f"{ref.url}: the study index kept changing while it was read")


def add_to_index(ref: StoreRef, studies: Sequence[SourceStudy]) -> str:
    """Add one segment naming ``studies`` to the study index and return its key (named by its
    content, so the same studies give the same object)."""
    entries = [
        {
            "study_id": s.study_id,
            "split": s.split,
            "shape": list(s.shape),
            "spacing": list(s.spacing),
            "content_sha256": s.content_sha256,
            "revision": s.revision,
        }
        for s in sorted(studies, key=lambda study: study.study_id)
    ]
    document = json.dumps({"format": INDEX_FORMAT, "studies": entries}, separators=(",", ":"))
    body = gzip.compress(document.encode(), mtime=0)  # mtime 0: the same bytes every time
    key = f"{INDEX_FOLDER}/{hashlib.sha256(body).hexdigest()[:24]}.json.gz"
    put_object(ref, key, body)
    return key


def merge_index(ref: StoreRef) -> None:
    """Merge the study index's segments into one (written before the merged ones are deleted,
    so a concurrent reader or merger never misses a study)."""
    keys = list_objects(ref, INDEX_FOLDER)
    if len(keys) < 2:
        return
    listed = _read_index(ref, keys, partial_ok=True) or {}
    merged = add_to_index(ref, list(listed.values()))
    delete_objects(ref, [key for key in keys if key != merged])


def _read_index(
    ref: StoreRef, keys: Sequence[str], *, partial_ok: bool = False
) -> dict[str, SourceStudy] | None:
    """The newest entry of each study in the segments ``keys``; None if one of them is gone
    (unless ``partial_ok``: a merger's result holds it)."""
    newest: dict[str, SourceStudy] = {}
    for key in keys:
        body = get_object(ref, key)
        if body is None:
            if partial_ok:
                continue
            return None
        document = json.loads(gzip.decompress(body))
        for entry in document["studies"]:
            study = SourceStudy(
                study_id=entry["study_id"],
                split=entry["split"],
                shape=tuple(entry["shape"]),
                spacing=tuple(entry["spacing"]),
                content_sha256=entry["content_sha256"],
                revision=int(entry["revision"]),
            )
            known = newest.get(study.study_id)
            if known is None or (study.revision, study.content_sha256) > (
                known.revision,
                known.content_sha256,
            ):
                newest[study.study_id] = study
    return newest


def _scan(root: zarr.Group) -> list[SourceStudy]:
    """The complete studies from their groups (one request per study): stores without an
    index, and the index's first segment."""
    return [
        _listed(study_id, dict(group.attrs))
        for study_id, group in sorted(root["studies"].groups())
        if group.attrs.get("complete")
    ]


def _listed(study_id: str, attrs: Mapping[str, Any]) -> SourceStudy:
    return SourceStudy(
        study_id=study_id,
        split=str(attrs.get("split", "")),
        shape=tuple(attrs["shape"]),
        spacing=tuple(attrs["spacing"]),
        content_sha256=attrs["content_sha256"],
        revision=int(attrs.get("revision", 0)),
    )


def check_listed(root: zarr.Group, study: SourceStudy) -> Mapping[str, Any]:
    """The study's attrs; raise if it is no longer what the index said (rewritten or
    half-written since)."""
    attrs = root["studies"][study.study_id].attrs
    if not attrs.get("complete") or attrs.get("content_sha256") != study.content_sha256:
        raise ValueError(
            f"study {study.study_id} changed in the sources after this update listed it (an "
            "ingest of it is running, or crashed): ingest it again, then update"
        )
    return attrs


def read_ct(root: zarr.Group, study_id: str) -> np.ndarray:
    """The study's CT in HU, (i, j, k) (a Fortran-ordered view of the stored array)."""
    return root["studies"][study_id]["ct"][...].transpose(2, 1, 0)


def read_available(root: zarr.Group, study_id: str) -> np.ndarray:
    """Which labels the input provided (empty or not)."""
    return root["studies"][study_id]["available"][...]


def read_composed(root: zarr.Group, study_id: str) -> np.ndarray:
    """Which labels are, voxel for voxel, the union of their available members."""
    return root["studies"][study_id]["mask_composed"][...]


def read_masks(
    root: zarr.Group, study_id: str, skip: np.ndarray | None = None
) -> Iterator[MaskBox]:
    """Each non-empty class mask as its tight box (i, j, k), reading only the chunks it touches.

    Labels set in ``skip`` are not read.
    """
    group = root["studies"][study_id]
    masks = group["masks"]
    boxes, voxels = group["mask_box"][...], group["mask_voxels"][...]
    wanted = voxels > 0 if skip is None else (voxels > 0) & ~skip
    for label in np.flatnonzero(wanted):
        start, stop = boxes[label, 2::-1], boxes[label, :2:-1]  # (k, j, i)
        box = read_box(masks, int(label), start, stop).transpose(2, 1, 0)
        yield int(label), tuple(int(s) for s in boxes[label, :3]), box
