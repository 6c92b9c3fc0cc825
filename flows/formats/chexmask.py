"""CheXmask: one CSV row per study and view, one run-length code per class.

Columns ``study``, ``view``, ``split``, ``Height``, ``Width``, ``pixel_spacing``, one column per
class (CheXmask's code: 1-based ``start length`` pairs over the row-major flattened mask; the
empty string for an empty mask) and ``unavailable`` (the names of the classes the input did not
provide, joined by ``|``: their columns are empty because they are unknown, not empty). Decode a
cell with CheXmask's ``get_mask_from_RLE(rle, Height, Width)`` or ``flows.maths.rle``.
"""

from __future__ import annotations

from flows.formats.index import CsvIndex
from flows.formats.study import Selection, StudyPixels
from flows.maths.rle import chexmask_encode
from storage.exports import ExportFolder

TABLE = "masks.csv"
UNAVAILABLE_SEPARATOR = "|"


def index(folder: ExportFolder, selection: Selection) -> CsvIndex:
    """``masks.csv``, written a study at a time."""
    fixed = ["study", "view", "split", "Height", "Width", "pixel_spacing"]
    return CsvIndex(folder, TABLE, [*fixed, *selection.labels, "unavailable"])


def write_study(folder: ExportFolder, pixels: StudyPixels, selection: Selection) -> list[list[str]]:
    """The study's rows (one per view); the client writes the table."""
    unavailable = UNAVAILABLE_SEPARATOR.join(pixels.unavailable(selection))
    rows = []
    for v, view in enumerate(selection.views):
        codes = [
            chexmask_encode(pixels.masks[v, i]) if given else ""
            for i, given in enumerate(pixels.available)
        ]
        size = [str(selection.height), str(selection.width), repr(pixels.pixel_spacing[v])]
        rows.append([pixels.study, view, pixels.split, *size, *codes, unavailable])
    return rows
