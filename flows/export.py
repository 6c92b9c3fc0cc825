"""The export graph: a dataset's committed studies written in a format other tools train on.

One task per study reads the study's shard (masks) and radiographs once, writes that study's
files (one writer per file) and returns the small records the format's index needs; the client
writes the index (annotations.json, masks.csv, studies.csv, dataset.json) in study order, so a
rerun writes byte-identical files however the tasks were scheduled. nnU-Net needs every atom of
the export before any label map is numbered: a first pass of tasks returns each study's atoms.

A study that cannot be read fails alone (its id and reason in the summary); its files may be
partly written and it is left out of the index. The output folder must not exist (``overwrite``
deletes it first).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import xarray as xr

from catalog.reader import open_catalog, select
from flows.formats import chexmask, coco, nnunet, png
from flows.formats.index import Index
from flows.formats.study import Selection, StudyPixels
from flows.maths.atoms import number_atoms
from flows.runtime.failure import Failure, capture, log_details
from storage.exports import ExportFolder
from storage.location import StoreRef
from storage.masks import read_study_images, read_study_masks
from storage.results import STUDY_CHUNK

log = logging.getLogger(__name__)
FORMATS = ("coco", "chexmask", "png", "nnunet")


class OutputExists(FileExistsError):
    """The output folder exists and ``overwrite`` was not asked for (``--overwrite``)."""


@dataclass(frozen=True)
class ExportOptions:
    """What to export: a format and the selection flags of ``rga export``."""

    format: str
    split: Sequence[str] | None = None
    views: Sequence[str] | None = None
    labels: Sequence[str] | None = None
    systems: Sequence[str] | None = None
    overwrite: bool = False
    nnunet_id: int = 500
    nnunet_name: str = "RadGenomeAnatomy"


@dataclass
class ExportSummary:
    """What an export did."""

    out: str
    format: str
    exported: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    files: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class _Study:
    """Where one study is and what the catalog says of it (small: it goes into every task)."""

    study: str
    position: int
    split: str
    available: np.ndarray
    pixel_spacing: tuple[float, ...]


def export(
    dataset: StoreRef,
    out: ExportFolder,
    options: ExportOptions,
    *,
    batch_size: int = STUDY_CHUNK,
    on_batch: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Write ``options.format`` of the committed studies of ``dataset`` into ``out``."""
    started = time.perf_counter()
    if options.format not in FORMATS:
        raise ValueError(f"no export format {options.format!r} (one of {', '.join(FORMATS)})")
    if options.format == "nnunet":  # the dataset's folder name is checked before anything runs
        out = _nnunet_root(out, options)
    chosen = select(
        open_catalog(dataset),
        split=options.split,
        view=options.views,
        label=options.labels,
        system=options.systems,
    )
    if chosen.sizes["study"] == 0:
        raise ValueError(f"{dataset.url} has no committed study in this selection")
    if out.exists():
        if not options.overwrite:
            raise OutputExists(f"{out.url} exists: choose another folder or --overwrite")
        out.remove()
    selection, studies, positions = _plan(dataset, chosen)
    summary = ExportSummary(out=out.url, format=options.format)
    read = _reader(dataset, positions)
    numbers: dict = {}
    if options.format == "nnunet":
        found: set = set()
        _run(studies, read, nnunet.study_atoms, batch_size, summary, None, _add_to(found))
        numbers = number_atoms(found)
    writer, index = _format(options.format, out, selection, numbers)
    remaining = [s for s in studies if s.study not in summary.failed]

    def done(study: str, records: Any) -> None:
        summary.exported.append(study)
        index.add(records)

    _run(remaining, read, writer, batch_size, summary, on_batch, done)
    index.close()
    summary.files = len(out.files())
    summary.seconds = time.perf_counter() - started
    return summary


def _nnunet_root(out: ExportFolder, options: ExportOptions) -> ExportFolder:
    name = nnunet.dataset_folder(options.nnunet_id, options.nnunet_name)
    return ExportFolder(f"{out.url.rstrip('/')}/{name}", out.storage_options)


def _plan(
    dataset: StoreRef, chosen: xr.Dataset
) -> tuple[Selection, list[_Study], tuple[np.ndarray, np.ndarray]]:
    """The selection, each study's facts, and the view and label positions in the store."""
    everything = open_catalog(dataset, include_uncommitted=True)
    order = {str(s): i for i, s in enumerate(everything["study"].values)}
    store_labels = [str(n) for n in everything["label"].values]
    store_views = [str(v) for v in everything["view"].values]
    labels = [str(n) for n in chosen["label"].values]
    views = [str(v) for v in chosen["view"].values]
    label_positions = np.array([store_labels.index(n) for n in labels])
    view_positions = np.array([store_views.index(v) for v in views])
    selection = Selection(
        views=tuple(views),
        labels=tuple(labels),
        systems=tuple(str(s) for s in chosen["system"].values),
        label_ids=tuple(int(p) + 1 for p in label_positions),
        height=int(chosen.sizes["y"]),
        width=int(chosen.sizes["x"]),
    )
    available = chosen["available"].values
    spacing = chosen["pixel_spacing"].values
    studies = [
        _Study(
            study=str(study),
            position=order[str(study)],
            split=str(split),
            available=available[i],
            pixel_spacing=tuple(float(s) for s in spacing[i]),
        )
        for i, (study, split) in enumerate(
            zip(chosen["study"].values, chosen["split"].values, strict=True)
        )
    ]
    return selection, studies, (view_positions, label_positions)


def _reader(
    dataset: StoreRef, positions: tuple[np.ndarray, np.ndarray]
) -> Callable[[_Study], StudyPixels]:
    views, labels = positions

    def read(study: _Study) -> StudyPixels:
        masks = read_study_masks(dataset, study.position)[views][:, labels]
        images = read_study_images(dataset, study.position)[views]
        return StudyPixels(
            study.study, study.split, images, masks, study.available, study.pixel_spacing
        )

    return read


def _format(
    name: str, out: ExportFolder, selection: Selection, numbers: dict
) -> tuple[Callable[[StudyPixels], Any], Index]:
    """The format's per-study writer and its index, bound to this export."""
    if name == "nnunet":
        return (
            lambda pixels: nnunet.write_study(out, pixels, selection, numbers),
            nnunet.DatasetJson(out, selection, numbers),
        )
    module = {"coco": coco, "chexmask": chexmask, "png": png}[name]
    return lambda pixels: module.write_study(out, pixels, selection), module.index(out, selection)


def _run(
    studies: Sequence[_Study],
    read: Callable[[_Study], StudyPixels],
    work: Callable[[StudyPixels], Any],
    batch_size: int,
    summary: ExportSummary,
    on_batch: Callable[[int, int], None] | None,
    on_done: Callable[[str, Any], None],
) -> None:
    """``work`` on every study, one task each, a batch at a time; each result goes to
    ``on_done(study, value)`` in study order, each failure to the summary."""
    for start in range(0, len(studies), batch_size):
        batch = studies[start : start + batch_size]
        tasks = [dask.delayed(_task, pure=True)(read, work, s) for s in batch]
        for study, (value, failure) in zip(batch, dask.compute(*tasks), strict=True):
            if failure is None:
                on_done(study.study, value)
            else:
                summary.failed[study.study] = failure.message
                log.error("study %s was not exported: %s", study.study, failure.message)
                log_details(log, "export", study.study, failure)
        if on_batch:
            on_batch(min(start + batch_size, len(studies)), len(studies))


def _add_to(found: set) -> Callable[[str, set], None]:
    """An ``on_done`` that collects every study's atoms into ``found``."""
    return lambda study, atoms: found.update(atoms)


def _task(
    read: Callable[[_Study], StudyPixels], work: Callable[[StudyPixels], Any], study: _Study
) -> tuple[Any, Failure | None]:
    """One study's work; on failure, the error as a sentence (never raise)."""
    try:
        return work(read(study)), None
    except Exception as error:
        log.info("export of study %s failed", study.study, exc_info=True)  # the worker's log
        return None, capture(error)
