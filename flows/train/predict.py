"""``rga predict``: a trained model's masks for the studies of one split, as a prediction store
in the dataset schema (``rga evaluate``, ``rga compare`` and ``rga measure`` read it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np
import torch
import torch.nn.functional as F

import storage.dataset as dataset_store
from catalog import RadiographDataset, open_catalog, select
from flows.prediction_store import prediction_template, write_predictions
from flows.train.fit import resolve_device, use_threads, view_indices
from flows.train.model import WEIGHTS, ModelConfig, build_network
from storage.location import StoreRef


@dataclass
class PredictSummary:
    """What a prediction run did."""

    dest: str
    predicted: list[str] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"


def predict(
    model_dir: Path,
    dataset: StoreRef,
    dest: StoreRef,
    *,
    split: str = "valid",
    threshold: float = 0.5,
    batch_size: int = 8,
    device: str = "auto",
    threads: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> PredictSummary:
    """Write the model's thresholded sigmoid masks for every committed study of ``split``."""
    started = time.perf_counter()
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"the threshold must be in (0, 1), not {threshold}")
    config = ModelConfig.load(model_dir)
    target = resolve_device(device)
    use_threads(threads)
    truth = select(open_catalog(dataset), split=split)
    if truth.sizes["study"] == 0:
        raise ValueError(f"{dataset.url} has no committed study in split {split!r}")
    labels = [str(n) for n in truth["label"].values]
    unknown = [n for n in config.labels if n not in labels]
    if unknown:
        raise ValueError(f"the model predicts {unknown[0]!r}, which {dataset.url} has no class of")
    network = build_network(config)
    network.load_state_dict(torch.load(model_dir / WEIGHTS, map_location="cpu", weights_only=True))
    network.to(target).eval()
    views = [str(v) for v in truth["view"].values]
    if any(view not in config.views for view in views):
        raise ValueError(f"the model knows the views {config.views}, {dataset.url} has {views}")
    data = RadiographDataset(dataset, split=split, views=views)
    outputs = [labels.index(n) for n in config.labels]  # the model's classes in the store
    predictable = np.zeros(len(labels), bool)
    predictable[outputs] = True
    prediction = {"model": "U-Net (rga train)", "threshold": threshold, "model_dir": str(model_dir)}
    dataset_store.create(dest, prediction_template(truth, prediction))
    summary = PredictSummary(dest.url, device=target.type)
    studies = len(data.studies)
    canvas = int(truth.sizes["y"])
    per_batch = max(1, batch_size // len(views))  # studies per batch (all views of each)
    for start in range(0, studies, per_batch):
        region = slice(start, min(start + per_batch, studies))
        items = [
            data[s * len(views) + v]
            for s in range(region.start, region.stop)
            for v in range(len(views))
        ]
        images = torch.from_numpy(np.stack([item["image"] for item in items]))
        views_of = view_indices([item["view"] for item in items], config.views)
        masks = _masks(network, images, views_of, config.image_size, canvas, threshold, target)
        full = np.zeros((len(items), len(labels), canvas, canvas), bool)
        full[:, outputs] = masks
        full = full.reshape(region.stop - region.start, len(views), len(labels), canvas, canvas)
        lazy = da.from_array(full, chunks=(1, *full.shape[1:]))
        available = np.broadcast_to(predictable, (full.shape[0], len(labels)))
        write_predictions(dest, truth.isel(study=region), lazy, available, region)
        summary.predicted += data.studies[region]
        if on_batch:
            on_batch(region.stop, studies)
    summary.seconds = time.perf_counter() - started
    return summary


@torch.no_grad()
def _masks(
    network: torch.nn.Module,
    images: torch.Tensor,
    views: torch.Tensor,
    size: int,
    canvas: int,
    threshold: float,
    device: torch.device,
) -> np.ndarray:
    """Thresholded sigmoid masks (N, L, canvas, canvas) of (N, 1, H, W) images."""
    if images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
    logits = network(images.to(device), views.to(device))
    if logits.shape[-1] != canvas:
        logits = F.interpolate(logits, size=(canvas, canvas), mode="bilinear")
    return (torch.sigmoid(logits) >= threshold).cpu().numpy()
