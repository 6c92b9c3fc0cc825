"""The build graph: one batch of source studies -> their slots of the dataset store.

Per study there is one projection task that reads the CT and each class mask once. Every
variable of the dataset is a Dask array whose study blocks come from that task; the heavy
writes, footprints and region masks are derived from the same blocks inside one compute, so
nothing is read twice. Workers write the heavy shards; the small per-study results come back
to the client, which writes them. Committing is the caller's (flows/update.py).

A study whose projection fails does not fail the graph: the task returns an empty result with
its error, the study stays uncommitted, and the error is reported with the study's id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

import storage.dataset as dataset_store
from catalog.taxonomy import SYSTEMS, Taxonomy
from flows.maths.projection import ATTENUATION_MODELS, CANVAS, VIEWS, project_study, region_masks
from flows.measure import measurement_variables
from flows.runtime.failure import Failure, capture
from storage.location import StoreRef
from storage.sources import (
    SourceStudy,
    check_listed,
    open_sources,
    read_available,
    read_composed,
    read_ct,
    read_masks,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildParameters:
    """Everything besides the inputs that determines the output bytes."""

    canvas: int = CANVAS
    attenuation: str = "linear"

    def __post_init__(self) -> None:
        if self.attenuation not in ATTENUATION_MODELS:
            raise ValueError(
                f"unknown attenuation model {self.attenuation!r}; "
                f"choose one of {', '.join(ATTENUATION_MODELS)}"
            )
        if not 16 <= self.canvas <= 4096:
            raise ValueError(f"image size must be between 16 and 4096 pixels, not {self.canvas}")


DEFAULT_PARAMETERS = BuildParameters()


@dataclass(frozen=True)
class BatchResult:
    """Per study of a batch: None when built, else its failure."""

    errors: dict[str, Failure | None]


def build_batch(
    sources: StoreRef,
    dest: StoreRef,
    batch: Sequence[tuple[SourceStudy, int]],
    taxonomy: Taxonomy,
    params: BuildParameters,
) -> BatchResult:
    """Project ``batch`` (study, slot) and write it in one compute; nothing is committed here.

    Heavy shards are written by the workers into each study's slot; the small per-study arrays
    come back to the client, which writes them with the study ids and input hashes.
    """
    studies = [study for study, _ in batch]
    projected = projected_dataset(sources, studies, taxonomy, params)
    runs = _contiguous_runs([slot for _, slot in batch])
    heavy_writes = [
        dataset_store.write_heavy(dest, projected.isel(study=positions), slots)
        for positions, slots in runs
    ]
    written = da.from_delayed(dask.delayed(_done)(heavy_writes), (), bool)
    small_names = [*dataset_store.SMALL, "error"]
    # Only dask arrays go into this compute: dask 2026.8 returns the results of a mixed
    # Delayed/Array compute out of order.
    _, *values = dask.compute(written, *(projected[name].data for name in small_names))
    small = dict(zip(small_names, values, strict=True))
    failures = list(small.pop("error"))
    variables = {name: (projected[name].dims, value) for name, value in small.items()}
    variables["input_hash"] = ("study", np.array([input_hash(s, params) for s in studies], object))
    values_ds = xr.Dataset(variables)
    for positions, slots in runs:
        dataset_store.write_small(dest, values_ds.isel(study=positions), slots)
    return BatchResult({s.study_id: f for s, f in zip(studies, failures, strict=True)})


def input_hash(study: SourceStudy, params: BuildParameters) -> str:
    """What a study's output depends on: its inputs, the parameters, the output format."""
    text = json.dumps(
        [dataset_store.DATASET_FORMAT, asdict(params), study.content_sha256], sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _contiguous_runs(slots: Sequence[int]) -> list[tuple[slice, slice]]:
    """Split increasing slots into runs: (positions in the batch, slots in the store)."""
    runs, start = [], 0
    for i in range(1, len(slots) + 1):
        if i == len(slots) or slots[i] != slots[i - 1] + 1:
            runs.append((slice(start, i), slice(slots[start], slots[i - 1] + 1)))
            start = i
    return runs


def _done(_: Any) -> np.ndarray:
    return np.array(True)


def projected_dataset(
    sources: StoreRef,
    studies: Sequence[SourceStudy],
    taxonomy: Taxonomy,
    params: BuildParameters,
) -> xr.Dataset:
    """The lazy projections of ``studies`` as dataset variables, plus each study's error."""
    groups = [taxonomy.system_indices(system) for system in SYSTEMS]
    n_views, n_labels, c = len(VIEWS), len(taxonomy), params.canvas
    unions = tuple(
        (taxonomy.index(name), tuple(taxonomy.index(m) for m in taxonomy[name].union_of))
        for name in taxonomy.union_order()
        if taxonomy[name].union_of
    )
    tasks = [
        dask.delayed(_project_one, pure=True)(sources, s, n_labels, unions, params) for s in studies
    ]

    def stack(key: str, shape: tuple[int, ...], dtype: type) -> da.Array:
        blocks = [da.from_delayed(t[key], shape, dtype=dtype)[None] for t in tasks]
        return da.concatenate(blocks, axis=0)

    mask = stack("mask", (n_views, n_labels, c, c), bool)
    regions = da.map_blocks(
        region_masks, mask, groups=groups, dtype=bool, chunks=(1, n_views, len(groups), c, c)
    )
    variables = {
        "image": (("study", "view", "y", "x"), stack("image", (n_views, c, c), np.uint8)),
        "mask": (("study", "view", "label", "y", "x"), mask),
        "region_mask": (("study", "view", "region", "y", "x"), regions),
        "footprint": (("study", "view", "label"), mask.sum(axis=(-2, -1), dtype=np.int32)),
        "available": (("study", "label"), stack("available", (n_labels,), bool)),
        "pixel_spacing": (("study", "view"), stack("pixel_spacing", (n_views,), np.float32)),
        "error": (("study",), stack("error", (), object)),
    }
    # measurements from the same mask blocks (one small task per study: no second read)
    variables.update(
        measurement_variables(
            mask, variables["pixel_spacing"][1], variables["available"][1], taxonomy.names
        )
    )
    return xr.Dataset(variables)


def _project_one(
    sources: StoreRef,
    study: SourceStudy,
    n_labels: int,
    unions: Sequence[tuple[int, Sequence[int]]],
    params: BuildParameters,
) -> dict[str, Any]:
    """Project one study; on failure return empty arrays and the error (never raise).

    ``unions`` is every union class with its members, in ``union_order``. Those the sources
    mark as exact unions are composed from their members' masks instead of being read.
    """
    study_id = study.study_id
    try:
        root = open_sources(sources)
        spacing = check_listed(root, study)["spacing"]  # one read of the study's attrs
        hu = read_ct(root, study_id)
        available, exact = read_available(root, study_id), read_composed(root, study_id)
        composed = {
            label: [m for m in members if available[m]] for label, members in unions if exact[label]
        }
        masks = read_masks(root, study_id, skip=exact)
        result = project_study(
            hu, spacing, masks, n_labels, params.canvas, params.attenuation, composed
        )
        return {
            "image": result.image,
            "mask": result.mask,
            "pixel_spacing": result.pixel_spacing,
            "available": available,
            "error": np.array(None, object),
        }
    except Exception as error:
        log.info("projection of study %s failed", study_id, exc_info=True)  # the worker's log
        c, v = params.canvas, len(VIEWS)
        return {
            "image": np.zeros((v, c, c), np.uint8),
            "mask": np.zeros((v, n_labels, c, c), bool),
            "pixel_spacing": np.full(v, np.nan, np.float32),
            "available": np.zeros(n_labels, bool),
            "error": np.array(capture(error), object),
        }


def dataset_template(
    studies: Sequence[SourceStudy], taxonomy: Taxonomy, params: BuildParameters
) -> xr.Dataset:
    """The dataset's lazy template: contract shape, label hierarchy coordinates, parameters."""
    labels = taxonomy.labels

    def on_label(values: Sequence[Any]) -> tuple[str, np.ndarray]:
        return ("label", np.array(values, dtype=object))

    coords = {
        "view": ("view", np.array(VIEWS, dtype=object)),
        "label": on_label([i.name for i in labels]),
        "system": on_label([i.system for i in labels]),
        "organ": on_label([i.organ for i in labels]),
        "substructure": on_label([i.substructure for i in labels]),
        "level": on_label([i.level for i in labels]),
        "pathology": ("label", np.array([i.pathology for i in labels], bool)),
        "region": ("region", np.array(SYSTEMS, dtype=object)),
        "split": ("study", np.array([s.split for s in studies], dtype=object)),
    }
    attrs = {"rga_format": dataset_store.DATASET_FORMAT, "rga_parameters": asdict(params)}
    return dataset_store.template([s.study_id for s in studies], params.canvas, coords, attrs)
