"""COCO: ``annotations.json`` and the radiographs as 8-bit PNGs under ``images/``.

As pycocotools, Detectron2 and MMDetection read it: categories are the store's classes (id =
1-based position in the store's label order, ``supercategory`` the system); one image per study
and view (``file_name`` ``<study>/<view>.png`` below ``images/``); one annotation per non-empty,
available class and image with ``segmentation`` the compressed RLE of ``pycocotools.mask.encode``
(counts as a string), its ``area`` and ``bbox``, ``iscrowd`` 0. Overlapping classes are separate
annotations. Each image also carries ``study``, ``view``, ``split``, ``pixel_spacing`` and
``unavailable_category_ids``: classes its input did not provide (unknown, not empty).

Read back for ``rga evaluate``: that file (its annotations are the prediction), or a results
list (``image_id``, ``category_id``, ``segmentation``, ``score``) with the export's file naming
the images and categories; results under the score threshold are dropped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flows.formats.study import Selection, StudyPixels
from flows.maths.rle import bbox, coco_area, coco_counts, coco_decode, counts_to_string
from storage.exports import ExportFolder, json_bytes, png_bytes
from storage.files import read_text

ANNOTATIONS = "annotations.json"
IMAGES = "images"
INFO = {"description": "RadGenome-Anatomy masks projected from CT", "version": "1"}


def image_file(study: str, view: str) -> str:
    """An image's ``file_name`` (relative to ``images/``)."""
    return f"{study}/{view}.png"


def write_study(folder: ExportFolder, pixels: StudyPixels, selection: Selection) -> list[dict]:
    """Write the study's radiographs; return its image records with their annotations."""
    unavailable = [
        i for i, given in zip(selection.label_ids, pixels.available, strict=True) if not given
    ]
    records = []
    for v, view in enumerate(selection.views):
        folder.write(f"{IMAGES}/{image_file(pixels.study, view)}", png_bytes(pixels.images[v]))
        annotations = []
        for i, category in enumerate(selection.label_ids):
            mask = pixels.masks[v, i]
            if not pixels.available[i] or not mask.any():
                continue
            counts = coco_counts(mask)
            annotations.append(
                {
                    "category_id": category,
                    "segmentation": {"size": list(mask.shape), "counts": counts_to_string(counts)},
                    "area": coco_area(counts),
                    "bbox": bbox(mask),
                    "iscrowd": 0,
                }
            )
        image = {
            "file_name": image_file(pixels.study, view),
            "height": selection.height,
            "width": selection.width,
            "study": pixels.study,
            "view": view,
            "split": pixels.split,
            "pixel_spacing": pixels.pixel_spacing[v],
            "unavailable_category_ids": unavailable,
        }
        records.append({"image": image, "annotations": annotations})
    return records


def index(folder: ExportFolder, selection: Selection) -> AnnotationsIndex:
    """``annotations.json``, written a study at a time."""
    return AnnotationsIndex(folder, selection)


class AnnotationsIndex:
    """``annotations.json``, streamed: image ids 1..N in study then view order, annotation ids
    in the same order. Annotations are written as they come; the images list (small) ends it."""

    def __init__(self, folder: ExportFolder, selection: Selection):
        self.images: list[dict[str, Any]] = []
        self.annotations = 0
        self.handle = folder.open(ANNOTATIONS)
        categories = [
            {"id": i, "name": name, "supercategory": system}
            for i, name, system in zip(
                selection.label_ids, selection.labels, selection.systems, strict=True
            )
        ]
        head = {"info": INFO, "licenses": [], "categories": categories}
        self.handle.write(json_bytes(head).rstrip()[:-1] + b', "annotations": [')

    def add(self, records: list[dict]) -> None:
        """Append one study's images and annotations."""
        for record in records:
            image_id = len(self.images) + 1
            self.images.append({"id": image_id, **record["image"]})
            for annotation in record["annotations"]:
                self.annotations += 1
                item = {"id": self.annotations, "image_id": image_id, **annotation}
                separator = b", " if self.annotations > 1 else b""
                self.handle.write(separator + json_bytes(item).rstrip())

    def close(self) -> None:
        """Write the images and finish the document."""
        self.handle.write(b'], "images": ' + json_bytes(self.images).rstrip() + b"}\n")
        self.handle.close()


def open_coco(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    annotations_url: str | None = None,
    score_threshold: float = 0.5,
) -> CocoIndex:
    """Predictions in a COCO file: an annotations file, or a results list whose image and
    category ids the export's ``annotations_url`` resolves. Malformed files raise ValueError."""
    options = dict(storage_options or {})
    document = _json(url, options)
    if isinstance(document, list):
        if annotations_url is None:
            raise ValueError(
                f"{url} is a COCO results list: give the export's annotations file "
                "(--coco-annotations) so that its image and category ids can be resolved"
            )
        reference = _json(annotations_url, options)
        return CocoIndex.of(reference, annotations_url, document, url, score_threshold)
    annotations = document.get("annotations") if isinstance(document, dict) else None
    return CocoIndex.of(document, url, annotations, url, None)


@dataclass(frozen=True)
class CocoIndex:
    """Images by (study, view), category names by id, and each image's predicted segments."""

    url: str
    images: dict[tuple[str, str], dict[str, Any]]
    names: dict[int, str]
    segments: dict[int, list[tuple[int, Any]]]  # image id -> (category id, segmentation)

    @classmethod
    def of(
        cls,
        document: Any,
        where: str,
        annotations: Any,
        annotations_where: str,
        score_threshold: float | None,
    ) -> CocoIndex:
        """Index an annotations document and the annotations (or results) that predict."""
        if not isinstance(document, dict) or not isinstance(annotations, list):
            raise ValueError(f"{where} is not a COCO annotations file (images, annotations)")
        try:
            names = {int(c["id"]): str(c["name"]) for c in document["categories"]}
            images, ids = {}, set()
            for image in document["images"]:
                images[_study_view(image)] = image
                ids.add(int(image["id"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: malformed images or categories ({error})") from None
        segments: dict[int, list[tuple[int, Any]]] = {}
        for n, item in enumerate(annotations):
            try:
                image_id, category = int(item["image_id"]), int(item["category_id"])
                segmentation = item["segmentation"]
                score = float(item.get("score", 1.0))
            except (KeyError, TypeError, ValueError) as error:
                message = f"{annotations_where}: annotation {n} is malformed ({error})"
                raise ValueError(message) from None
            for kind, value, known in (("image", image_id, ids), ("category", category, names)):
                if value not in known:
                    raise ValueError(
                        f"{annotations_where}: annotation {n} names {kind} {value}, "
                        f"which {where} does not list"
                    )
            if score_threshold is None or score >= score_threshold:
                segments.setdefault(image_id, []).append((category, segmentation))
        return cls(annotations_where, images, names, segments)

    def exists(self) -> bool:
        """True: the predictions were read when they were opened."""
        return True

    def studies(self) -> list[str]:
        """The studies that have an image, sorted."""
        return sorted({study for study, _ in self.images})

    def reader(
        self, study: str, views: Sequence[str], labels: Sequence[str], shape: tuple[int, int]
    ) -> Callable[[], np.ndarray]:
        """A reader of the study's masks (view, label, y, x) holding only that study's part."""
        images = {view: self.images.get((study, view)) for view in views}
        segments = {
            view: self.segments.get(int(image["id"]), []) if image else []
            for view, image in images.items()
        }
        return functools.partial(
            _study_masks, self.url, images, segments, self.names, labels, shape
        )


def _study_masks(
    url: str,
    images: Mapping[str, Mapping[str, Any] | None],
    segments: Mapping[str, list[tuple[int, Any]]],
    names: Mapping[int, str],
    labels: Sequence[str],
    shape: tuple[int, int],
) -> np.ndarray:
    """One study's masks (view, label, y, x): the union of its segments per class."""
    index = {name: i for i, name in enumerate(labels)}
    out = np.zeros((len(images), len(labels), *shape), bool)
    for v, (view, image) in enumerate(images.items()):
        if image is None:
            continue  # a view without an image predicts nothing
        size = (int(image["height"]), int(image["width"]))
        if size != tuple(shape):
            raise ValueError(
                f"{url}: image {image['id']} ({image.get('study')} {view}) is {size[1]} x "
                f"{size[0]} pixels, the dataset's masks are {shape[1]} x {shape[0]}"
            )
        for category, segmentation in segments[view]:
            name = names[category]
            if name not in index:
                message = f"{url}: category {category} ({name!r}) is no class of the dataset"
                raise ValueError(message)
            out[v, index[name]] |= _mask(segmentation, shape, url, image["id"])
    return out


def _json(url: str, options: Mapping[str, Any]) -> Any:
    try:
        return json.loads(read_text(url, options))
    except json.JSONDecodeError as error:
        raise ValueError(f"{url} is not JSON ({error})") from None


def _study_view(image: Mapping[str, Any]) -> tuple[str, str]:
    """An image's study and view: its own fields, else its ``file_name`` ``<study>/<view>.png``."""
    if "study" in image and "view" in image:
        return str(image["study"]), str(image["view"])
    study, _, name = str(image["file_name"]).rpartition("/")
    if not study or not name.endswith(".png"):
        raise ValueError(f"image {image.get('id')} has no study and view")
    return study.rsplit("/", 1)[-1], name.removesuffix(".png")


def _mask(segmentation: Any, shape: tuple[int, int], where: str, image_id: Any) -> np.ndarray:
    if not isinstance(segmentation, dict) or "counts" not in segmentation:
        raise ValueError(
            f"{where}: a segmentation of image {image_id} is not RLE (polygons: convert them "
            "with pycocotools.mask.frPyObjects)"
        )
    try:
        mask = coco_decode(segmentation)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{where}: an RLE of image {image_id} is malformed ({error})") from None
    if mask.shape != tuple(shape):
        raise ValueError(
            f"{where}: an RLE of image {image_id} is {mask.shape[1]} x {mask.shape[0]} pixels, "
            f"the dataset's masks are {shape[1]} x {shape[0]}"
        )
    return mask
