"""The tables of dataset statistics: inventory (paper Table 2), mean footprint by system
(Table A4) and label prevalence, from the arrays ``flows.stats`` loaded
(``flows.maths.footprints``). Definitions are in ``flows.stats`` and docs/DESIGN.md.
"""

from __future__ import annotations

import numpy as np

from catalog.taxonomy import SYSTEMS
from flows.maths.bootstrap import LEVEL, RESAMPLES
from flows.maths.footprints import FootprintSummary, StudyArrays
from flows.reports.tables import Table


def _splits(arrays: StudyArrays) -> list[str]:
    """Splits in a stable order: train, valid(ation), test first, then others by name."""
    first = ["train", "valid", "validation", "val", "test"]
    present = sorted(set(arrays.split))
    return [s for s in first if s in present] + [s for s in present if s not in first]


def inventory_table(arrays: StudyArrays) -> Table:
    """Paper Table 2: studies, projections and masks (stored, available, non-empty) by split."""
    splits = _splits(arrays)
    in_split = [arrays.split == s for s in splits] + [np.ones(len(arrays.split), bool)]
    region_members = np.array([arrays.system == s for s in SYSTEMS])  # (region, label)
    nonempty = arrays.footprint > 0  # (study, view, label)
    region_nonempty = (nonempty[:, :, None, :] & region_members[None, None]).any(axis=-1)
    region_available = (arrays.available[:, None, :] & region_members[None]).any(axis=-1)
    n_labels, n_regions = arrays.footprint.shape[-1], len(SYSTEMS)

    def count(values_by_view: np.ndarray, view: int | None) -> list[int]:
        """Sum over studies of each split (and all) for one view, or both views."""
        picked = values_by_view if view is None else values_by_view[:, view : view + 1]
        return [int(picked[rows].sum()) for rows in in_split]

    stored = arrays.stored.astype(np.int64)  # (study, view)
    available_per_view = arrays.available.sum(axis=1)[:, None] * arrays.stored
    regions_available = region_available.sum(axis=1)[:, None] * arrays.stored
    rows: list[tuple] = [("Studies", "", *count(np.ones((len(stored), 1), np.int64), None))]
    rows += [("Projections", view, *count(stored, v)) for v, view in enumerate(arrays.views)]
    sections = (
        ("Anatomy masks, stored", stored * n_labels),
        ("Anatomy masks, available", available_per_view),
        ("Anatomy masks, non-empty", (nonempty & arrays.stored[..., None]).sum(axis=-1)),
        ("Region masks, stored", stored * n_regions),
        ("Region masks, available", regions_available),
        ("Region masks, non-empty", (region_nonempty & arrays.stored[..., None]).sum(axis=-1)),
    )
    for title, per_view in sections:
        rows += [(title, view, *count(per_view, v)) for v, view in enumerate(arrays.views)]
        rows.append((title, "Total", *count(per_view, None)))
    columns = ("item", "view", *splits, "total")
    notes = (
        f"stored: every class has a mask per projection ({n_labels} classes, {n_regions} "
        "regions); available: the input provided the class; non-empty: footprint > 0.",
    )
    return Table("inventory", "Dataset inventory (paper Table 2)", columns, tuple(rows), notes)


def footprint_table(summary: FootprintSummary, resamples: int = RESAMPLES) -> Table:
    """Paper Table A4: mean footprint per system and view, interval, share of image, PA/LL."""
    pa, ll = summary.views.index("PA"), summary.views.index("LL")
    order = np.argsort(-np.nan_to_num(summary.mean[:, pa], nan=-1.0), kind="stable")
    rows = []
    for g in order:
        m = summary.mean[g]
        ratio = m[pa] / m[ll] if m[ll] > 0 else np.nan
        rows.append(
            (
                summary.systems[g],
                float(m[pa]),
                float(summary.low[g, pa]),
                float(summary.high[g, pa]),
                float(m[ll]),
                float(summary.low[g, ll]),
                float(summary.high[g, ll]),
                float(100 * m[pa] / summary.image_pixels),
                float(100 * m[ll] / summary.image_pixels),
                float(ratio),
                int(summary.masks[g, pa]),
                int(summary.masks[g, ll]),
            )
        )
    columns = (
        "system",
        "PA mean px",
        "PA low",
        "PA high",
        "LL mean px",
        "LL low",
        "LL high",
        "PA % of image",
        "LL % of image",
        "PA/LL",
        "PA masks",
        "LL masks",
    )
    notes = (
        f"Means over non-empty masks of available classes; {LEVEL:.0%} intervals: bootstrap "
        f"over studies ({resamples} resamples, fixed seed).",
    )
    return Table(
        "footprint", "Mean footprint by system (paper Table A4)", columns, tuple(rows), notes
    )


def prevalence_table(arrays: StudyArrays) -> Table:
    """Per class: studies where available, where non-empty in each view, and the prevalence."""
    available = arrays.available.sum(axis=0)
    rows = []
    levels = list(arrays.levels)
    for i, label in enumerate(arrays.labels):
        row: list = [label, arrays.system[i], levels[i], int(available[i])]
        for v in range(len(arrays.views)):
            present = int(((arrays.footprint[:, v, i] > 0) & arrays.available[:, i]).sum())
            row += [present, present / available[i] if available[i] else np.nan]
        rows.append(tuple(row))
    columns = ["label", "system", "level", "available"]
    for view in arrays.views:
        columns += [f"{view} non-empty", f"{view} prevalence"]
    return Table(
        "prevalence", "Label prevalence (non-empty among available)", tuple(columns), tuple(rows)
    )
