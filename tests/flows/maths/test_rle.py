"""COCO and CheXmask run-length codes, checked against the formats' own decoders."""

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from flows.maths import rle


def _chexmask_get_mask_from_rle(code: str, height: int, width: int) -> np.ndarray:
    """CheXmask's own decoder (its repository's ``get_mask_from_RLE``), verbatim in logic."""
    runs = np.array([int(x) for x in code.split()])
    starts, lengths = runs[::2], runs[1::2]
    mask = np.zeros((height * width), dtype=np.uint8)
    for start, length in zip(starts, lengths, strict=True):
        start -= 1
        mask[start : start + length] = 255
    return mask.reshape((height, width))


def _masks() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    masks = [np.zeros((5, 7), bool), np.ones((5, 7), bool), np.eye(9, dtype=bool)]
    for n in range(200):
        height, width = (int(v) for v in rng.integers(1, 70, 2))
        if n % 2:
            masks.append(rng.random((height, width)) < rng.random())
        else:
            mask = np.zeros((height, width), bool)
            y, x = rng.integers(0, height), rng.integers(0, width)
            mask[y : y + rng.integers(1, 50), x : x + rng.integers(1, 50)] = True
            masks.append(mask)
    corner = np.zeros((2000, 3000), bool)  # counts above 2**20: many 5-bit groups, deltas < 0
    corner[-1, -1] = corner[0, 0] = True
    return [*masks, corner]


@pytest.mark.parametrize("mask", _masks(), ids=lambda m: f"{m.shape[1]}x{m.shape[0]}")
def test_coco_rle_is_what_pycocotools_writes_and_reads(mask):
    theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    ours = rle.coco_encode(mask)
    assert ours == {"size": list(theirs["size"]), "counts": theirs["counts"].decode("ascii")}
    decoded = coco_mask.decode({"size": ours["size"], "counts": ours["counts"].encode()})
    assert np.array_equal(decoded.astype(bool), mask)
    assert rle.coco_area(rle.coco_counts(mask)) == int(coco_mask.area(theirs))
    assert rle.bbox(mask) == coco_mask.toBbox(theirs).tolist()
    assert np.array_equal(rle.coco_decode(ours), mask)
    uncompressed = {"size": ours["size"], "counts": rle.coco_counts(mask).tolist()}
    assert np.array_equal(rle.coco_decode(uncompressed), mask)  # the list form of results


@pytest.mark.parametrize("mask", _masks()[:60], ids=lambda m: f"{m.shape[1]}x{m.shape[0]}")
def test_chexmask_codes_decode_with_chexmask_convention(mask):
    code = rle.chexmask_encode(mask)
    assert np.array_equal(_chexmask_get_mask_from_rle(code, *mask.shape) == 255, mask)
    assert np.array_equal(rle.chexmask_decode(code, *mask.shape), mask)
    assert (code == "") == (not mask.any())


def test_chexmask_code_is_one_based_row_major():
    mask = np.zeros((3, 4), bool)
    mask[0, 0], mask[1, 1:4] = True, True
    assert rle.chexmask_encode(mask) == "1 1 6 3"


def test_malformed_codes_are_refused():
    with pytest.raises(ValueError, match="do not cover"):
        rle.coco_decode({"size": [4, 4], "counts": [3, 2]})
    with pytest.raises(ValueError, match="ends inside a count"):
        rle.string_to_counts("0o")  # 'o' = 63: a group that says more follow
    with pytest.raises(ValueError, match="odd number"):
        rle.chexmask_decode("1 2 3", 2, 2)
