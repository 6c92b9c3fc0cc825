"""Reading one study's 2D masks (view, label, y, x), from a dataset store or a folder of PNGs,
and its radiographs (view, y, x) from a dataset store.

Dataset stores keep each study's masks in one shard, so a study is read with one request for
the whole shard. A PNG folder holds ``<folder>/<study>/<view>/<label>.png``: label names are
used verbatim as file names (spaces and parentheses included; no class name contains ``/``);
any non-zero pixel is foreground; a missing file is an empty mask.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import zarr
from PIL import Image

from storage.location import StoreRef

PNG_SUFFIX = ".png"


def is_dataset_store(ref: StoreRef) -> bool:
    """Whether ``ref`` holds a Zarr group in the dataset schema (its format mark and masks)."""
    if not ref.exists():
        return False
    group = zarr.open_group(ref.open(read_only=True), mode="r")
    return "rga_format" in group.attrs and "mask" in group


def read_study_masks(ref: StoreRef, position: int) -> np.ndarray:
    """The ``mask`` block (view, label, y, x) of the study at ``position`` of a dataset store."""
    root = zarr.open_group(ref.open(read_only=True), mode="r")
    return np.asarray(root["mask"][position], dtype=bool)


def read_study_images(ref: StoreRef, position: int) -> np.ndarray:
    """The ``image`` block (view, y, x) uint8 of the study at ``position`` of a dataset store."""
    root = zarr.open_group(ref.open(read_only=True), mode="r")
    return np.asarray(root["image"][position], dtype=np.uint8)


class DatasetReader:
    """Whole studies of one dataset store, for loaders that read item by item.

    The store is opened on first use in each process (a pickled reader, e.g. in a PyTorch
    DataLoader worker, opens its own) and the last study read is kept, so that its two views
    cost one read. A study's masks are one shard: one request, however many classes.
    """

    def __init__(self, store: StoreRef | Any):
        self.store = store
        self._root: zarr.Group | None = None
        self._last: tuple[int, np.ndarray, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"store": self.store, "_root": None, "_last": None}

    def _group(self) -> zarr.Group:
        if self._root is None:
            store = (
                self.store.open(read_only=True) if isinstance(self.store, StoreRef) else self.store
            )
            self._root = zarr.open_group(store, mode="r", zarr_format=3)
        return self._root

    def study(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """The images (view, y, x) uint8 and masks (view, label, y, x) bool at ``position``."""
        if self._last is None or self._last[0] != position:
            root = self._group()
            images = np.asarray(root["image"][position], dtype=np.uint8)
            self._last = (position, images, np.asarray(root["mask"][position], dtype=bool))
        return self._last[1], self._last[2]


@dataclass(frozen=True)
class PngFolder:
    """A folder (path or fsspec URL) of predicted masks as PNG files, one per study/view/class."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        ref = StoreRef(self.url, self.storage_options)  # the options every URL gets
        options = {} if ref.is_local else dict(ref.storage_options)
        fs, path = fsspec.core.url_to_fs(self.url, **options)
        return fs, path.rstrip("/")

    def exists(self) -> bool:
        """Whether the folder exists."""
        fs, path = self._fs()
        return bool(fs.isdir(path))

    def studies(self) -> list[str]:
        """Names of the study folders, sorted."""
        fs, path = self._fs()
        entries = fs.ls(path, detail=True)
        return sorted(_name(e["name"]) for e in entries if e["type"] == "directory")

    def reader(
        self, study_id: str, views: Sequence[str], labels: Sequence[str], shape: tuple[int, int]
    ) -> Callable[[], np.ndarray]:
        """A reader of the study's masks (what ``rga evaluate`` gives each task)."""
        return functools.partial(self.read, study_id, views, labels, shape)

    def read(
        self, study_id: str, views: Sequence[str], labels: Sequence[str], shape: tuple[int, int]
    ) -> np.ndarray:
        """The study's masks as (view, label, y, x) bool; unknown files or sizes raise."""
        fs, path = self._fs()
        out = np.zeros((len(views), len(labels), *shape), bool)
        index = {name: i for i, name in enumerate(labels)}
        found = {_name(e["name"]): e for e in fs.ls(f"{path}/{study_id}", detail=True)}
        unknown_views = sorted(set(found) - set(views))
        if unknown_views:
            raise ValueError(
                f"study {study_id}: unknown view folder {unknown_views[0]!r} "
                f"(expected {', '.join(views)})"
            )
        for v, view in enumerate(views):
            if view not in found:
                continue
            for entry in fs.ls(f"{path}/{study_id}/{view}", detail=True):
                file_name = _name(entry["name"])
                label = file_name.removesuffix(PNG_SUFFIX)
                if entry["type"] != "file" or not file_name.endswith(PNG_SUFFIX):
                    raise ValueError(f"study {study_id}: {view}/{file_name} is not a PNG file")
                if label not in index:
                    raise ValueError(
                        f"study {study_id}: {view}/{file_name} names no class of the dataset"
                    )
                out[v, index[label]] = _read_png(fs, entry["name"], shape, study_id)
        return out

    def write(
        self, study_id: str, masks: np.ndarray, views: Sequence[str], labels: Sequence[str]
    ) -> None:
        """Write a study's non-empty masks as 0/255 greyscale PNGs (empty masks: no file)."""
        fs, path = self._fs()
        for v, view in enumerate(views):
            folder = f"{path}/{study_id}/{view}"
            fs.makedirs(folder, exist_ok=True)
            for index, label in enumerate(labels):
                if masks[v, index].any():
                    buffer = io.BytesIO()
                    image = Image.fromarray(masks[v, index].astype(np.uint8) * 255)
                    image.save(buffer, format="PNG")
                    fs.pipe_file(f"{folder}/{label}{PNG_SUFFIX}", buffer.getvalue())


def _read_png(
    fs: fsspec.AbstractFileSystem, path: str, shape: tuple[int, int], study_id: str
) -> np.ndarray:
    """One PNG as a boolean mask: non-zero is foreground (any colour channel, alpha ignored)."""
    try:
        with fs.open(path, "rb") as handle, Image.open(handle) as image:
            pixels = np.asarray(image)
    except OSError as error:
        message = f"study {study_id}: {_tail(path)} is not a readable PNG ({error})"
        raise ValueError(message) from None
    if pixels.ndim == 3:  # LA and RGBA: the last channel is alpha
        colour = pixels[..., :-1] if pixels.shape[-1] in (2, 4) else pixels
        pixels = colour.any(axis=-1)
    if pixels.shape != tuple(shape):
        raise ValueError(
            f"study {study_id}: {_tail(path)} is {pixels.shape[1]} x {pixels.shape[0]} pixels, "
            f"the dataset's masks are {shape[1]} x {shape[0]}"
        )
    return pixels != 0


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _tail(path: str) -> str:
    return "/".join(path.rstrip("/").split("/")[-2:])
