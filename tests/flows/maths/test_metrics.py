"""Segmentation metrics (flows/maths/metrics.py): hand-computed cases, empty cases, a reference."""

import math
from collections import deque

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from flows.maths.metrics import (
    METRICS,
    MetricOptions,
    asd,
    boundary,
    detection,
    dice,
    hd95,
    image_diagonal_mm,
    iou,
    nsd,
    pair_metrics,
    surface_distances,
)

NAN = float("nan")


def _square(shape, top, left, size):
    mask = np.zeros(shape, bool)
    mask[top : top + size, left : left + size] = True
    return mask


def _values(result):
    return dict(zip(METRICS, result.values, strict=True))


# --- overlap -------------------------------------------------------------------------------


def test_dice_and_iou_of_two_overlapping_squares():
    gt = _square((10, 10), 2, 2, 3)  # 9 pixels
    pred = _square((10, 10), 3, 3, 3)  # 9 pixels, 4 shared
    assert dice(gt, pred) == pytest.approx(8 / 18)
    assert iou(gt, pred) == pytest.approx(4 / 14)
    assert dice(gt, gt) == 1.0 and iou(gt, gt) == 1.0
    assert dice(gt, ~gt) == 0.0


def test_dice_and_iou_are_undefined_when_both_masks_are_empty():
    empty = np.zeros((5, 5), bool)
    assert math.isnan(dice(empty, empty)) and math.isnan(iou(empty, empty))
    assert dice(empty, _square((5, 5), 0, 0, 2)) == 0.0


# --- boundary ------------------------------------------------------------------------------


def test_boundary_is_the_mask_minus_its_4_neighbour_erosion():
    square = _square((9, 9), 2, 2, 5)
    edge = boundary(square)
    assert edge.sum() == 16  # the 5 x 5 ring; the 3 x 3 inside has all 4 neighbours
    assert not edge[3:6, 3:6].any()
    # a plus sign: only the centre has all four 4-neighbours in the mask
    plus = np.zeros((5, 5), bool)
    plus[2, 1:4] = plus[1:4, 2] = True
    assert boundary(plus).sum() == 4 and not boundary(plus)[2, 2]
    single = _square((5, 5), 2, 2, 1)
    assert np.array_equal(boundary(single), single)


def test_outside_the_image_is_background_so_edges_are_boundary():
    full = np.ones((4, 4), bool)
    edge = boundary(full)
    assert edge.sum() == 12 and not edge[1:3, 1:3].any()


# --- distances -----------------------------------------------------------------------------


def test_two_points_three_pixels_apart_in_mm():
    gt = _square((6, 8), 2, 2, 1)
    pred = _square((6, 8), 2, 5, 1)
    forward, backward = surface_distances(gt, pred, (2.0, 0.5))
    assert forward.tolist() == [1.5] and backward.tolist() == [1.5]  # 3 columns x 0.5 mm
    values = _values(pair_metrics(gt, pred, (2.0, 0.5), MetricOptions(tolerance_mm=1.0)))
    assert values["hd95"] == 1.5 and values["asd"] == 1.5 and values["nsd"] == 0.0
    values = _values(pair_metrics(gt, pred, (2.0, 0.5), MetricOptions(tolerance_mm=1.5)))
    assert values["nsd"] == 1.0  # within means <= tolerance


def test_square_shifted_by_one_column():
    # Each boundary has 8 pixels; by hand, 4 of each lie on the other boundary (distance 0)
    # and 4 are one pixel away.
    gt = _square((8, 8), 2, 2, 3)
    pred = _square((8, 8), 2, 3, 3)
    forward, backward = surface_distances(gt, pred, 1.0)
    assert sorted(forward) == [0, 0, 0, 0, 1, 1, 1, 1] == sorted(backward)
    values = _values(pair_metrics(gt, pred, 1.0, MetricOptions(tolerance_mm=0.5)))
    assert values["dice"] == pytest.approx(12 / 18) and values["iou"] == pytest.approx(0.5)
    assert values["hd95"] == 1.0 and values["asd"] == 0.5 and values["nsd"] == 0.5
    assert values["det_precision"] == values["det_recall"] == values["det_f1"] == 1.0


def test_hd95_and_asd_definitions_on_an_asymmetric_pair():
    # GT: a 5 x 5 square (16 boundary pixels); prediction: its centre pixel.
    # GT -> pred: 4 edge middles at 2, 8 at sqrt(5), 4 corners at sqrt(8); pred -> GT: 2.
    gt = _square((9, 9), 2, 2, 5)
    pred = _square((9, 9), 4, 4, 1)
    forward, backward = surface_distances(gt, pred, 1.0)
    assert sorted(forward) == pytest.approx([2] * 4 + [math.sqrt(5)] * 8 + [math.sqrt(8)] * 4)
    assert backward.tolist() == [2.0]
    pooled_sum = 4 * 2 + 8 * math.sqrt(5) + 4 * math.sqrt(8) + 2
    # max of directed 95th percentiles, not the 95th percentile of pooled distances
    assert hd95(forward, backward) == pytest.approx(math.sqrt(8))
    # mean of pooled distances (17 of them), not the mean of the two directed means
    assert asd(forward, backward) == pytest.approx(pooled_sum / 17)
    assert asd(forward, backward) != pytest.approx((forward.mean() + 2) / 2)
    assert nsd(forward, backward, 2.0) == pytest.approx(5 / 17)
    assert nsd(forward, backward, 2.5) == pytest.approx(13 / 17)
    values = _values(pair_metrics(gt, pred, 1.0))
    assert values["dice"] == pytest.approx(2 / 26) and values["iou"] == pytest.approx(1 / 25)


def test_hd95_interpolates_linearly_between_order_statistics():
    forward = np.arange(21, dtype=float)  # 95th percentile of 0..20 is exactly 19
    backward = np.array([0.0, 10.0])  # 95th percentile: 0 + 0.95 * 10 = 9.5
    assert hd95(forward, backward) == 19.0
    assert hd95(backward, np.array([1.0])) == pytest.approx(9.5)


# --- components ----------------------------------------------------------------------------


def test_components_are_8_connected():
    diagonal = np.eye(4, dtype=bool)
    found = detection(diagonal, diagonal)
    assert found.gt_components == 1 and found.pred_components == 1


def test_detection_counts_matched_components_on_each_side():
    gt = _square((12, 12), 1, 1, 3) | _square((12, 12), 7, 7, 3)  # two components
    pred = _square((12, 12), 2, 2, 3) | _square((12, 12), 1, 8, 2)  # one hit, one false
    found = detection(gt, pred)
    assert (found.gt_components, found.pred_components) == (2, 2)
    assert (found.gt_detected, found.pred_matched) == (1, 1)
    assert found.precision == 0.5 and found.recall == 0.5 and found.f1 == 0.5


def test_one_prediction_bridging_two_gt_components_detects_both():
    gt = _square((6, 12), 1, 1, 3) | _square((6, 12), 1, 7, 3)
    pred = np.zeros((6, 12), bool)
    pred[2, 1:10] = True
    found = detection(gt, pred)
    assert (found.gt_detected, found.pred_matched) == (2, 1)
    assert found.recall == 1.0 and found.precision == 1.0


def test_match_iou_threshold():
    gt = _square((9, 9), 2, 2, 5)
    pred = _square((9, 9), 4, 4, 1)  # overlap, IoU 1/25
    assert detection(gt, pred, match_iou=0.0).recall == 1.0
    strict = detection(gt, pred, match_iou=0.5)
    assert strict.recall == 0.0 and strict.precision == 0.0 and strict.f1 == 0.0
    assert detection(gt, _square((9, 9), 2, 2, 4), match_iou=0.64).recall == 1.0  # IoU 16/25


# --- empty masks ---------------------------------------------------------------------------


def test_both_empty_is_undefined_everywhere():
    empty = np.zeros((6, 6), bool)
    result = pair_metrics(empty, empty, 1.0)
    assert np.isnan(result.values).all()
    assert (result.gt_components, result.pred_components) == (0, 0)


def test_empty_prediction_of_a_present_class():
    gt = _square((10, 20), 3, 3, 4)
    result = pair_metrics(gt, np.zeros_like(gt), (0.5, 0.25))
    values = _values(result)
    diagonal = math.hypot(10 * 0.5, 20 * 0.25)
    assert values["dice"] == 0.0 and values["iou"] == 0.0 and values["nsd"] == 0.0
    assert values["hd95"] == values["asd"] == pytest.approx(diagonal)
    assert math.isnan(values["det_precision"]) and values["det_recall"] == 0.0
    assert values["det_f1"] == 0.0
    assert (result.gt_components, result.pred_components) == (1, 0)


def test_prediction_of_an_absent_class():
    pred = _square((10, 10), 1, 1, 2) | _square((10, 10), 6, 6, 2)
    result = pair_metrics(np.zeros_like(pred), pred, 1.0)
    values = _values(result)
    assert values["dice"] == 0.0 and values["hd95"] == image_diagonal_mm((10, 10), 1.0)
    assert values["det_precision"] == 0.0 and math.isnan(values["det_recall"])
    assert values["det_f1"] == 0.0
    assert (result.gt_components, result.pred_components) == (0, 2)


def test_bad_inputs_are_refused():
    mask = _square((6, 6), 1, 1, 2)
    with pytest.raises(ValueError, match="pixel spacing"):
        pair_metrics(mask, mask, float("nan"))
    with pytest.raises(ValueError, match="2D and alike"):
        pair_metrics(mask, mask[:5], 1.0)
    with pytest.raises(ValueError, match="tolerance"):
        MetricOptions(tolerance_mm=-1)
    with pytest.raises(ValueError, match="match IoU"):
        MetricOptions(match_iou=1.5)


def test_cropping_to_the_union_changes_nothing():
    rng = np.random.default_rng(3)
    gt, pred = _blobs(rng, (30, 40)), _blobs(rng, (30, 40))
    gt[0], pred[:, 0] = False, False  # away from the image edge...
    gt[-1], pred[:, -1] = False, False
    big_gt = np.zeros((80, 90), bool)
    big_pred = np.zeros((80, 90), bool)
    big_gt[20:50, 25:65], big_pred[20:50, 25:65] = gt, pred  # ...so embedding is neutral
    small, big = pair_metrics(gt, pred, 0.8), pair_metrics(big_gt, big_pred, 0.8)
    assert np.allclose(small.values, big.values, equal_nan=True)


# --- cross-check against the reference formulas on random masks ---------------------------


def _blobs(rng, shape, keep=0.55):
    noise = ndimage.gaussian_filter(rng.random(shape), sigma=float(rng.uniform(1.0, 3.0)))
    return noise > np.quantile(noise, float(rng.uniform(keep, 0.95)))


def _reference_boundary(mask):
    padded = np.pad(mask, 1, constant_values=False)
    neighbours_in = (
        padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    )  # all four 4-neighbours are foreground
    return mask & ~neighbours_in


def _reference_components(mask):
    """Breadth-first flood fill with the 8-neighbourhood: a list of pixel sets."""
    seen, components = set(), []
    for start in _pixels(mask):
        if start in seen:
            continue
        queue, component = deque([start]), set()
        seen.add(start)
        while queue:
            r, c = queue.popleft()
            component.add((r, c))
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    q = (r + dr, c + dc)
                    inside = 0 <= q[0] < mask.shape[0] and 0 <= q[1] < mask.shape[1]
                    if inside and q not in seen and mask[q]:
                        seen.add(q)
                        queue.append(q)
        components.append(component)
    return components


def _pixels(mask):
    return {tuple(p) for p in np.argwhere(mask)}


def _reference(gt, pred, spacing, tolerance, match_iou):
    """The MONAI-style formulas written from scratch: brute-force pairwise distances."""
    gt_set, pred_set = _pixels(gt), _pixels(pred)
    overlap, union = len(gt_set & pred_set), len(gt_set | pred_set)
    scale = np.array(spacing)
    gt_edge = np.argwhere(_reference_boundary(gt)) * scale
    pred_edge = np.argwhere(_reference_boundary(pred)) * scale
    pairwise = cdist(gt_edge, pred_edge)
    forward, backward = pairwise.min(axis=1), pairwise.min(axis=0)
    gt_parts, pred_parts = _reference_components(gt), _reference_components(pred)

    def matches(a, b):
        shared = len(a & b)
        return shared > 0 and shared / len(a | b) >= match_iou

    detected = sum(any(matches(g, p) for p in pred_parts) for g in gt_parts)
    matched = sum(any(matches(g, p) for g in gt_parts) for p in pred_parts)
    precision, recall = matched / len(pred_parts), detected / len(gt_parts)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    both = np.concatenate([forward, backward])
    return {
        "dice": 2 * overlap / (len(gt_set) + len(pred_set)),
        "iou": overlap / union,
        "hd95": max(np.percentile(forward, 95), np.percentile(backward, 95)),
        "asd": both.mean(),
        "nsd": np.count_nonzero(both <= tolerance) / both.size,
        "det_precision": precision,
        "det_recall": recall,
        "det_f1": f1,
    }


@pytest.mark.parametrize("seed", range(24))
def test_random_masks_agree_with_the_reference_formulas(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(20, 48)), int(rng.integers(20, 48)))
    gt, pred = _blobs(rng, shape), _blobs(rng, shape)
    if not (gt.any() and pred.any()):
        pytest.skip("a random mask came out empty")
    spacing = (float(rng.uniform(0.4, 1.6)), float(rng.uniform(0.4, 1.6)))
    options = MetricOptions(tolerance_mm=float(rng.uniform(0.5, 3.0)), match_iou=[0, 0.3][seed % 2])
    ours = _values(pair_metrics(gt, pred, spacing, options))
    expected = _reference(gt, pred, spacing, options.tolerance_mm, options.match_iou)
    for name in METRICS:
        assert ours[name] == pytest.approx(expected[name], rel=1e-12, abs=1e-12), name
