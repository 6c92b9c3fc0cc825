"""The label space and the read side of a built dataset."""

from catalog.reader import open_catalog, select
from catalog.taxonomy import LEVELS, SYSTEMS, LabelInfo, Taxonomy, load_taxonomy

__all__ = [
    "LEVELS",
    "SYSTEMS",
    "LabelInfo",
    "Taxonomy",
    "load_taxonomy",
    "open_catalog",
    "select",
]
