"""TotalSegmentator names and ids, and how they map onto the 210-class vocabulary.

Two tables, both data shipped with the package:

- ``totalsegmentator_map.csv``: one row per TotalSegmentator structure name (task ``total`` v2 and
  a few other tasks) with the vocabulary class it *is*, or an empty ``class`` when the vocabulary
  has no such class (``autochthon_left``, ``urinary_bladder``, ...). A name in that table maps to
  something or is known to map to nothing; a name missing from it is unknown.
- ``totalsegmentator_v2_total.csv``: the ids of a ``--ml`` multi-label file of task ``total`` v2.

Users may replace either with their own CSV in the same format (``--label-map``, ``--class-map``).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from catalog.taxonomy import load_taxonomy

NAME_MAP_FILE = "totalsegmentator_map.csv"
V2_IDS_FILE = "totalsegmentator_v2_total.csv"
_NAME_COLUMNS = ("name", "structure", "label")  # accepted headers for a class map's name column


@dataclass(frozen=True)
class NameMap:
    """TotalSegmentator name -> vocabulary class, or None for names with no counterpart."""

    classes: Mapping[str, str | None]
    source: str

    def resolve(self, name: str) -> str | None:
        """The class ``name`` maps to, None if it maps to nothing; KeyError if it is unknown."""
        try:
            return self.classes[name]
        except KeyError:
            raise KeyError(
                f"label name {name!r} maps to nothing: it is not in the TotalSegmentator table "
                f"{self.source} (add it there, or pass --label-map with a table that has it)"
            ) from None


def parse_name_map(text: str, source: str) -> NameMap:
    """Read a ``totalsegmentator,class[,...]`` table; every class must be in the vocabulary."""
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or not {"totalsegmentator", "class"} <= set(rows[0]):
        raise ValueError(f"{source} needs the columns 'totalsegmentator' and 'class'")
    taxonomy = load_taxonomy()
    classes: dict[str, str | None] = {}
    for line, row in enumerate(rows, start=2):
        name, target = row["totalsegmentator"].strip(), (row["class"] or "").strip()
        if not name:
            raise ValueError(f"{source} line {line}: empty TotalSegmentator name")
        if name in classes:
            raise ValueError(f"{source} line {line}: {name!r} is listed twice")
        if target:
            taxonomy.index(target)  # KeyError names a class outside the vocabulary
        classes[name] = target or None
    return NameMap(classes, source)


def parse_class_map(text: str, source: str) -> dict[int, str]:
    """Read an ``id,name`` table (``structure`` or ``label`` also name the name column)."""
    rows = list(csv.DictReader(text.splitlines()))
    header = set(rows[0]) if rows else set()
    name_column = next((c for c in _NAME_COLUMNS if c in header), None)
    if "id" not in header or name_column is None:
        raise ValueError(f"{source} needs an 'id' column and a 'name' (or 'structure') column")
    ids: dict[int, str] = {}
    for line, row in enumerate(rows, start=2):
        try:
            label_id = int(row["id"])
        except (TypeError, ValueError):
            raise ValueError(f"{source} line {line}: id {row['id']!r} is not an integer") from None
        if label_id < 1:
            raise ValueError(
                f"{source} line {line}: id {label_id} must be at least 1 (0 is background)"
            )
        if label_id in ids:
            raise ValueError(f"{source} line {line}: id {label_id} is listed twice")
        ids[label_id] = row[name_column].strip()
    return ids


@cache
def default_name_map() -> NameMap:
    """The packaged TotalSegmentator -> vocabulary table."""
    return parse_name_map(_packaged(NAME_MAP_FILE), f"catalog/{NAME_MAP_FILE}")


def v2_class_map() -> dict[int, str]:
    """The ids of TotalSegmentator v2 task ``total`` multi-label files (a fresh copy)."""
    return dict(_v2_ids())


@cache
def _v2_ids() -> dict[int, str]:
    return parse_class_map(_packaged(V2_IDS_FILE), f"catalog/{V2_IDS_FILE}")


def _packaged(name: str) -> str:
    return resources.files("catalog").joinpath(name).read_text(encoding="utf-8")
