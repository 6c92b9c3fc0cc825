"""The build graph: sources store -> dataset store, lazily, one compute per batch.

Per study there is one projection task that reads the CT and each class mask once. Every
variable of the dataset is a Dask array whose study blocks come from that task; the heavy
writes, footprints and region masks are derived from the same blocks inside one compute, so
nothing is read twice. Workers write the heavy shards; the small per-study results come back
to the client, which writes them and then marks the batch's studies committed.

A study whose projection fails does not fail the graph: the task returns an empty result with
its error, the study stays uncommitted, and the error is reported with the study's id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

import storage.dataset as dataset_store
from catalog.taxonomy import SYSTEMS, Taxonomy, load_taxonomy
from flows.projection import ATTENUATION_MODELS, CANVAS, VIEWS, project_study, region_masks
from storage.location import StoreRef
from storage.sources import (
    SourceStudy,
    list_studies,
    open_sources,
    read_available,
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


@dataclass
class BuildSummary:
    """What a build did."""

    dest: str
    built: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def build(
    sources: StoreRef,
    dest: StoreRef,
    params: BuildParameters = BuildParameters(),
    *,
    batch_size: int = 64,
    on_batch: Callable[[int, int], None] | None = None,
) -> BuildSummary:
    """Build ``dest`` from every complete study in ``sources`` (replacing ``dest``).

    Runs on the current Dask scheduler (a ``distributed.Client`` if one is active); studies are
    submitted ``batch_size`` at a time so the scheduler never holds the whole corpus.
    """
    started = time.perf_counter()
    studies = list_studies(open_sources(sources))
    if not studies:
        raise ValueError(f"{sources.url} holds no complete study to build")
    taxonomy = load_taxonomy()
    dataset_store.create(dest, _template(studies, taxonomy, params))
    summary = BuildSummary(dest=dest.url)
    for start in range(0, len(studies), batch_size):
        batch = studies[start : start + batch_size]
        _build_batch(
            sources, dest, batch, slice(start, start + len(batch)), taxonomy, params, summary
        )
        if on_batch:
            on_batch(start + len(batch), len(studies))
    summary.seconds = time.perf_counter() - started
    return summary


def _build_batch(
    sources: StoreRef,
    dest: StoreRef,
    batch: Sequence[SourceStudy],
    region: slice,
    taxonomy: Taxonomy,
    params: BuildParameters,
    summary: BuildSummary,
) -> None:
    """Project, write and commit one batch of studies in a single compute."""
    projected = projected_dataset(sources, batch, taxonomy, params)
    heavy_write = dataset_store.write_heavy(dest, projected, region)
    written = da.from_delayed(dask.delayed(_done)(heavy_write), (), bool)
    small_names = [*dataset_store.SMALL, "error"]
    # Only dask arrays go into this compute: dask 2026.8 returns the results of a mixed
    # Delayed/Array compute out of order.
    _, *values = dask.compute(written, *(projected[name].data for name in small_names))
    small = dict(zip(small_names, values, strict=True))
    messages = small.pop("error")
    dataset_store.write_small(
        dest, xr.Dataset({k: (projected[k].dims, v) for k, v in small.items()}), region
    )
    ok = np.array([message is None for message in messages])
    dataset_store.mark_committed(dest, region, ok)
    for study, message in zip(batch, messages, strict=True):
        if message is None:
            summary.built.append(study.study_id)
        else:
            summary.failed[study.study_id] = message
            log.error("study %s was not built: %s", study.study_id, message)


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
    tasks = [
        dask.delayed(_project_one, pure=True)(sources, s.study_id, n_labels, params)
        for s in studies
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
    return xr.Dataset(variables)


def _project_one(
    sources: StoreRef, study_id: str, n_labels: int, params: BuildParameters
) -> dict[str, Any]:
    """Project one study; on failure return empty arrays and the error (never raise)."""
    try:
        root = open_sources(sources)
        hu = read_ct(root, study_id)
        spacing = root["studies"][study_id].attrs["spacing"]
        result = project_study(
            hu, spacing, read_masks(root, study_id), n_labels, params.canvas, params.attenuation
        )
        return {
            "image": result.image,
            "mask": result.mask,
            "pixel_spacing": result.pixel_spacing,
            "available": read_available(root, study_id),
            "error": np.array(None, object),
        }
    except Exception as error:
        log.exception("projection of study %s failed", study_id)
        c, v = params.canvas, len(VIEWS)
        return {
            "image": np.zeros((v, c, c), np.uint8),
            "mask": np.zeros((v, n_labels, c, c), bool),
            "pixel_spacing": np.full(v, np.nan, np.float32),
            "available": np.zeros(n_labels, bool),
            "error": np.array(f"{type(error).__name__}: {error}", object),
        }


def _template(
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
