"""A baseline predictor: the mean-shape atlas of the training studies, thresholded.

For each (view, label), the atlas is the per-pixel share of training studies whose mask covers
the pixel, over the training studies that have the class (``available``: an absent class is
unknown, not empty). Its prediction, the same for every study, is the pixels where that share
is at least ``threshold``. It needs no image, so it is a floor any trained model should beat,
and a real prediction for the evaluation to score.

The graph: one task per group of training studies reads their shards and sums their masks;
the sums are reduced in a tree, thresholded and persisted; then, a batch at a time, every
target study's block is that atlas, written into a prediction store in the dataset schema
(``storage.dataset``), small arrays written by the client, and the studies committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np
import xarray as xr

import storage.dataset as dataset_store
from catalog.reader import open_catalog
from flows.prediction_store import prediction_template, write_predictions
from storage.location import StoreRef
from storage.masks import read_study_masks

GROUP = 8  # training studies summed by one task (bounds the number of partial sums)


@dataclass
class AtlasSummary:
    """What an atlas prediction did."""

    dest: str
    train: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    classes: int = 0  # classes with at least one training study
    seconds: float = 0.0


def predict_atlas(
    gt: StoreRef,
    dest: StoreRef,
    train: Sequence[str],
    targets: Sequence[str],
    threshold: float = 0.5,
    *,
    batch_size: int = 64,
    on_batch: Callable[[int, int], None] | None = None,
) -> AtlasSummary:
    """Write the atlas of ``train`` as the prediction of every study in ``targets`` to ``dest``."""
    started = time.perf_counter()
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"the atlas threshold must be in (0, 1], not {threshold}")
    truth = open_catalog(gt)
    _require(truth, train, "training")
    _require(truth, targets, "target")
    everything = open_catalog(gt, include_uncommitted=True)
    positions = {str(s): i for i, s in enumerate(everything["study"].values)}
    available = truth["available"].sel(study=list(train)).values
    block = tuple(int(n) for n in everything["mask"].shape[1:])  # (view, label, y, x)
    atlas, has_class = _atlas(gt, [positions[s] for s in train], available, block, threshold)
    truth = truth.sel(study=list(targets))
    model = {
        "model": "mean-shape atlas",
        "threshold": threshold,
        "ground_truth": gt.url,
        "training_studies": len(train),
    }
    dataset_store.create(dest, prediction_template(truth, model))
    summary = AtlasSummary(dest.url, list(train), classes=int(has_class.sum()))
    (atlas,) = dask.persist(atlas)  # computed once, reused by every batch
    for start in range(0, len(targets), batch_size):
        region = slice(start, min(start + batch_size, len(targets)))
        n = region.stop - region.start
        everyone = np.broadcast_to(has_class, (n, has_class.size))
        write_predictions(dest, truth.isel(study=region), da.stack([atlas] * n), everyone, region)
        summary.predicted += list(targets[region])
        if on_batch:
            on_batch(region.stop, len(targets))
    summary.seconds = time.perf_counter() - started
    return summary


def split_studies(gt: StoreRef, split: str) -> list[str]:
    """The committed studies of ``gt`` in ``split``, in store order."""
    truth = open_catalog(gt)
    pairs = zip(truth["study"].values, truth["split"].values, strict=True)
    return [str(study) for study, part in pairs if str(part) == split]


def _require(truth: xr.Dataset, studies: Sequence[str], role: str) -> None:
    if not studies:
        raise ValueError(f"the atlas needs at least one {role} study")
    known = {str(s) for s in truth["study"].values}
    missing = [s for s in studies if s not in known]
    if missing:
        raise KeyError(f"{role} study {missing[0]!r} is not a committed study of the dataset")


def _atlas(
    gt: StoreRef,
    positions: Sequence[int],
    available: np.ndarray,
    block: tuple[int, ...],
    threshold: float,
) -> tuple[da.Array, np.ndarray]:
    """The lazy thresholded atlas (view, label, y, x) and which classes it covers."""
    groups = [
        dask.delayed(_sum_masks, pure=True)(gt, positions[i : i + GROUP], available[i : i + GROUP])
        for i in range(0, len(positions), GROUP)
    ]
    sums = da.stack([da.from_delayed(g, block, dtype=np.int32) for g in groups])
    counts = sums.sum(axis=0, dtype=np.int32, split_every=8)
    studies_with_class = available.sum(axis=0)  # (label,)
    has_class = studies_with_class > 0
    # share >= threshold, written without division; classes nobody has stay empty
    needed = np.where(has_class, threshold * studies_with_class, np.inf)
    return counts >= needed[None, :, None, None], has_class


def _sum_masks(gt: StoreRef, positions: Sequence[int], available: np.ndarray) -> np.ndarray:
    """Per-pixel count of studies covering each class (only where the study has the class)."""
    total: np.ndarray | None = None
    for position, has in zip(positions, available, strict=True):
        masks = read_study_masks(gt, position) & has[None, :, None, None]
        total = masks.astype(np.int32) if total is None else total + masks
    assert total is not None  # callers pass at least one study
    return total
