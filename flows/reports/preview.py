"""A picture of one study: both views side by side with coloured class overlays and a legend.

Only the image of the study and the masks of the chosen classes (or region masks of the chosen
systems) are read: one inner chunk per class and view. Drawing is plain Pillow, so the same
inputs give the same PNG bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from PIL import Image, ImageDraw, ImageFont

DEFAULT_LABELS: tuple[str, ...] = (
    "right lung",
    "left lung",
    "heart",
    "aorta",
    "trachea",
    "thoracic vertebrae",
)
# A qualitative palette (Okabe-Ito, then Tableau) readable on grey radiographs.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),
    (86, 180, 233),
    (213, 94, 0),
    (0, 158, 115),
    (240, 228, 66),
    (204, 121, 167),
    (0, 114, 178),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
)
FILL_ALPHA = 0.35  # fill opacity; outlines are opaque so overlapping classes stay legible
_MARGIN = 8
_SWATCH = 12


@dataclass(frozen=True)
class Overlay:
    """One coloured layer: its name, colour, and a boolean mask per view (view, y, x)."""

    name: str
    colour: tuple[int, int, int]
    masks: np.ndarray
    note: str = ""  # "empty" or "not available" when there is nothing to draw


def render_preview(
    ds: xr.Dataset,
    study: str | None = None,
    labels: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    *,
    scale: int = 1,
) -> Image.Image:
    """Both views of ``study`` with the chosen classes and/or systems overlaid, plus a legend.

    ``ds`` is a catalog (with a ``study`` dimension; ``study`` picks the row) or one study's
    dataset (no ``study`` dimension). Without ``labels`` and ``systems`` the lungs, heart, aorta,
    trachea and thoracic spine are shown. ``scale`` enlarges each pixel (nearest).
    """
    one = _one_study(ds, study)
    if labels is None and systems is None:
        labels = DEFAULT_LABELS
    overlays = _overlays(one, list(labels or []), list(systems or []))
    views = [str(v) for v in one["view"].values]
    images = np.asarray(one["image"].values)
    title = f"{_study_name(one, study)}  ({', '.join(views)})"
    return _compose(images, views, overlays, title, max(1, int(scale)))


def save_preview(
    ds: xr.Dataset,
    study: str | None,
    path: str | Path,
    labels: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    *,
    scale: int = 1,
) -> Path:
    """Render the preview of ``study`` and write it as a PNG at ``path``; returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"the preview is a PNG; give a path ending in .png, not {path.name!r}")
    image = render_preview(ds, study, labels, systems, scale=scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=False)
    return path


def _one_study(ds: xr.Dataset, study: str | None) -> xr.Dataset:
    if "study" not in ds.dims:
        return ds
    known = [str(s) for s in ds["study"].values]
    if study is None:
        if len(known) != 1:
            raise ValueError(f"the dataset holds {len(known)} studies; name the one to preview")
        study = known[0]
    if study not in known:
        raise KeyError(f"no committed study {study!r} in this dataset ({len(known)} studies)")
    return ds.isel(study=known.index(study))


def _study_name(one: xr.Dataset, study: str | None) -> str:
    if "study" in one.coords and one["study"].ndim == 0:
        return str(one["study"].values)
    return study or "study"


def _overlays(one: xr.Dataset, labels: list[str], systems: list[str]) -> list[Overlay]:
    """Read the chosen class and region masks (one chunk per class and view)."""
    _check_names(one, "label", labels)
    _check_names(one, "region", systems)
    layers: list[tuple[str, np.ndarray, bool]] = []
    if labels:
        masks = np.asarray(one["mask"].sel(label=labels).values)  # (view, label, y, x)
        available = _available(one, labels)
        layers += [(n, masks[:, i], available[i]) for i, n in enumerate(labels)]
    if systems:
        regions = np.asarray(one["region_mask"].sel(region=systems).values)
        layers += [(n, regions[:, i], True) for i, n in enumerate(systems)]
    out = []
    for i, (name, masks, available) in enumerate(layers):
        note = "" if masks.any() else ("not available" if not available else "empty")
        out.append(Overlay(name, PALETTE[i % len(PALETTE)], masks.astype(bool), note))
    return out


def _available(one: xr.Dataset, labels: list[str]) -> np.ndarray:
    if "available" not in one:
        return np.ones(len(labels), bool)
    return np.asarray(one["available"].sel(label=labels).values, bool)


def _check_names(one: xr.Dataset, dim: str, names: list[str]) -> None:
    known = {str(v) for v in one[dim].values} if dim in one.coords else set()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"no {dim} named {unknown[0]!r} in this dataset")


def _compose(
    images: np.ndarray, views: list[str], overlays: list[Overlay], title: str, scale: int
) -> Image.Image:
    """Lay out the views side by side under a title, with the legend below."""
    font = ImageFont.load_default()
    panels = [
        _panel(images[v], [o.masks[v] for o in overlays], overlays, scale)
        for v in range(len(views))
    ]
    width = sum(p.width for p in panels) + _MARGIN * (len(panels) + 1)
    legend = _legend(overlays, font, width)
    title_h, label_h = 20, 16
    height = title_h + label_h + max(p.height for p in panels) + legend.height + 2 * _MARGIN
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((_MARGIN, 4), title, fill=(0, 0, 0), font=font)
    x = _MARGIN
    for view, panel in zip(views, panels, strict=True):
        draw.text((x, title_h), view, fill=(0, 0, 0), font=font)
        canvas.paste(panel, (x, title_h + label_h))
        x += panel.width + _MARGIN
    canvas.paste(legend, (0, title_h + label_h + max(p.height for p in panels) + _MARGIN))
    return canvas


def _panel(
    image: np.ndarray, masks: list[np.ndarray], overlays: list[Overlay], scale: int
) -> Image.Image:
    """One view: grey image, translucent fills, then opaque one-pixel outlines."""
    rgb = np.repeat(image.astype(np.float32)[..., None], 3, axis=-1)
    for mask, overlay in zip(masks, overlays, strict=True):
        colour = np.asarray(overlay.colour, np.float32)
        rgb[mask] = (1 - FILL_ALPHA) * rgb[mask] + FILL_ALPHA * colour
    for mask, overlay in zip(masks, overlays, strict=True):
        rgb[_outline(mask)] = overlay.colour
    out = np.rint(rgb).astype(np.uint8)
    if scale > 1:
        out = out.repeat(scale, axis=0).repeat(scale, axis=1)
    return Image.fromarray(out, mode="RGB")


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with at least one 4-neighbour outside it (the image edge counts)."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    return mask & ~interior


def _legend(overlays: list[Overlay], font: ImageFont.ImageFont, width: int) -> Image.Image:
    """Colour swatches and names, wrapped into rows that fit ``width``."""
    rows: list[list[tuple[Overlay, str, int]]] = [[]]
    x = _MARGIN
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for overlay in overlays:
        text = f"{overlay.name} ({overlay.note})" if overlay.note else overlay.name
        item_w = _SWATCH + 4 + int(probe.textlength(text, font=font)) + 2 * _MARGIN
        if x + item_w > width and rows[-1]:
            rows.append([])
            x = _MARGIN
        rows[-1].append((overlay, text, x))
        x += item_w
    row_h = _SWATCH + 6
    legend = Image.new("RGB", (width, row_h * len(rows) + _MARGIN), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    for r, row in enumerate(rows):
        y = r * row_h + 2
        for overlay, text, left in row:
            draw.rectangle(
                (left, y, left + _SWATCH, y + _SWATCH), fill=overlay.colour, outline=(0, 0, 0)
            )
            draw.text((left + _SWATCH + 4, y), text, fill=(0, 0, 0), font=font)
    return legend
