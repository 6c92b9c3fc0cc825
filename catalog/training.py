"""``RadiographDataset``: a dataset store as a map-style dataset for PyTorch (or anything that
indexes), one item per committed study and view. Needs numpy only; torch is not imported.

An item is a dict of numpy arrays that ``torch.utils.data.default_collate`` stacks: ``image``
float32 (1, H, W) in [0, 1] (the stored uint8 / 255), ``mask`` uint8 (L, H, W) with overlapping
classes as separate channels, ``available`` bool (L,) (False: the input had no such class, so a
loss must ignore that channel, not learn it as empty), ``pixel_spacing`` float32 (mm), ``study``
and ``view``. Metadata is read once when the dataset is made; each DataLoader worker opens the
store itself on its first item, and an item costs two reads (the study's image and mask shards)
whatever L is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from catalog.reader import Names, open_catalog, select
from storage.location import StoreRef
from storage.masks import DatasetReader

Item = dict[str, Any]


class RadiographDataset:
    """Committed studies x views of a dataset store; see the module docstring for an item."""

    def __init__(
        self,
        store: str | StoreRef | Any,
        split: Names | None = None,
        views: Sequence[str] = ("PA", "LL"),
        labels: Names | None = None,
        systems: Names | None = None,
        transform: Callable[[Item], Item] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ):
        if isinstance(store, str):
            store = StoreRef(store, dict(storage_options or {}))
        committed = open_catalog(store)
        chosen = select(committed, split=split, view=list(views), label=labels, system=systems)
        everything = open_catalog(store, include_uncommitted=True)
        order = {str(s): i for i, s in enumerate(everything["study"].values)}
        all_views = [str(v) for v in everything["view"].values]
        all_labels = [str(n) for n in everything["label"].values]
        self.studies = [str(s) for s in chosen["study"].values]
        self.views = [str(v) for v in chosen["view"].values]
        self.labels = [str(n) for n in chosen["label"].values]
        self.transform = transform
        self._positions = np.array([order[s] for s in self.studies], dtype=np.int64)
        self._view_positions = [all_views.index(v) for v in self.views]
        self._label_positions = np.array([all_labels.index(n) for n in self.labels])
        self._available = np.asarray(chosen["available"].values, bool)
        self._spacing = np.asarray(chosen["pixel_spacing"].values, np.float32)
        self._reader = DatasetReader(store)

    def __len__(self) -> int:
        return len(self.studies) * len(self.views)

    def __getitem__(self, index: int) -> Item:
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} of {len(self)}")
        s, v = divmod(index % len(self), len(self.views))
        images, masks = self._reader.study(int(self._positions[s]))
        view = self._view_positions[v]
        item: Item = {
            "image": (images[view].astype(np.float32) / 255.0)[None],
            "mask": masks[view][self._label_positions].astype(np.uint8),
            "available": self._available[s].copy(),
            "pixel_spacing": np.float32(self._spacing[s, v]),
            "study": self.studies[s],
            "view": self.views[v],
        }
        return self.transform(item) if self.transform else item
