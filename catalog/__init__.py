"""The label space and the read side of a built dataset."""

from catalog.reader import open_catalog, select
from catalog.taxonomy import LEVELS, SYSTEMS, LabelInfo, Taxonomy, load_taxonomy
from catalog.training import RadiographDataset

__all__ = [
    "LEVELS",
    "SYSTEMS",
    "LabelInfo",
    "RadiographDataset",
    "Taxonomy",
    "load_taxonomy",
    "open_catalog",
    "select",
]
