"""Predicted masks opened for ``rga measure``: a store in the dataset schema or a folder of PNG
masks ``<study>/<view>/<label>.png``, as one lazy dataset over the classes the measurements need.

A study whose PNGs cannot be read is not an error of the whole run: it carries its reason in
``error``, and ``flows.measure`` excludes it from every measurement.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from catalog.reader import open_catalog
from catalog.taxonomy import load_taxonomy
from flows.maths.measurements import REQUIRED_LABELS
from flows.maths.projection import CANVAS, VIEWS
from storage.location import StoreRef
from storage.masks import PngFolder

log = logging.getLogger(__name__)


def open_predictions(
    pred: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    reference: xr.Dataset | None = None,
    pixel_spacing: float | None = None,
    image_size: int | None = None,
) -> xr.Dataset:
    """Predicted masks as a lazy dataset: ``mask`` (study, view, label, y, x) over the classes
    the measurements need, ``pixel_spacing`` (study, view), ``available``, ``error``.

    ``pred`` is a dataset-schema store or a folder ``<study>/<view>/<label>.png``. Pixel
    spacing is ``pixel_spacing`` if given, else the ``reference`` dataset's (by study), else
    the store's own; a PNG folder needs one of the first two.
    """
    options = dict(storage_options or {})
    store = StoreRef(pred, options)
    if store.exists():
        ds = _from_dataset(store)
    else:
        folder = PngFolder(pred, options)
        if not folder.exists():
            raise FileNotFoundError(f"no dataset store or folder of PNG masks at {pred}")
        if pixel_spacing is None and reference is None:
            raise ValueError(
                "a folder of PNG masks has no pixel spacing: give --pixel-spacing MM or "
                "--dest DATASET (the dataset the masks were predicted for)"
            )
        size = _image_size(reference, image_size)
        ds = _from_png_folder(folder, (size, size))
    return _with_spacing(ds, reference, pixel_spacing)


def _from_dataset(store: StoreRef) -> xr.Dataset:
    ds = open_catalog(store)
    labels = [str(n) for n in ds["label"].values]
    missing = [n for n in REQUIRED_LABELS if n not in labels]
    if missing:
        raise KeyError(f"{store.url} has no class {missing[0]!r}, which the measurements need")
    sub = ds[["mask", "pixel_spacing", "available"]].sel(label=list(REQUIRED_LABELS))
    sub = sub.drop_vars([c for c in sub.coords if c not in ("study", "view", "label")])
    error = da.full(sub.sizes["study"], None, dtype=object, chunks=1)
    return sub.assign(error=("study", error))


def _image_size(reference: xr.Dataset | None, image_size: int | None) -> int:
    if image_size is not None:
        return image_size
    if reference is not None:
        return int(reference.sizes["y"])
    return CANVAS


def _from_png_folder(folder: PngFolder, shape: tuple[int, int]) -> xr.Dataset:
    """One lazy read per study; a study whose PNGs cannot be read carries its error."""
    studies = folder.studies()
    if not studies:
        raise ValueError(f"{folder.url} holds no study folder")
    names = load_taxonomy().names
    positions = [names.index(n) for n in REQUIRED_LABELS]
    n_views, n_labels = len(VIEWS), len(REQUIRED_LABELS)
    reads = [
        dask.delayed(_read_png_study, pure=True)(folder, s, names, positions, shape)
        for s in studies
    ]
    masks = da.concatenate(
        [da.from_delayed(r[0], (n_views, n_labels, *shape), dtype=bool)[None] for r in reads]
    )
    errors = da.concatenate([da.from_delayed(r[1], (), dtype=object)[None] for r in reads])
    # a missing PNG is an empty mask (the folder convention), so every class counts as given
    available = np.ones((len(studies), n_labels), bool)
    return xr.Dataset(
        {
            "mask": (("study", "view", "label", "y", "x"), masks),
            "available": (("study", "label"), available),
            "pixel_spacing": (("study", "view"), np.full((len(studies), n_views), np.nan)),
            "error": (("study",), errors),
        },
        coords={"study": studies, "view": list(VIEWS), "label": list(REQUIRED_LABELS)},
    )


def _read_png_study(
    folder: PngFolder,
    study: str,
    names: Sequence[str],
    positions: Sequence[int],
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """The needed masks of one study and None, or empty masks and the reason they are not."""
    try:
        masks = folder.read(study, VIEWS, names, shape)[:, positions]
        return masks, np.array(None, object)
    except Exception as error:
        log.exception("reading the predicted masks of study %s failed", study)
        empty = np.zeros((len(VIEWS), len(positions), *shape), bool)
        return empty, np.array(f"masks unreadable: {error}", object)


def _with_spacing(
    ds: xr.Dataset, reference: xr.Dataset | None, pixel_spacing: float | None
) -> xr.Dataset:
    if pixel_spacing is not None:
        if not pixel_spacing > 0:
            raise ValueError(
                f"the pixel spacing must be a positive number of mm, not {pixel_spacing}"
            )
        spacing = np.full((ds.sizes["study"], len(VIEWS)), float(pixel_spacing), np.float32)
        return ds.assign(pixel_spacing=(("study", "view"), spacing))
    if reference is None:
        return ds
    by_study = {str(s): i for i, s in enumerate(reference["study"].values)}
    known = np.asarray(reference["pixel_spacing"].sel(view=list(VIEWS)).values, np.float32)
    spacing = np.full((ds.sizes["study"], len(VIEWS)), np.nan, np.float32)
    for i, study in enumerate(str(s) for s in ds["study"].values):
        if study in by_study:
            spacing[i] = known[by_study[study]]
    return ds.assign(pixel_spacing=(("study", "view"), spacing))
