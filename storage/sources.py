"""The sources store: one group per study with its CT and sparse 3D class masks.

Layout (zarr v3)::

    <root>/zarr.json                      attrs: format, labels (the label axis)
    <root>/studies/<id>/ct                int16 (i, j, k) HU, RAS-canonical, chunks of 32 slices
    <root>/studies/<id>/masks             bool (label, i, j, k), 64^3 chunks, one shard per label;
                                          empty chunks are never written, so storage is sparse
    <root>/studies/<id>/mask_box          int32 (label, 6): i0, j0, k0, i1, j1, k1 (tight box)
    <root>/studies/<id>/mask_voxels       int64 (label,)
    <root>/studies/<id>/available         bool (label,): the input provided the class (maybe empty)

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
from zarr.codecs import ZstdCodec

from storage.location import StoreRef, check_study_id

SOURCES_FORMAT = 1
CT_SLAB = 32
MASK_CHUNK = 64
_COMPRESSORS = (ZstdCodec(level=3),)

MaskBox = tuple[int, tuple[int, int, int], np.ndarray]  # (label index, origin, bool box)


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
    if list(root.attrs.get("labels", [])) != list(labels):
        raise ValueError(f"{ref.url} was written with another label vocabulary")
    return root


def write_study(
    root: zarr.Group,
    study_id: str,
    *,
    ct: np.ndarray,
    spacing: Sequence[float],
    affine: np.ndarray,
    masks: Iterable[MaskBox],
    attrs: Mapping[str, Any],
) -> str:
    """Write one study, replacing any previous version, and return its content hash.

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
    masks_array = _create_masks(group, n_labels, ct.shape)
    for label, origin, box in masks:
        if available[label]:
            raise ValueError(f"study {study_id}: label {label} was given twice")
        available[label] = True
        digest.update(f"{label}:{tuple(origin)}:{box.shape}".encode())
        if box.size and box.any():
            stop = tuple(int(o) + s for o, s in zip(origin, box.shape, strict=True))
            masks_array[(label, *map(slice, origin, stop))] = box
            boxes[label] = (*origin, *stop)
            voxels[label] = int(np.count_nonzero(box))
            digest.update(np.ascontiguousarray(box).tobytes())
    for name, values in (("mask_box", boxes), ("mask_voxels", voxels), ("available", available)):
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
    ct = np.ascontiguousarray(ct, dtype=np.int16)
    chunks = (ct.shape[0], ct.shape[1], min(CT_SLAB, ct.shape[2]))
    array = group.create_array(
        "ct", shape=ct.shape, dtype=np.int16, chunks=chunks, compressors=_COMPRESSORS
    )
    array[...] = ct
    digest.update(f"ct:{ct.shape}".encode())
    digest.update(ct.tobytes())


def _create_masks(group: zarr.Group, n_labels: int, shape: Sequence[int]) -> zarr.Array:
    chunk = tuple(min(MASK_CHUNK, n) for n in shape)
    shard = tuple(-(-n // c) * c for n, c in zip(shape, chunk, strict=True))
    return group.create_array(
        "masks",
        shape=(n_labels, *shape),
        dtype=bool,
        chunks=(1, *chunk),
        shards=(1, *shard),
        fill_value=False,
        compressors=_COMPRESSORS,
        dimension_names=("label", "i", "j", "k"),
    )


def open_sources(ref: StoreRef) -> zarr.Group:
    """Open an existing sources store read-only, with a clear error when it is missing."""
    try:
        return zarr.open_group(ref.open(read_only=True), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        raise FileNotFoundError(f"no sources store at {ref.url}") from None


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
    """The study's CT in HU."""
    return root["studies"][study_id]["ct"][...]


def read_available(root: zarr.Group, study_id: str) -> np.ndarray:
    """Which labels the input provided (empty or not)."""
    return root["studies"][study_id]["available"][...]


def read_masks(root: zarr.Group, study_id: str) -> Iterator[MaskBox]:
    """Each non-empty class mask as its tight box, reading only the chunks the box touches."""
    group = root["studies"][study_id]
    masks = group["masks"]
    boxes, voxels = group["mask_box"][...], group["mask_voxels"][...]
    for label in np.flatnonzero(voxels):
        start, stop = boxes[label, :3], boxes[label, 3:]
        yield int(label), tuple(int(s) for s in start), masks[(label, *map(slice, start, stop))]
