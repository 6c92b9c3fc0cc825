"""Segmentation metrics of one 2D mask pair (ground truth, prediction): pure numpy/scipy.

Definitions (README "Metric definitions" repeats them for users):

- Dice = 2|G & P| / (|G| + |P|); IoU = |G & P| / |G | P|.
- Boundary of a mask: its foreground pixels that have a background 4-neighbour, i.e. the mask
  minus its binary erosion by the 3 x 3 cross; outside the image counts as background, so a mask
  touching the image edge has a boundary there. (MONAI ``get_mask_edges``, medpy.)
- Surface distances: from every boundary pixel of one mask, the Euclidean distance in mm (pixel
  spacing ``(dy, dx)``) to the nearest boundary pixel of the other mask; one list per direction.
- HD95 = max of the two directed 95th percentiles (``numpy.percentile``, linear interpolation):
  MONAI ``compute_hausdorff_distance(percentile=95)``. Not the percentile of pooled distances
  (medpy ``hd95``) and not DeepMind's surfel-area weighted percentile.
- ASD = mean of the pooled distances of both directions (each boundary pixel counts once):
  MONAI ``compute_average_surface_distance(symmetric=True)``. Not the mean of the two directed
  means (medpy ``assd``).
- NSD at tolerance tau mm = (boundary pixels of G within tau of P's boundary + boundary pixels of
  P within tau of G's boundary) / (boundary pixels of G + of P): DeepMind's surface Dice
  counting boundary pixels, as MONAI ``compute_surface_dice`` does (no surfel-area weights).
- Components: 8-connected. A (GT, predicted) component pair matches when they share at least one
  pixel and their IoU >= ``match_iou`` (default 0: any overlap). Recall = GT components with a
  match / GT components; precision = predicted components with a match / predicted components;
  F1 = 2PR / (P + R) (0 when P + R = 0).

Empty masks (flagged by the component counts; the evaluator stores ``gt_empty``/``pred_empty``):

- both empty: every metric is NaN (undefined; excluded from means), as nnU-Net does;
- GT empty, prediction not: Dice = IoU = 0, NSD = 0, HD95 = ASD = the image diagonal in mm (the
  largest distance the canvas allows, as BraTS does with its volume diagonal), precision = 0,
  recall = NaN (no GT component), F1 = 0;
- prediction empty, GT not: the same with precision = NaN and recall = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from flows.codecs.plane_reader import set_bounds

METRICS: tuple[str, ...] = (
    "dice",
    "iou",
    "hd95",
    "asd",
    "nsd",
    "det_precision",
    "det_recall",
    "det_f1",
)
LOWER_IS_BETTER: frozenset[str] = frozenset({"hd95", "asd"})
_CROSS = ndimage.generate_binary_structure(2, 1)  # erosion element: 4-neighbourhood
_SQUARE = ndimage.generate_binary_structure(2, 2)  # component connectivity: 8-neighbourhood

Spacing = float | tuple[float, float]


@dataclass(frozen=True)
class MetricOptions:
    """The free parameters of the definitions above."""

    tolerance_mm: float = 2.0  # NSD tolerance tau
    match_iou: float = 0.0  # component matching: overlap and IoU >= this

    def __post_init__(self) -> None:
        if not (np.isfinite(self.tolerance_mm) and self.tolerance_mm >= 0):
            raise ValueError(f"the NSD tolerance must be >= 0 mm, not {self.tolerance_mm}")
        if not 0.0 <= self.match_iou <= 1.0:
            raise ValueError(f"the component match IoU must be in [0, 1], not {self.match_iou}")


class PairMetrics(NamedTuple):
    """All metrics of one mask pair, in ``METRICS`` order, and the component counts."""

    values: np.ndarray  # (len(METRICS),) float64
    gt_components: int
    pred_components: int


def dice(gt: np.ndarray, pred: np.ndarray) -> float:
    """Dice coefficient; NaN when both masks are empty."""
    total = int(np.count_nonzero(gt)) + int(np.count_nonzero(pred))
    if total == 0:
        return np.nan
    return 2.0 * np.count_nonzero(gt & pred) / total


def iou(gt: np.ndarray, pred: np.ndarray) -> float:
    """Intersection over union (Jaccard); NaN when both masks are empty."""
    union = int(np.count_nonzero(gt | pred))
    if union == 0:
        return np.nan
    return np.count_nonzero(gt & pred) / union


def boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels with a background 4-neighbour (outside the image is background)."""
    mask = np.asarray(mask, bool)
    return mask & ~ndimage.binary_erosion(mask, structure=_CROSS, border_value=0)


def surface_distances(
    gt: np.ndarray, pred: np.ndarray, spacing: Spacing
) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each boundary pixel of ``gt`` to ``pred``'s boundary, and back.

    Both masks must be non-empty. Work is done on the union's bounding box plus one pixel,
    which changes no distance: every boundary pixel of both masks lies inside it.
    """
    if not (np.any(gt) and np.any(pred)):
        raise ValueError("surface distances need two non-empty masks")
    window = _union_window(gt, pred)
    sampling = _sampling(spacing)
    gt_edge, pred_edge = boundary(gt[window]), boundary(pred[window])
    to_pred = ndimage.distance_transform_edt(~pred_edge, sampling=sampling)
    to_gt = ndimage.distance_transform_edt(~gt_edge, sampling=sampling)
    return to_pred[gt_edge], to_gt[pred_edge]


def hd95(gt_to_pred: np.ndarray, pred_to_gt: np.ndarray) -> float:
    """Max of the two directed 95th percentiles of surface distances (MONAI's HD95)."""
    return float(max(np.percentile(gt_to_pred, 95), np.percentile(pred_to_gt, 95)))


def asd(gt_to_pred: np.ndarray, pred_to_gt: np.ndarray) -> float:
    """Mean of the pooled surface distances of both directions (MONAI's symmetric ASD)."""
    return float(np.concatenate([gt_to_pred, pred_to_gt]).mean())


def nsd(gt_to_pred: np.ndarray, pred_to_gt: np.ndarray, tolerance_mm: float) -> float:
    """Normalised surface Dice: share of both boundaries within ``tolerance_mm`` of the other."""
    within = np.count_nonzero(gt_to_pred <= tolerance_mm)
    within += np.count_nonzero(pred_to_gt <= tolerance_mm)
    return within / (gt_to_pred.size + pred_to_gt.size)


def image_diagonal_mm(shape: tuple[int, ...], spacing: Spacing) -> float:
    """The largest distance on the image: the penalty distance when exactly one mask is empty."""
    dy, dx = _sampling(spacing)
    return float(np.hypot(shape[-2] * dy, shape[-1] * dx))


class Detection(NamedTuple):
    """Connected-component detection counts and rates of one mask pair."""

    gt_components: int
    pred_components: int
    gt_detected: int  # GT components with a matching predicted component
    pred_matched: int  # predicted components with a matching GT component
    precision: float
    recall: float
    f1: float


def detection(gt: np.ndarray, pred: np.ndarray, match_iou: float = 0.0) -> Detection:
    """Match 8-connected components of ``gt`` and ``pred`` by overlap and IoU >= ``match_iou``."""
    gt_labels, n_gt = ndimage.label(gt, structure=_SQUARE)
    pred_labels, n_pred = ndimage.label(pred, structure=_SQUARE)
    gt_hit = np.zeros(n_gt + 1, bool)
    pred_hit = np.zeros(n_pred + 1, bool)
    both = (gt_labels > 0) & (pred_labels > 0)
    if both.any():
        # Only overlapping pairs can match, so count intersections of those pairs alone.
        pair_key = gt_labels[both].astype(np.int64) * (n_pred + 1) + pred_labels[both]
        pairs, intersection = np.unique(pair_key, return_counts=True)
        g, p = np.divmod(pairs, n_pred + 1)
        gt_area = np.bincount(gt_labels.ravel(), minlength=n_gt + 1)
        pred_area = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)
        pair_iou = intersection / (gt_area[g] + pred_area[p] - intersection)
        matched = pair_iou >= match_iou
        gt_hit[g[matched]] = True
        pred_hit[p[matched]] = True
    gt_detected, pred_matched = int(gt_hit.sum()), int(pred_hit.sum())
    precision = pred_matched / n_pred if n_pred else np.nan
    recall = gt_detected / n_gt if n_gt else np.nan
    f1 = _f1(precision, recall)
    return Detection(n_gt, n_pred, gt_detected, pred_matched, precision, recall, f1)


def _f1(precision: float, recall: float) -> float:
    """Harmonic mean; 0 when exactly one side is undefined (the other mask is all wrong)."""
    if np.isnan(precision) and np.isnan(recall):
        return np.nan
    if np.isnan(precision) or np.isnan(recall) or precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def pair_metrics(
    gt: np.ndarray, pred: np.ndarray, spacing: Spacing, options: MetricOptions = MetricOptions()
) -> PairMetrics:
    """Every metric of ``METRICS`` for one mask pair, with the empty-mask policy applied."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"masks must be 2D and alike, not {gt.shape} and {pred.shape}")
    gt_any, pred_any = bool(gt.any()), bool(pred.any())
    if not (gt_any or pred_any):
        return PairMetrics(np.full(len(METRICS), np.nan), 0, 0)
    image_shape = gt.shape
    window = _union_window(gt, pred)
    gt, pred = gt[window], pred[window]  # every metric below is invariant to this crop
    if gt_any and pred_any:
        forward, backward = surface_distances(gt, pred, spacing)
        distance = [
            hd95(forward, backward),
            asd(forward, backward),
            nsd(forward, backward, options.tolerance_mm),
        ]
    else:
        worst = image_diagonal_mm(image_shape, spacing)
        distance = [worst, worst, 0.0]
    found = detection(gt, pred, options.match_iou)
    values = np.array(
        [dice(gt, pred), iou(gt, pred), *distance, found.precision, found.recall, found.f1],
        np.float64,
    )
    return PairMetrics(values, found.gt_components, found.pred_components)


def _union_window(gt: np.ndarray, pred: np.ndarray) -> tuple[slice, slice]:
    """The union's bounding box grown by one pixel (clipped to the image)."""
    bounds = set_bounds(gt | pred)
    assert bounds is not None, "callers pass at least one non-empty mask"
    r0, r1, c0, c1 = bounds
    height, width = gt.shape
    return slice(max(r0 - 1, 0), min(r1 + 1, height)), slice(max(c0 - 1, 0), min(c1 + 1, width))


def _sampling(spacing: Spacing) -> tuple[float, float]:
    """``(dy, dx)`` in mm from one number (square pixels) or a pair; rejects non-positive."""
    dy, dx = (spacing, spacing) if np.isscalar(spacing) else tuple(spacing)  # type: ignore[misc]
    if not (np.isfinite(dy) and np.isfinite(dx) and dy > 0 and dx > 0):
        raise ValueError(f"pixel spacing must be positive and finite, not {spacing}")
    return float(dy), float(dx)
