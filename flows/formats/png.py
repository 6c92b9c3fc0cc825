"""PNG folders: ``images/<study>/<view>.png`` and ``masks/<study>/<view>/<label>.png``.

The layout ``rga evaluate`` reads (``masks/`` is a prediction folder: 0/255 greyscale masks,
a missing file is an empty mask, so empty masks have no file). ``studies.csv`` lists every study
and view with its split, size, pixel spacing and ``unavailable`` classes (names joined by ``|``:
unknown, not empty; their masks are not written).
"""

from __future__ import annotations

from flows.formats.index import CsvIndex
from flows.formats.study import Selection, StudyPixels
from storage.exports import ExportFolder, png_bytes
from storage.masks import PngFolder

IMAGES, MASKS, TABLE = "images", "masks", "studies.csv"
UNAVAILABLE_SEPARATOR = "|"


def index(folder: ExportFolder, selection: Selection) -> CsvIndex:
    """``studies.csv``, written a study at a time."""
    columns = ["study", "view", "split", "height", "width", "pixel_spacing", "unavailable"]
    return CsvIndex(folder, TABLE, columns)


def write_study(folder: ExportFolder, pixels: StudyPixels, selection: Selection) -> list[list[str]]:
    """Write the study's radiographs and available non-empty masks; return its table rows."""
    for v, view in enumerate(selection.views):
        folder.write(f"{IMAGES}/{pixels.study}/{view}.png", png_bytes(pixels.images[v]))
    known = pixels.masks & pixels.available[None, :, None, None]
    masks = PngFolder(folder.file_url(MASKS), folder.storage_options)
    masks.write(pixels.study, known, selection.views, selection.labels)
    unavailable = UNAVAILABLE_SEPARATOR.join(pixels.unavailable(selection))
    return [
        [
            pixels.study,
            view,
            pixels.split,
            str(selection.height),
            str(selection.width),
            repr(pixels.pixel_spacing[v]),
            unavailable,
        ]
        for v, view in enumerate(selection.views)
    ]
