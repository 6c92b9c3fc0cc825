"""The evaluation graph: predicted masks vs the dataset's ground truth, one task per study.

Each task reads one study's ground-truth shard and its predictions once and computes every
metric of ``flows.maths.metrics`` for all (view, label) pairs of that study, so the graph has one
task per study however many classes there are. Studies are submitted a batch at a time; the
client writes each batch's values into the results store and then marks them evaluated.

Only committed ground-truth studies are evaluated, and only those that have a prediction;
studies without one, and predictions of studies the ground truth lacks, are reported by id.
A class the ground truth does not have (``available`` False: unknown, not empty) is not scored.
A study whose prediction cannot be read fails alone, with its id and the reason.
"""

from __future__ import annotations

import csv
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import dask
import numpy as np
import xarray as xr

from catalog.reader import open_catalog, select
from flows.aggregate import class_means, partition_rows
from flows.formats.coco import CocoIndex
from flows.formats.nnunet import NnunetIndex
from flows.maths.metrics import METRICS, MetricOptions, pair_metrics
from flows.reports.evaluation import number, per_class_table, summary_table
from flows.reports.tables import to_csv, to_markdown
from flows.runtime.failure import capture, log_details
from storage.location import StoreRef
from storage.masks import PngFolder, is_dataset_store, read_study_masks
from storage.results import (
    RESULTS_STORE,
    STUDY_CHUNK,
    child,
    create_results,
    mark_evaluated,
    open_results,
    open_text_for_writing,
    results_template,
    write_results,
    write_text,
)

log = logging.getLogger(__name__)
Predictions = StoreRef | PngFolder | CocoIndex | NnunetIndex
LABEL_COORDS: tuple[str, ...] = ("system", "organ", "substructure", "level", "pathology")
DEFINITIONS = {
    "boundary": "mask pixels with a background 4-neighbour (outside the image is background)",
    "hd95": "max of the two directed 95th percentiles of boundary-to-boundary distances (mm)",
    "asd": "mean of the pooled boundary-to-boundary distances of both directions (mm)",
    "nsd": "boundary pixels of both masks within tolerance_mm of the other / all boundary pixels",
    "components": "8-connected; a pair matches when it overlaps and its IoU >= match_iou",
    "both_empty": "every metric NaN (excluded from means)",
    "one_empty": "Dice, IoU, NSD, F1 = 0; HD95 = ASD = image diagonal in mm; P or R NaN",
    "unavailable_gt_class": "not scored: every metric NaN, gt_available False",
}


@dataclass
class EvaluateSummary:
    """What an evaluation did."""

    dest: str
    prediction: str = ""
    evaluated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # ground truth without prediction
    unknown: list[str] = field(default_factory=list)  # predictions without ground truth
    seconds: float = 0.0


def evaluate(
    gt: StoreRef,
    predictions: Predictions,
    dest: StoreRef,
    options: MetricOptions | None = None,
    *,
    split: str | None = None,
    batch_size: int = STUDY_CHUNK,
    on_batch: Callable[[int, int], None] | None = None,
) -> EvaluateSummary:
    """Score ``predictions`` against ``gt`` into the evaluation folder ``dest`` (replaced).

    ``predictions`` is a dataset-schema store, a ``PngFolder``, or COCO or nnU-Net predictions
    (``flows.formats``). Writes ``metrics.zarr``,
    ``metrics.csv``, ``summary.md``, ``summary.csv`` and ``per_class.csv`` into ``dest``.
    """
    started = time.perf_counter()
    options = options or MetricOptions()
    committed = open_catalog(gt)
    truth = committed if split is None else select(committed, split=split)
    gt_positions = _positions(open_catalog(gt, include_uncommitted=True))
    readers = _prediction_readers(predictions, truth)
    wanted = _names(truth["study"])
    studies = [s for s in wanted if s in readers]
    summary = EvaluateSummary(dest=dest.url, prediction=predictions.url)
    summary.missing = [s for s in wanted if s not in readers]
    summary.unknown = sorted(set(readers) - set(_names(committed["study"])))
    if not studies:
        where = f" (split {split})" if split else ""
        raise ValueError(f"no study of {gt.url}{where} has a prediction in {predictions.url}")
    truth = truth.sel(study=studies)
    store = child(dest, RESULTS_STORE)
    attrs = _attrs(gt, predictions, options, split, summary)
    create_results(store, results_template(studies, METRICS, _coords(truth), attrs))
    spacing = truth["pixel_spacing"].values
    available = truth["available"].values
    for start in range(0, len(studies), batch_size):
        batch = range(start, min(start + batch_size, len(studies)))
        tasks = [
            dask.delayed(_evaluate_study, pure=True)(
                studies[i],
                functools.partial(read_study_masks, gt, gt_positions[studies[i]]),
                readers[studies[i]],
                spacing[i],
                available[i],
                options,
            )
            for i in batch
        ]
        # Only Delayed objects in this compute (dask 2026.8 misorders mixed collections).
        outputs = dask.compute(*tasks)
        _write_batch(store, truth, batch, outputs, summary)
        if on_batch:
            on_batch(batch.stop, len(studies))
    write_reports(dest)
    summary.seconds = time.perf_counter() - started
    return summary


def _positions(everything: xr.Dataset) -> dict[str, int]:
    """Each study's index on the store's study axis (committed or not)."""
    return {name: i for i, name in enumerate(_names(everything["study"]))}


def _names(values: xr.DataArray) -> list[str]:
    return [str(v) for v in values.values]


def _prediction_readers(
    predictions: Predictions, truth: xr.Dataset
) -> dict[str, Callable[[], np.ndarray]]:
    """A reader of each predicted study, by study id (nothing is read here)."""
    views, labels = _names(truth["view"]), _names(truth["label"])
    if not isinstance(predictions, StoreRef):  # a folder or file of another format
        if not predictions.exists():
            raise FileNotFoundError(f"no predicted masks at {predictions.url}")
        shape = (truth.sizes["y"], truth.sizes["x"])
        return {s: predictions.reader(s, views, labels, shape) for s in predictions.studies()}
    if not is_dataset_store(predictions):
        raise FileNotFoundError(f"no prediction store in the dataset schema at {predictions.url}")
    predicted = open_catalog(predictions)
    _check_alike(predicted, truth, predictions.url)
    positions = _positions(open_catalog(predictions, include_uncommitted=True))
    return {
        s: functools.partial(read_study_masks, predictions, positions[s])
        for s in _names(predicted["study"])
    }


def _check_alike(predicted: xr.Dataset, truth: xr.Dataset, url: str) -> None:
    """Predictions must share the ground truth's views, classes (same order) and image size."""
    for dim in ("view", "label"):
        if _names(predicted[dim]) != _names(truth[dim]):
            raise ValueError(
                f"the prediction store {url} has other {dim}s than the ground truth "
                "(names and order must match the dataset's)"
            )
    if (predicted.sizes["y"], predicted.sizes["x"]) != (truth.sizes["y"], truth.sizes["x"]):
        raise ValueError(
            f"the prediction store {url} holds {predicted.sizes['x']} x {predicted.sizes['y']} "
            f"masks; the ground truth's are {truth.sizes['x']} x {truth.sizes['y']}"
        )


def _evaluate_study(
    study_id: str,
    read_gt: Callable[[], np.ndarray],
    read_pred: Callable[[], np.ndarray],
    spacing: np.ndarray,
    available: np.ndarray,
    options: MetricOptions,
) -> dict[str, Any]:
    """All metrics of one study; on failure, the error as a sentence (never raise)."""
    try:
        truth, predicted = read_gt(), read_pred()
        if predicted.shape != truth.shape:
            raise ValueError(
                f"predicted masks have shape {predicted.shape}, the ground truth {truth.shape}"
            )
        return {**study_metrics(truth, predicted, spacing, available, options), "error": None}
    except Exception as error:
        log.info("evaluation of study %s failed", study_id, exc_info=True)  # the worker's log
        return {"error": capture(error)}


def study_metrics(
    truth: np.ndarray,
    predicted: np.ndarray,
    spacing: np.ndarray,
    available: np.ndarray,
    options: MetricOptions,
) -> dict[str, np.ndarray]:
    """Metrics (view, label, metric) and flags (view, label) of one study's mask blocks."""
    n_views, n_labels = truth.shape[:2]
    values = np.full((n_views, n_labels, len(METRICS)), np.nan)
    gt_components = np.full((n_views, n_labels), -1, np.int32)
    pred_components = np.full((n_views, n_labels), -1, np.int32)
    for v in range(n_views):
        for i in np.flatnonzero(available):
            result = pair_metrics(truth[v, i], predicted[v, i], float(spacing[v]), options)
            values[v, i] = result.values
            gt_components[v, i] = result.gt_components
            pred_components[v, i] = result.pred_components
    return {
        "values": values,
        "gt_components": gt_components,
        "pred_components": pred_components,
    }


def _write_batch(
    store: StoreRef,
    truth: xr.Dataset,
    batch: range,
    outputs: Sequence[dict[str, Any]],
    summary: EvaluateSummary,
) -> None:
    """Write one batch's values, then its ``evaluated`` flags; record failures by study id."""
    n = len(batch)
    n_views, n_labels = truth.sizes["view"], truth.sizes["label"]
    values = np.full((n, n_views, n_labels, len(METRICS)), np.nan)
    gt_components = np.full((n, n_views, n_labels), -1, np.int32)
    pred_components = np.full((n, n_views, n_labels), -1, np.int32)
    ok = np.array([out["error"] is None for out in outputs])
    for row, out in enumerate(outputs):
        if out["error"] is None:
            values[row] = out["values"]
            gt_components[row] = out["gt_components"]
            pred_components[row] = out["pred_components"]
    region = slice(batch.start, batch.stop)
    part = truth.isel(study=region)
    available = part["available"].values & ok[:, None]
    case = ("study", "view", "label")
    variables = {m: (case, values[..., k]) for k, m in enumerate(METRICS)}
    variables.update(
        gt_empty=(case, gt_components == 0),
        pred_empty=(case, pred_components == 0),
        gt_components=(case, gt_components),
        pred_components=(case, pred_components),
        gt_available=(("study", "label"), available),
        pixel_spacing=(("study", "view"), part["pixel_spacing"].values.astype(np.float32)),
    )
    write_results(store, xr.Dataset(variables), region)
    mark_evaluated(store, region, ok)
    for study, out in zip(_names(part["study"]), outputs, strict=True):
        if out["error"] is None:
            summary.evaluated.append(study)
        else:
            error = summary.failed[study] = out["error"].message
            log.error("study %s was not evaluated: %s", study, error)
            log_details(log, "evaluation", study, out["error"])


def _coords(truth: xr.Dataset) -> dict[str, tuple[str, np.ndarray]]:
    """The results' coordinates, copied from the ground truth's."""
    coords: dict[str, tuple[str, np.ndarray]] = {
        "view": ("view", np.array(_names(truth["view"]), dtype=object)),
        "label": ("label", np.array(_names(truth["label"]), dtype=object)),
        "split": ("study", np.array(_names(truth["split"]), dtype=object)),
    }
    for name in LABEL_COORDS:
        values = truth[name].values
        if values.dtype != bool:
            values = np.array([str(v) for v in values], dtype=object)
        coords[name] = ("label", values)
    return coords


def _attrs(
    gt: StoreRef,
    predictions: Predictions,
    options: MetricOptions,
    split: str | None,
    summary: EvaluateSummary,
) -> dict[str, Any]:
    return {
        "ground_truth": gt.url,
        "prediction": predictions.url,
        "split": split or "",
        "metric_options": asdict(options),
        "metrics": list(METRICS),
        "definitions": DEFINITIONS,
        "studies_without_prediction": summary.missing,
        "predictions_without_ground_truth": summary.unknown,
    }


def write_reports(dest: StoreRef) -> None:
    """Write ``metrics.csv``, ``per_class.csv``, ``summary.csv`` and ``summary.md`` of ``dest``."""
    results = open_results(child(dest, RESULTS_STORE))
    _write_metrics_csv(results, child(dest, "metrics.csv"))
    per_class = class_means(results)
    summary = summary_table(partition_rows(per_class), summary_title(results))
    write_text(child(dest, "per_class.csv"), to_csv(per_class_table(per_class)))
    write_text(child(dest, "summary.csv"), to_csv(summary))
    write_text(child(dest, "summary.md"), to_markdown(summary))


def summary_title(results: xr.Dataset) -> str:
    """What a summary table is about: prediction, ground truth, studies, NSD tolerance."""
    tau = results.attrs["metric_options"]["tolerance_mm"]
    return (
        f"{results.attrs['prediction']} against {results.attrs['ground_truth']}: "
        f"{results.sizes['study']} studies, class-balanced means, NSD at {tau} mm"
    )


def _write_metrics_csv(results: xr.Dataset, ref: StoreRef) -> None:
    """One row per (study, view, label), streamed a chunk of studies at a time."""
    labels = _names(results["label"])
    systems, levels = _names(results["system"]), _names(results["level"])
    pathology = results["pathology"].values
    views = _names(results["view"])
    flags = ("gt_available", "gt_empty", "pred_empty", "gt_components", "pred_components")
    with open_text_for_writing(ref) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        hierarchy = ["study", "split", "view", "label", "system", "level", "pathology"]
        writer.writerow([*hierarchy, *flags, *METRICS])
        for start in range(0, results.sizes["study"], STUDY_CHUNK):
            part = results.isel(study=slice(start, start + STUDY_CHUNK)).compute()
            available = part["gt_available"].values
            metric_values = np.stack([part[m].values for m in METRICS], axis=-1)
            for s, study in enumerate(_names(part["study"])):
                split = str(part["split"].values[s])
                for v, view in enumerate(views):
                    for i, label in enumerate(labels):
                        writer.writerow(
                            [study, split, view, label, systems[i], levels[i], bool(pathology[i])]
                            + [bool(available[s, i]), bool(part["gt_empty"].values[s, v, i])]
                            + [bool(part["pred_empty"].values[s, v, i])]
                            + [int(part["gt_components"].values[s, v, i])]
                            + [int(part["pred_components"].values[s, v, i])]
                            + [number(x) for x in metric_values[s, v, i]]
                        )
