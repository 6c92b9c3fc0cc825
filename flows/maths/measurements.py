"""Clinical measurements from one study's projected masks (paper Appendix B): pure numpy.

Three measurements, each graded negative / mild / moderate / severe by configurable cut-points:

- ``cardiothoracic_ratio`` (cardiomegaly, PA): the widest horizontal extent of the cardiac
  silhouette over the widest inner thoracic span, the span of the two lungs (whose outer edges
  are the pleura on the inner margin of the ribs) over the rows the rib cage covers.
- ``spinal_curvature_deg`` (scoliosis, PA): the paper's spinal curvature deviation (SCD), the
  turning angle of the spinal centreline at the apex vertebra: the angle between the direction
  from the upper endpoint centroid to the apex and from the apex to the lower endpoint centroid.
  Signed: positive when the curve is convex to the patient's right.
- ``kyphosis_deg`` (kyphosis, LL): a Cobb-style sagittal angle, the angle between the tangents
  at the superior end plate of the upper and the inferior end plate of the lower thoracic
  vertebra of a smooth (parametric cubic) curve fitted through the vertebral centroids.
  Signed: positive when the thoracic spine is convex posteriorly (kyphotic).

Masks are (view, label, y, x) booleans in the dataset's orientation: superior up; PA with the
patient's right on the viewer's left; LL with anterior on the viewer's left. Distances are in
millimetres through the square ``pixel_spacing`` of each view. Before measuring, each mask keeps
only its connected components (8-connected) of at least ``MIN_COMPONENT_SHARE`` of its largest,
so isolated specks of a predicted mask do not move an extent or a centroid. A study whose anatomy
does not allow a measurement gets NaN, grade -1 and the reason as a sentence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

MEASUREMENTS: tuple[str, ...] = ("cardiothoracic_ratio", "spinal_curvature_deg", "kyphosis_deg")
CONDITIONS: tuple[str, ...] = ("cardiomegaly", "scoliosis", "kyphosis")
CONDITION_OF: dict[str, str] = dict(zip(MEASUREMENTS, CONDITIONS, strict=True))
GRADES: tuple[str, ...] = ("negative", "mild", "moderate", "severe")
NOT_GRADED = -1
VIEW_OF: dict[str, str] = {
    "cardiothoracic_ratio": "PA",
    "spinal_curvature_deg": "PA",
    "kyphosis_deg": "LL",
}

THORACIC_VERTEBRAE: tuple[str, ...] = tuple(f"thoracic vertebrae {n} (t{n})" for n in range(1, 13))
REQUIRED_LABELS: tuple[str, ...] = ("heart", "right lung", "left lung", "rib", *THORACIC_VERTEBRAE)
"""Every class a measurement reads, in a fixed order (the label axis of predicted inputs)."""

MIN_COMPONENT_SHARE = 0.1  # components smaller than this share of the largest are specks
MIN_HEART_SHARE = 0.9  # a heart whose largest component holds less is fragmented
MIN_VERTEBRAE = 8  # contiguous thoracic vertebrae needed for a stable spinal curve
_EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class CutPoints:
    """Grading thresholds: a value above the 1st, 2nd, 3rd cut-point is mild, moderate, severe.

    A value equal to a cut-point takes the lower grade. Spinal curvature is graded by its
    magnitude (either side). Defaults and their sources are in docs/DESIGN.md.
    """

    cardiothoracic_ratio: tuple[float, float, float] = (0.50, 0.55, 0.60)
    spinal_curvature_deg: tuple[float, float, float] = (5.0, 12.5, 20.0)
    kyphosis_deg: tuple[float, float, float] = (40.0, 50.0, 60.0)

    def __post_init__(self) -> None:
        for name in MEASUREMENTS:
            points = tuple(float(p) for p in getattr(self, name))
            if len(points) != 3 or not all(math.isfinite(p) for p in points):
                raise ValueError(f"{name} needs three finite cut-points, got {points}")
            if not points[0] < points[1] < points[2]:
                raise ValueError(f"{name} cut-points must increase strictly, got {points}")
            object.__setattr__(self, name, points)

    def grade(self, name: str, value: float) -> int:
        """Grade 0..3 of one measurement value; -1 for NaN (not measured)."""
        if not math.isfinite(value):
            return NOT_GRADED
        if name == "spinal_curvature_deg":
            value = abs(value)
        return int(sum(value > point for point in getattr(self, name)))

    def grades(self, name: str, values: np.ndarray) -> np.ndarray:
        """Grades (int8) of an array of values of one measurement; -1 where NaN."""
        values = np.asarray(values, float)
        magnitude = np.abs(values) if name == "spinal_curvature_deg" else values
        out = (magnitude[..., None] > np.asarray(getattr(self, name))).sum(axis=-1)
        return np.where(np.isfinite(values), out, NOT_GRADED).astype(np.int8)


DEFAULT_CUT_POINTS = CutPoints()


@dataclass(frozen=True)
class MeasurementLabels:
    """Where each class a measurement needs sits on a mask array's label axis (-1: absent)."""

    heart: int
    right_lung: int
    left_lung: int
    rib: int
    thoracic_vertebrae: tuple[int, ...]  # T1..T12

    @classmethod
    def from_names(cls, names: Sequence[str]) -> MeasurementLabels:
        """Positions of the required classes in ``names`` (the mask's label axis)."""
        where = {str(name): i for i, name in enumerate(names)}
        return cls(
            heart=where.get("heart", -1),
            right_lung=where.get("right lung", -1),
            left_lung=where.get("left lung", -1),
            rib=where.get("rib", -1),
            thoracic_vertebrae=tuple(where.get(n, -1) for n in THORACIC_VERTEBRAE),
        )


@dataclass(frozen=True)
class Measurement:
    """One measurement of one study: value (NaN when excluded), grade, and why not measured."""

    name: str
    value: float
    grade: int
    exclusion: str = ""  # empty when measured
    details: Mapping[str, float | str] = field(default_factory=dict)

    @property
    def condition(self) -> str:
        return CONDITION_OF[self.name]


@dataclass(frozen=True)
class StudyMeasurements:
    """The three measurements of one study, in ``MEASUREMENTS`` order."""

    measurements: tuple[Measurement, ...]

    def values(self) -> np.ndarray:
        """float32 (3,): NaN where excluded."""
        return np.array([m.value for m in self.measurements], np.float32)

    def grades(self) -> np.ndarray:
        """int8 (3,): 0..3, or -1 where excluded."""
        return np.array([m.grade for m in self.measurements], np.int8)

    def exclusions(self) -> np.ndarray:
        """object (3,) strings: empty where measured."""
        return np.array([m.exclusion for m in self.measurements], object)

    def __getitem__(self, name: str) -> Measurement:
        return self.measurements[MEASUREMENTS.index(name)]


class Excluded(Exception):
    """The anatomy a measurement needs is missing or unusable; the message says why."""


def measure_study(
    mask: np.ndarray,
    pixel_spacing: Sequence[float] | np.ndarray,
    labels: MeasurementLabels,
    available: np.ndarray | None = None,
    cut_points: CutPoints = DEFAULT_CUT_POINTS,
    views: Sequence[str] = ("PA", "LL"),
) -> StudyMeasurements:
    """All three measurements of one study from its (view, label, y, x) masks.

    ``pixel_spacing`` is mm per pixel of each view; ``available`` (label,) tells a class the
    input did not provide (excluded as "not available") from an empty one.
    """
    mask = np.asarray(mask)
    if mask.ndim != 4:
        raise ValueError(f"masks must be (view, label, y, x), got shape {mask.shape}")
    spacing = {v: float(s) for v, s in zip(views, np.asarray(pixel_spacing, float), strict=True)}
    source = _Masks(mask, list(views), available)
    measured = []
    for name, fn in _MEASURE.items():
        try:
            value, details = fn(source, labels, spacing[VIEW_OF[name]])
            measured.append(Measurement(name, value, cut_points.grade(name, value), "", details))
        except Excluded as why:
            measured.append(Measurement(name, math.nan, NOT_GRADED, str(why)))
    return StudyMeasurements(tuple(measured))


class _Masks:
    """Access to one study's masks by view and label position, with availability checks."""

    def __init__(self, mask: np.ndarray, views: list[str], available: np.ndarray | None) -> None:
        self.mask, self.views, self.available = mask, views, available

    def get(self, view: str, index: int, name: str) -> np.ndarray:
        """The cleaned mask of one class; Excluded if absent, unavailable or empty."""
        if view not in self.views:
            raise Excluded(f"no {view} view")
        if index < 0 or (self.available is not None and not self.available[index]):
            raise Excluded(f"{name} not available")
        raw = np.asarray(self.mask[self.views.index(view), index], bool)
        if not raw.any():
            raise Excluded(f"{name} mask empty on {view}")
        return drop_specks(raw)

    def maybe(self, view: str, index: int) -> np.ndarray | None:
        """A cleaned mask, or None when it is absent, unavailable or empty."""
        try:
            return self.get(view, index, "")
        except Excluded:
            return None


def _spacing_mm(spacing: float, view: str) -> float:
    if not math.isfinite(spacing) or spacing <= 0:
        raise Excluded(f"pixel spacing of {view} unknown")
    return spacing


# ---------------------------------------------------------------------------------------------
# Geometric primitives
# ---------------------------------------------------------------------------------------------


def drop_specks(mask: np.ndarray, min_share: float = MIN_COMPONENT_SHARE) -> np.ndarray:
    """Keep the 8-connected components holding at least ``min_share`` of the largest's pixels."""
    components, count = ndimage.label(mask, structure=_EIGHT)
    if count <= 1:
        return np.asarray(mask, bool)
    sizes = np.bincount(components.ravel())[1:]
    keep = np.flatnonzero(sizes >= min_share * sizes.max()) + 1
    return np.isin(components, keep)


def largest_share(mask: np.ndarray) -> float:
    """Share of a non-empty mask's pixels in its largest 8-connected component."""
    components, count = ndimage.label(mask, structure=_EIGHT)
    sizes = np.bincount(components.ravel())[1:]
    return float(sizes.max() / sizes.sum()) if count else 0.0


def row_extents(mask: np.ndarray) -> np.ndarray:
    """Per row, the pixels from the leftmost to the rightmost foreground pixel inclusive (0 if
    none): the row's horizontal extent in pixel widths."""
    has = mask.any(axis=1)
    first = np.argmax(mask, axis=1)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    return np.where(has, last - first + 1, 0)


def centroid_mm(mask: np.ndarray, spacing: float) -> tuple[float, float]:
    """(row, column) of the foreground's centroid in mm from the top-left image corner."""
    rows, cols = np.nonzero(mask)
    return (float(rows.mean()) + 0.5) * spacing, (float(cols.mean()) + 0.5) * spacing


def turning_angle_deg(a: np.ndarray, m: np.ndarray, b: np.ndarray) -> float:
    """Angle (degrees, 0..180) between the directions a -> m and m -> b."""
    u, v = m - a, b - m
    cos = float(u @ v) / (float(np.linalg.norm(u)) * float(np.linalg.norm(v)))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


# ---------------------------------------------------------------------------------------------
# The three measurements: each returns (value, details) or raises Excluded
# ---------------------------------------------------------------------------------------------


def cardiothoracic_ratio(
    masks: _Masks, labels: MeasurementLabels, spacing: float
) -> tuple[float, dict[str, float | str]]:
    """Widest cardiac extent / widest lung span over the rib cage's rows (PA)."""
    spacing = _spacing_mm(spacing, "PA")
    heart = masks.get("PA", labels.heart, "heart")
    share = largest_share(heart)
    if share < MIN_HEART_SHARE:
        raise Excluded(f"cardiac silhouette fragmented (largest part {share:.0%} of the mask)")
    right = masks.get("PA", labels.right_lung, "right lung")
    left = masks.get("PA", labels.left_lung, "left lung")
    ribs = masks.get("PA", labels.rib, "rib")
    rib_rows = np.flatnonzero(ribs.any(axis=1))
    thorax = np.zeros_like(right)
    thorax[rib_rows[0] : rib_rows[-1] + 1] = (right | left)[rib_rows[0] : rib_rows[-1] + 1]
    thoracic_px, cardiac_px = row_extents(thorax), row_extents(heart)
    if thoracic_px.max() == 0:
        raise Excluded("the lungs do not reach the rows of the rib cage")
    cardiac_mm = float(cardiac_px.max()) * spacing
    thoracic_mm = float(thoracic_px.max()) * spacing
    details = {
        "cardiac_width_mm": cardiac_mm,
        "thoracic_width_mm": thoracic_mm,
        "cardiac_row": int(np.argmax(cardiac_px)),
        "thoracic_row": int(np.argmax(thoracic_px)),
    }
    return cardiac_mm / thoracic_mm, details


def vertebral_centroids(
    masks: _Masks, labels: MeasurementLabels, view: str, spacing: float
) -> tuple[np.ndarray, list[int]]:
    """Centroids (mm, rows then columns) of the longest run of consecutive thoracic vertebrae
    present in ``view``, superior first, and their levels (1..12); Excluded if too short."""
    found = [masks.maybe(view, index) for index in labels.thoracic_vertebrae]
    run: list[int] = []
    best: list[int] = []
    for level, vertebra in enumerate(found, start=1):
        run = [*run, level] if vertebra is not None else []
        best = run if len(run) > len(best) else best
    if len(best) < MIN_VERTEBRAE:
        raise Excluded(
            f"only {len(best)} contiguous thoracic vertebrae on {view} (need {MIN_VERTEBRAE})"
        )
    points = np.array([centroid_mm(found[level - 1], spacing) for level in best])
    return points, best


def spinal_curvature(
    masks: _Masks, labels: MeasurementLabels, spacing: float
) -> tuple[float, dict[str, float | str]]:
    """Signed SCD (degrees, positive convex to the patient's right) from PA centroids."""
    spacing = _spacing_mm(spacing, "PA")
    points, levels = vertebral_centroids(masks, labels, "PA", spacing)
    top, bottom = points[0], points[-1]
    chord = bottom - top
    if not np.linalg.norm(chord) > 0:
        raise Excluded("the end vertebrae of the spine coincide on PA")
    # signed distance of each centroid from the chord, > 0 toward the image's left (lower
    # columns), which on PA is the patient's right
    rel = points - top
    side = (chord[1] * rel[:, 0] - chord[0] * rel[:, 1]) / float(np.linalg.norm(chord))
    apex = int(np.argmax(np.abs(side[1:-1]))) + 1
    angle = turning_angle_deg(top, points[apex], bottom)
    details = {
        "apex_level": f"T{levels[apex]}",
        "levels": f"T{levels[0]}-T{levels[-1]}",
        "apex_offset_mm": round(float(side[apex]), 3),
    }
    return math.copysign(angle, side[apex]) if angle else 0.0, details


def kyphosis(
    masks: _Masks, labels: MeasurementLabels, spacing: float
) -> tuple[float, dict[str, float | str]]:
    """Signed Cobb-style angle (degrees, positive convex posteriorly) from LL centroids."""
    spacing = _spacing_mm(spacing, "LL")
    points, levels = vertebral_centroids(masks, labels, "LL", spacing)
    down, posterior = points[:, 0], points[:, 1]  # LL: anterior is on the viewer's left
    steps = np.hypot(np.diff(down), np.diff(posterior))
    if not np.all(steps > 0):
        raise Excluded("consecutive vertebral centroids coincide on LL")
    arc = np.concatenate([[0.0], np.cumsum(steps)]) / steps.sum()  # normalised arc position
    degree = min(3, len(points) - 1)
    fit_down, fit_post = np.polyfit(arc, down, degree), np.polyfit(arc, posterior, degree)
    # the end plates lie half a vertebral step beyond the first and last centroids
    upper, lower = -steps[0] / 2 / steps.sum(), 1 + steps[-1] / 2 / steps.sum()

    def direction(s: float) -> float:
        """Tangent angle from the downward axis, positive toward posterior."""
        d_down = np.polyval(np.polyder(fit_down), s)
        d_post = np.polyval(np.polyder(fit_post), s)
        return math.atan2(d_post, d_down)

    angle = math.degrees(direction(upper) - direction(lower))
    return angle, {"levels": f"T{levels[0]}-T{levels[-1]}"}


_MEASURE = {
    "cardiothoracic_ratio": cardiothoracic_ratio,
    "spinal_curvature_deg": spinal_curvature,
    "kyphosis_deg": kyphosis,
}
