"""Prediction stores: masks predicted for studies of a dataset, written in the dataset schema
(so that ``rga evaluate``, ``rga compare`` and ``rga measure`` read them as they read a dataset).
Shared by every predictor (the atlas, a trained model): the template copies the ground truth's
coordinates and parameters, and each batch of studies is written and then committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

import storage.dataset as dataset_store
from flows.maths.projection import region_masks
from storage.location import StoreRef


def prediction_template(truth: xr.Dataset, prediction: Mapping[str, Any]) -> xr.Dataset:
    """The store's template for the studies of ``truth``; ``prediction`` describes the model."""
    coords: dict[str, Any] = {}
    for name in ("view", "label", "region", "system", "organ", "substructure", "level", "split"):
        dim = truth[name].dims[0]
        coords[name] = (dim, np.array([str(v) for v in truth[name].values], dtype=object))
    coords["pathology"] = ("label", truth["pathology"].values.astype(bool))
    attrs = {
        "rga_format": dataset_store.DATASET_FORMAT,
        "rga_parameters": dict(truth.attrs.get("rga_parameters", {})),
        "rga_prediction": dict(prediction),
    }
    return dataset_store.template(
        [str(s) for s in truth["study"].values], truth.sizes["y"], coords, attrs
    )


def write_predictions(
    dest: StoreRef,
    part: xr.Dataset,
    mask: da.Array,
    available: np.ndarray,
    region: slice,
) -> None:
    """Write ``mask`` (study, view, label, y, x; one chunk per study) as the prediction of the
    studies of ``part`` at ``region`` of ``dest``, with their region masks and footprints, and
    commit them. ``available`` (study, label) says which classes the predictor can predict."""
    n = part.sizes["study"]
    views, canvas = part.sizes["view"], part.sizes["y"]
    systems = [str(s) for s in part["system"].values]
    groups = [tuple(np.flatnonzero([s == str(r) for s in systems])) for r in part["region"].values]
    image = da.zeros((n, views, canvas, canvas), dtype=np.uint8, chunks=(1, views, canvas, canvas))
    region_chunks = (1, views, len(groups), canvas, canvas)
    regions = da.map_blocks(region_masks, mask, groups=groups, dtype=bool, chunks=region_chunks)
    lazy = xr.Dataset(
        {
            "image": (("study", "view", "y", "x"), image),  # predictions carry no radiograph
            "mask": (("study", "view", "label", "y", "x"), mask),
            "region_mask": (("study", "view", "region", "y", "x"), regions),
        }
    )
    heavy = dataset_store.write_heavy(dest, lazy, region)
    written = da.from_delayed(dask.delayed(_true)(heavy), (), bool)
    footprint = mask.sum(axis=(-2, -1), dtype=np.int32)
    # Only dask arrays in this compute (dask 2026.8 misorders mixed Delayed/Array computes).
    _, footprints = dask.compute(written, footprint)
    small = xr.Dataset(
        {
            "footprint": (("study", "view", "label"), footprints),
            "available": (("study", "label"), np.asarray(available, bool)),
            "pixel_spacing": (("study", "view"), part["pixel_spacing"].values),
        }
    )
    dataset_store.write_small(dest, small, region)
    dataset_store.set_committed(dest, dict.fromkeys(range(region.start, region.stop), True))


def _true(_: Any) -> np.ndarray:
    return np.array(True)
