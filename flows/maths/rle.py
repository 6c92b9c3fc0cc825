"""Run-length codes of 2D masks, exactly as the formats' own tools write and read them.

COCO (``pycocotools.mask``): runs over the column-major flattened mask, starting with a run of
background (possibly 0); the compressed string stores each count, minus the count two places
earlier from the fourth on, as 5-bit groups (bit 6 = more groups follow, bit 5 of the last group
= sign) offset by 48. ``coco_encode`` gives the same ``counts`` bytes as ``mask.encode``.

CheXmask: space-separated ``start length`` pairs of foreground runs over the row-major
flattened mask, with 1-based starts; an empty mask is the empty string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_GROUP_BITS = 5
_MAX_GROUPS = 13  # enough for any signed 64-bit count


def runs(flat: np.ndarray) -> np.ndarray:
    """Alternating run lengths of a flat bool array, the first a run of False (maybe 0)."""
    flat = np.asarray(flat, bool)
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    lengths = np.diff(np.concatenate([[0], edges, [flat.size]]))
    if flat.size and flat[0]:
        lengths = np.concatenate([[0], lengths])
    return lengths.astype(np.int64)


def coco_counts(mask: np.ndarray) -> np.ndarray:
    """The uncompressed COCO RLE counts of a (height, width) mask."""
    return runs(np.asarray(mask, bool).ravel(order="F"))


def counts_to_string(counts: Sequence[int] | np.ndarray) -> str:
    """pycocotools' compressed form of RLE counts (``rleToString``), vectorised."""
    values = np.asarray(counts, np.int64).copy()
    if values.size > 3:
        values[3:] -= np.asarray(counts, np.int64)[1:-2]
    groups = np.zeros((values.size, _MAX_GROUPS), np.int64)
    length = np.zeros(values.size, np.int64)
    rest = values.copy()
    open_ = np.ones(values.size, bool)  # still emitting groups
    for k in range(_MAX_GROUPS):
        group = rest & 0x1F
        rest = rest >> _GROUP_BITS
        more = np.where(group & 0x10, rest != -1, rest != 0)
        groups[:, k] = np.where(more, group | 0x20, group) + 48
        length += open_
        open_ &= more
        if not open_.any():
            break
    keep = np.arange(_MAX_GROUPS)[None, :] < length[:, None]
    return groups[keep].astype(np.uint8).tobytes().decode("ascii")


def string_to_counts(text: str | bytes) -> np.ndarray:
    """The RLE counts of pycocotools' compressed string (``rleFrString``)."""
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    position = 0
    while position < len(data):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(data):
                raise ValueError("the RLE string ends inside a count")
            group = data[position] - 48
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position += 1
            shift += _GROUP_BITS
            if not more and group & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return np.asarray(counts, np.int64)


def coco_encode(mask: np.ndarray) -> dict[str, Any]:
    """``pycocotools.mask.encode`` of one mask, with ``counts`` as a str (JSON-ready)."""
    height, width = mask.shape
    return {"size": [int(height), int(width)], "counts": counts_to_string(coco_counts(mask))}


def coco_decode(rle: Mapping[str, Any]) -> np.ndarray:
    """The (height, width) bool mask of a COCO RLE (compressed string or list of counts)."""
    height, width = (int(n) for n in rle["size"])
    raw = rle["counts"]
    counts = string_to_counts(raw) if isinstance(raw, str | bytes) else np.asarray(raw, np.int64)
    if (counts < 0).any() or counts.sum() != height * width:
        raise ValueError(f"the RLE counts do not cover a {width} x {height} mask")
    flat = np.repeat(np.arange(counts.size) % 2 == 1, counts)
    return flat.reshape((width, height)).T


def coco_area(counts: np.ndarray) -> int:
    """Foreground pixels of COCO RLE counts (``mask.area``)."""
    return int(np.asarray(counts)[1::2].sum())


def bbox(mask: np.ndarray) -> list[float]:
    """``[x, y, width, height]`` of the foreground, as ``mask.toBbox`` gives it (zeros if empty)."""
    columns, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if columns.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = int(columns[0]), int(rows[0])
    return [float(x0), float(y0), float(columns[-1] - x0 + 1), float(rows[-1] - y0 + 1)]


def chexmask_encode(mask: np.ndarray) -> str:
    """CheXmask's run-length code of a mask: 1-based ``start length`` pairs, row-major."""
    lengths = runs(np.asarray(mask, bool).ravel(order="C"))
    starts = np.cumsum(lengths)[:-1][0::2] + 1  # each foreground run begins after a background
    pairs = np.stack([starts, lengths[1::2]], axis=1)
    return " ".join(str(int(n)) for n in pairs.ravel())


def chexmask_decode(code: str, height: int, width: int) -> np.ndarray:
    """A mask from CheXmask's code, as its ``get_mask_from_RLE`` reads it."""
    numbers = np.asarray([int(n) for n in code.split()], np.int64)
    if numbers.size % 2:
        raise ValueError("a CheXmask run-length code has an odd number of values")
    flat = np.zeros(height * width, bool)
    for start, length in zip(numbers[0::2], numbers[1::2], strict=True):
        flat[start - 1 : start - 1 + length] = True
    return flat.reshape(height, width)
