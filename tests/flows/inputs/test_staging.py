"""Staging a study's masks and deriving missing classes as unions (flows/inputs/staging.py)."""

import tracemalloc

import numpy as np
import pytest

from catalog.taxonomy import load_taxonomy
from flows.inputs.staging import StagedMask, emit, plan_derivation, stage
from flows.maths.boxes import BoxMask, box_mask

TAXONOMY = load_taxonomy()
SHAPE = (40, 30, 20)


def _box(box: tuple[slice, ...], shape=SHAPE) -> BoxMask:
    dense = np.zeros(shape, bool)
    dense[box] = True
    return box_mask(dense)


def test_staged_masks_round_trip_exactly():
    rng = np.random.default_rng(0)
    dense = rng.random((17, 9, 31)) > 0.7
    for mask in (box_mask(dense), BoxMask((0, 0, 0), np.zeros((0, 0, 0), bool))):
        back = StagedMask.pack(mask).unpack()
        assert back.origin == mask.origin and np.array_equal(back.data, mask.data)


def test_stage_refuses_duplicates_outside_voxels_and_unknown_classes():
    heart = _box(np.s_[1:4, 1:4, 1:4])
    with pytest.raises(ValueError, match="'heart' was given twice"):
        stage([("heart", heart), ("heart", heart)], SHAPE, TAXONOMY)
    with pytest.raises(ValueError, match="reaches outside"):
        stage([("heart", BoxMask((38, 0, 0), np.ones((4, 1, 1), bool)))], SHAPE, TAXONOMY)
    with pytest.raises(KeyError, match="'hearts' is not one of the 210 classes"):
        stage([("hearts", heart)], SHAPE, TAXONOMY)


def test_parents_are_derived_from_the_members_present():
    plan = plan_derivation(["left lung upper lobe", "left lung lower lobe", "left rib 7"], TAXONOMY)
    assert set(plan.derived) == {
        "left lung",
        "lung",
        "lung upper lobe",
        "lung lower lobe",
        "left rib",
        "rib 7",
        "rib",
        "bone",
    }
    assert "left lung" not in plan.partial  # both its members were given
    assert plan.partial["lung"] == ("right lung",)
    assert "right rib 7" in plan.partial["rib 7"]
    # partial gaps propagate: "rib" lacks the right ribs and "left rib" lacks left ribs 1-6, 8-12
    assert {"right rib", "left rib 1"} <= set(plan.partial["rib"])
    assert "heart" not in plan.derived  # no member of heart is present: absent, not empty


def test_a_given_class_is_never_replaced_by_a_union():
    plan = plan_derivation(["lung", "left lung upper lobe"], TAXONOMY)
    assert "lung" not in plan.derived and "left lung" in plan.derived


def test_unions_equal_the_dense_or_and_emit_every_class_once():
    boxes = {
        "left lung upper lobe": _box(np.s_[2:10, 3:9, 10:18]),
        "left lung lower lobe": _box(np.s_[2:12, 3:15, 2:10]),
        "right lung upper lobe": _box(np.s_[25:35, 5:12, 11:19]),
        "right lung middle lobe": BoxMask((0, 0, 0), np.zeros((0, 0, 0), bool)),
    }
    staged = stage(boxes.items(), SHAPE, TAXONOMY)
    plan = plan_derivation(staged, TAXONOMY)
    emitted = [(name, mask) for name, mask, _ in emit(staged, plan, TAXONOMY)]
    names = [name for name, _ in emitted]
    assert len(names) == len(set(names)) == len(boxes) + len(plan.derived)
    order = TAXONOMY.union_order()
    assert names == sorted(names, key=order.index)
    result = {name: mask.to_dense(SHAPE) for name, mask in emitted}
    dense = {name: mask.to_dense(SHAPE) for name, mask in boxes.items()}
    assert np.array_equal(
        result["left lung"], dense["left lung upper lobe"] | dense["left lung lower lobe"]
    )
    assert np.array_equal(result["right lung"], dense["right lung upper lobe"])
    assert np.array_equal(result["lung"], result["left lung"] | result["right lung"])
    assert np.array_equal(result["right lung middle lobe"], np.zeros(SHAPE, bool))
    for name, mask in emitted:  # tight boxes, as the sources store expects
        if mask.data.size:
            assert all(
                mask.data.any(axis=tuple(a for a in range(3) if a != k))[[0, -1]].all()
                for k in range(3)
            ), name


def test_a_class_is_composed_exactly_when_it_equals_the_union_of_its_members():
    upper, lower = _box(np.s_[2:10, 3:9, 10:18]), _box(np.s_[2:12, 3:15, 2:10])
    union = np.zeros(SHAPE, bool)
    union[upper.slices] |= upper.data
    union[lower.slices] |= lower.data
    exact = {"left lung upper lobe": upper, "left lung lower lobe": lower}
    exact["left lung"] = box_mask(union)
    wider = dict(
        exact, **{"left lung": box_mask(union | _box(np.s_[20:22, 3:5, 2:4]).to_dense(SHAPE))}
    )
    for given, expected in ((exact, True), (wider, False)):
        staged = stage(given.items(), SHAPE, TAXONOMY)
        flags = {
            name: flag
            for name, _, flag in emit(staged, plan_derivation(staged, TAXONOMY), TAXONOMY)
        }
        assert flags["left lung"] is expected  # given: checked voxel for voxel
        assert flags["left lung upper lobe"] is False  # not a union class
        assert flags["lung"] is True  # derived: a union by construction


def test_staging_holds_one_dense_mask_at_a_time():
    """60 dense masks of 1 MB each never coexist: the staged set is a small fraction of that."""
    shape = (128, 96, 80)

    def masks():
        for i, name in enumerate(TAXONOMY.names[:60]):
            dense = np.zeros(shape, bool)
            dense[i : 60 + i, 10:90, 5 + i % 10 : 70] = True
            yield name, box_mask(dense)

    one_dense = int(np.prod(shape))
    tracemalloc.start()
    staged = stage(masks(), shape, TAXONOMY)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(staged) == 60
    assert peak < 6 * one_dense, (
        f"peak {peak / 1e6:.1f} MB for 60 masks of {one_dense / 1e6:.1f} MB"
    )
    assert sum(len(s.payload) for s in staged.values()) < one_dense
