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

A study's attrs carry spacing, affine, split, provenance and a content hash; ``complete`` is
set last, and readers ignore studies without it, so a crashed ingest is never half-visible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
import zarr.errors
from zarr.codecs import BloscCodec, ZstdCodec

from storage.direct_io import BoxEncoder, encode_chunks, put, read_box
from storage.location import StoreRef, check_study_id

SOURCES_FORMAT = 2
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
    attrs: Mapping[str, Any]


def create_sources(ref: StoreRef, labels: Sequence[str]) -> zarr.Group:
    """Open the sources store for writing, creating it if needed; the label axis must match."""
    store = ref.open()
    try:
        root = zarr.open_group(store, mode="r+")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        root = zarr.open_group(store, mode="w")
        root.attrs.update({"format": SOURCES_FORMAT, "labels": list(labels)})
        root.require_group("studies")
        return root
    _check_format(root, ref)
    if list(root.attrs.get("labels", [])) != list(labels):
        raise ValueError(f"{ref.url} was written with another label vocabulary")
    return root


def _check_format(root: zarr.Group, ref: StoreRef) -> None:
    found = root.attrs.get("format")
    if found != SOURCES_FORMAT:
        raise ValueError(
            f"{ref.url} is a sources store of format {found}, and this rga reads format "
            f"{SOURCES_FORMAT}: ingest the inputs again into a new sources store"
        )


def write_study(
    root: zarr.Group,
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
    when its box is empty. The study is marked complete only after everything is written.
    """
    check_study_id(study_id)
    n_labels = len(root.attrs["labels"])
    group = root["studies"].create_group(study_id, overwrite=True)
    group.attrs.update({"complete": False})
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
    group.attrs.update(
        {
            **dict(attrs),
            "study_id": study_id,
            "shape": list(ct.shape),
            "spacing": [float(s) for s in spacing],
            "affine": np.asarray(affine, float).tolist(),
            "content_sha256": content_sha256,
            "complete": True,
        }
    )
    return content_sha256


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


def list_studies(root: zarr.Group) -> list[SourceStudy]:
    """The complete studies, sorted by id; partial ones (crashed ingests) are skipped."""
    studies = []
    for study_id, group in sorted(root["studies"].groups()):
        attrs = dict(group.attrs)
        if not attrs.get("complete"):
            continue
        studies.append(
            SourceStudy(
                study_id=study_id,
                split=str(attrs.get("split", "")),
                shape=tuple(attrs["shape"]),
                spacing=tuple(attrs["spacing"]),
                content_sha256=attrs["content_sha256"],
                attrs=attrs,
            )
        )
    return studies


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
