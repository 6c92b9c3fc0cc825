"""PNG figures of the statistics: footprint by system and view, measurements by grade.

Figures are plain matplotlib ``Figure`` objects drawn by the Agg canvas, never through pyplot,
so no display is needed and no global backend is switched (a notebook keeps its own). PNGs are
written without a timestamp or software tag: the same statistics give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from flows.maths.footprints import FootprintSummary
from flows.maths.measurements import CONDITION_OF, GRADES, MEASUREMENTS, CutPoints
from flows.reports.tables import Variables

VIEW_COLOURS = {"PA": "#0072B2", "LL": "#E69F00"}
GRADE_COLOURS = ("#009E73", "#F0E442", "#E69F00", "#D55E00")  # negative .. severe
UNITS = {
    "cardiothoracic_ratio": "ratio",
    "spinal_curvature_deg": "degrees",
    "kyphosis_deg": "degrees",
}
_PNG_METADATA = {"Software": None}


def footprint_figure(summary: FootprintSummary) -> Figure:
    """Grouped horizontal bars: mean footprint per system for each view, log scale, with CIs."""
    order = np.argsort(np.nan_to_num(summary.mean[:, 0], nan=-1.0), kind="stable")
    fig = _figure((7.5, 4.8))
    ax = fig.subplots()
    height = 0.8 / len(summary.views)
    for v, view in enumerate(summary.views):
        y = np.arange(len(order)) + (v - (len(summary.views) - 1) / 2) * height
        mean = summary.mean[order, v]
        err = np.vstack([mean - summary.low[order, v], summary.high[order, v] - mean])
        ax.barh(
            y,
            np.nan_to_num(mean),
            height,
            xerr=np.nan_to_num(err),
            color=VIEW_COLOURS.get(view),
            label=view,
            capsize=2,
        )
    ax.set_yticks(np.arange(len(order)), [summary.systems[g] for g in order])
    ax.set_xscale("log")
    ax.set_xlabel(f"mean footprint (pixels of {summary.image_pixels:,}), 95% bootstrap CI")
    ax.set_title("Mask footprint by body system and view")
    ax.legend(loc="lower right")
    return fig


def measurements_figure(measured: Variables, cut_points: CutPoints) -> Figure:
    """One panel per measurement: histogram of measured values stacked by grade, with the
    cut-points as dashed lines; excluded studies are counted in the title."""
    fig = _figure((12, 3.8))
    axes = fig.subplots(1, len(MEASUREMENTS))
    for ax, name in zip(np.atleast_1d(axes), MEASUREMENTS, strict=True):
        values = np.asarray(measured[name].values, float)
        ok = np.isfinite(values)
        grades = cut_points.grades(name, values)
        points = getattr(cut_points, name)
        if ok.any():
            low = min(
                values[ok].min(), -points[-1] if name == "spinal_curvature_deg" else points[0]
            )
            high = max(values[ok].max(), points[-1])
            span = (high - low) or 1.0
            bins = np.linspace(low - 0.05 * span, high + 0.05 * span, 25)
            stacks = [values[grades == g] for g in range(len(GRADES))]
            ax.hist(stacks, bins=bins, stacked=True, color=GRADE_COLOURS, label=list(GRADES))
        else:
            ax.text(0.5, 0.5, "no measured study", ha="center", va="center", transform=ax.transAxes)
        cuts = [*points, *(-p for p in points)] if name == "spinal_curvature_deg" else points
        for p in cuts:
            ax.axvline(p, color="0.3", linestyle="--", linewidth=0.8)
        ax.set_title(f"{CONDITION_OF[name]}: {ok.sum()} measured, {(~ok).sum()} excluded")
        ax.set_xlabel(f"{name} ({UNITS[name]})")
        ax.set_ylabel("studies")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in GRADE_COLOURS]
    fig.legend(handles, GRADES, loc="outside right center")
    return fig


def _figure(size: tuple[float, float]) -> Figure:
    """A figure on an Agg canvas, outside pyplot's global state."""
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (no timestamp or software tag)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110, metadata=_PNG_METADATA)
    return path
