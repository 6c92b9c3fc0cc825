"""nnU-Net v2, region-based: overlapping classes without loss, as ``nnUNetv2_plan_and_preprocess``
and ``NaturalImage2DIO`` read them.

``Dataset<ID>_<Name>/`` holds ``imagesTr``/``labelsTr`` (the ``train`` split) and
``imagesTs``/``labelsTs`` (the others): ``<case>_0000.png`` 8-bit radiographs and ``<case>.png``
uint16 label maps, ``<case>`` = ``<study>_<view>``. Every distinct set of classes that covers a
pixel anywhere in the export is an atom (``flows.maths.atoms``); ``dataset.json`` lists each
class as the region of its atom ids, so a class mask is ``isin(label_map, region)``. The ``rga``
key keeps the atoms, each case's study, view, split, pixel spacing and unavailable classes (nnU-Net
has no per-class ignore: a loss that wants it must read them from here).

Read back for ``rga evaluate``: a folder of ``nnUNetv2_predict`` output with the export's
``dataset.json`` (which nnU-Net copies there): ``<case>.png`` label maps, or the
``<case>.npz`` region probabilities of ``--save_probabilities`` (a region is predicted where its
probability is at least 0.5, nnU-Net's own threshold); or an exported dataset folder itself
(its ``labelsTr`` and ``labelsTs``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flows.formats.study import Selection, StudyPixels, case_name
from flows.maths.atoms import Atom, atoms_of, class_masks, label_map, regions
from storage.exports import ExportFolder, json_bytes, npz_arrays, png_bytes, png_pixels

DATASET_JSON = "dataset.json"
DESCRIPTION = "RadGenome-Anatomy masks projected from CT; each class is a region of atoms"
TRAIN_SPLIT = "train"
CHANNEL = "_0000"
REGION_THRESHOLD = 0.5
LABEL_FOLDERS = ("labelsTr", "labelsTs")  # an exported dataset read back as its own prediction
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def dataset_folder(dataset_id: int, name: str) -> str:
    """``Dataset<ID>_<Name>``; ids 1..999 and names of letters, digits and hyphens."""
    if not 0 < dataset_id < 1000:
        raise ValueError(f"an nnU-Net dataset id is 1..999, not {dataset_id}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"an nnU-Net dataset name is letters, digits and hyphens, not {name!r}")
    return f"Dataset{dataset_id:03d}_{name}"


def study_atoms(pixels: StudyPixels) -> set[Atom]:
    """The atoms of one study's available masks (first pass of the export)."""
    return atoms_of(pixels.masks & pixels.available[None, :, None, None])


def _part(split: str) -> str:
    return "Tr" if split == TRAIN_SPLIT else "Ts"


def write_study(
    folder: ExportFolder,
    pixels: StudyPixels,
    selection: Selection,
    numbers: Mapping[Atom, int],
) -> list[dict[str, Any]]:
    """Write the study's images and label maps; return its cases."""
    part = _part(pixels.split)
    known = pixels.masks & pixels.available[None, :, None, None]
    cases = []
    for v, view in enumerate(selection.views):
        case = case_name(pixels.study, view)
        folder.write(f"images{part}/{case}{CHANNEL}.png", png_bytes(pixels.images[v]))
        folder.write(f"labels{part}/{case}.png", png_bytes(label_map(known[v], dict(numbers))))
        cases.append(
            {
                "case": case,
                "study": pixels.study,
                "view": view,
                "split": pixels.split,
                "pixel_spacing": pixels.pixel_spacing[v],
                "unavailable": pixels.unavailable(selection),
            }
        )
    return cases


class DatasetJson:
    """``dataset.json``, written when the last study is in (its cases are small)."""

    def __init__(self, folder: ExportFolder, selection: Selection, numbers: Mapping[Atom, int]):
        self.folder, self.selection, self.numbers = folder, selection, numbers
        self.cases: list[dict[str, Any]] = []

    def add(self, records: list[dict[str, Any]]) -> None:
        """Append one study's cases."""
        self.cases += records

    def close(self) -> None:
        """Write the file, keys in the order nnU-Net's own examples use."""
        selection, numbers = self.selection, self.numbers
        class_regions = regions(dict(numbers), len(selection.labels))
        labels: dict[str, Any] = {"background": 0}
        labels.update(zip(selection.labels, class_regions, strict=True))
        cases = [dict(case) for case in self.cases]
        document = {
            "channel_names": {"0": "radiograph"},
            "labels": labels,
            "regions_class_order": [_written_value(region, numbers) for region in class_regions],
            "numTraining": sum(case["split"] == TRAIN_SPLIT for case in cases),
            "file_ending": ".png",
            "overwrite_image_reader_writer": "NaturalImage2DIO",
            "name": self.folder.url.rstrip("/").rsplit("/", 1)[-1],
            "description": DESCRIPTION,
            "rga": {
                "views": list(selection.views),
                "atoms": [list(atom) for atom, _ in sorted(numbers.items(), key=lambda a: a[1])],
                "cases": {case.pop("case"): case for case in cases},
            },
        }
        self.folder.write(DATASET_JSON, json_bytes(document, indent=1))


def _written_value(region: Sequence[int], numbers: Mapping[Atom, int]) -> int:
    """What nnU-Net writes where a region is predicted: its single-class atom if it has one
    (else its first atom; 0 for a class that never occurs)."""
    singles = {number for atom, number in numbers.items() if len(atom) == 1}
    own = [n for n in region if n in singles]
    return own[0] if own else (region[0] if region else 0)


def is_prediction_folder(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``url`` is a folder holding a ``dataset.json`` (nnU-Net predictions)."""
    return DATASET_JSON in ExportFolder(url, dict(storage_options or {})).files()


def open_nnunet(url: str, storage_options: Mapping[str, Any] | None = None) -> NnunetIndex:
    """A folder of nnU-Net predictions with its ``dataset.json``; malformed files raise."""
    folder = ExportFolder(url, dict(storage_options or {}))
    where = folder.file_url(DATASET_JSON)
    try:
        document = json.loads(folder.read_file(DATASET_JSON))
        labels = dict(document["labels"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{where} is not an nnU-Net dataset.json ({error})") from None
    class_regions = {}
    for name, value in labels.items():
        if name == "background":
            continue
        ids = value if isinstance(value, list) else [value]
        if not all(isinstance(i, int) for i in ids):
            raise ValueError(f"{where}: class {name!r} has a region that is not integer ids")
        class_regions[name] = tuple(ids)
    known = document.get("rga", {}).get("cases", {})
    files: dict[tuple[str, str], str] = {}
    for name in folder.files():
        parent, _, file_name = name.rpartition("/")
        if parent not in ("", *LABEL_FOLDERS) or not file_name.endswith((".png", ".npz")):
            continue
        case, suffix = file_name.rsplit(".", 1)
        if case in known:
            key = (str(known[case]["study"]), str(known[case]["view"]))
        elif "_" in case:
            key = tuple(case.rsplit("_", 1))  # type: ignore[assignment]
        else:
            raise ValueError(f"{folder.file_url(name)}: {case!r} is not <study>_<view>")
        if suffix == "png" or key not in files:  # label maps win over probabilities
            files[key] = name
    return NnunetIndex(folder, where, class_regions, files)


@dataclass(frozen=True)
class NnunetIndex:
    """Each predicted (study, view)'s file and each class's region."""

    folder: ExportFolder
    dataset_json: str
    class_regions: dict[str, tuple[int, ...]]
    files: dict[tuple[str, str], str]

    @property
    def url(self) -> str:
        return self.folder.url

    def exists(self) -> bool:
        """True: the predictions were read when they were opened."""
        return True

    def studies(self) -> list[str]:
        """The studies with at least one predicted view, sorted."""
        return sorted({study for study, _ in self.files})

    def reader(
        self, study: str, views: Sequence[str], labels: Sequence[str], shape: tuple[int, int]
    ) -> Callable[[], np.ndarray]:
        """A reader of the study's masks (view, label, y, x)."""
        unknown = [name for name in self.class_regions if name not in labels]
        if unknown:
            raise ValueError(
                f"{self.dataset_json}: class {unknown[0]!r} is no class of the dataset"
            )
        files = [self.files.get((study, view)) for view in views]
        return functools.partial(
            _study_masks, self.folder, files, self.class_regions, labels, shape
        )


def _study_masks(
    folder: ExportFolder,
    files: Sequence[str | None],
    class_regions: Mapping[str, tuple[int, ...]],
    labels: Sequence[str],
    shape: tuple[int, int],
) -> np.ndarray:
    out = np.zeros((len(files), len(labels), *shape), bool)
    order = list(class_regions)  # nnU-Net's region channels, in dataset.json order
    for v, name in enumerate(files):
        if name is None:
            continue
        where = folder.file_url(name)
        if name.endswith(".png"):
            pixels = png_pixels(folder.read_file(name), where)
            _check_shape(pixels.shape, shape, where)
            positions = [labels.index(label) for label in class_regions]
            out[v, positions] = class_masks(pixels, list(class_regions.values()))
        else:
            probabilities = npz_arrays(folder.read_file(name), where).get("probabilities")
            if probabilities is None:
                raise ValueError(f"{where} holds no 'probabilities' array")
            if probabilities.ndim == 4 and probabilities.shape[1] == 1:  # 2D: (C, 1, y, x)
                probabilities = probabilities[:, 0]
            if probabilities.ndim != 3:
                raise ValueError(
                    f"{where}: probabilities of shape {probabilities.shape} are not 2D"
                )
            if probabilities.shape[0] != len(order):
                raise ValueError(
                    f"{where} has {probabilities.shape[0]} region channels; dataset.json lists "
                    f"{len(order)} classes"
                )
            _check_shape(probabilities.shape[1:], shape, where)
            for channel, label in enumerate(order):
                out[v, labels.index(label)] = probabilities[channel] >= REGION_THRESHOLD
    return out


def _check_shape(found: tuple[int, ...], shape: tuple[int, int], where: str) -> None:
    if tuple(found) != tuple(shape):
        size = "x".join(str(n) for n in reversed(found))
        raise ValueError(f"{where} is {size} pixels, the dataset's masks are {shape[1]}x{shape[0]}")
