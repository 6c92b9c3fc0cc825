"""The 210-class label space and its hierarchy, read from ``taxonomy.csv``.

The vocabulary is RadGenome-Chest CT's (SAT label strings). Classes overlap: parents contain
children, so the hierarchy is two relations, both kept as data in the CSV:

- ``parent``: the tree the paper's four levels come from (system > organ > substructure > leaf);
  an organ's parent is its system, and the 10 systems are the region classes.
- ``union_of``: the classes whose union *defines* a class ("rib 7" = "left rib 7" | "right rib 7").
  Masks a source lacks are derived from it, and every member lies inside the class.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

SYSTEMS: tuple[str, ...] = (
    "Skeletal",
    "Abdominal",
    "Mediastinal",
    "Cardiac",
    "Pulmonary",
    "Airway",
    "Endocrine",
    "Esophageal",
    "Breast",
    "Neural/soft tissue",
)
LEVELS: tuple[str, ...] = ("organ", "substructure", "leaf")


@dataclass(frozen=True)
class LabelInfo:
    """One class of the vocabulary and its place in the hierarchy."""

    name: str
    system: str
    level: str
    organ: str
    substructure: str  # "" for organ-level classes
    parent: str  # a class name, or the system for organ-level classes
    union_of: tuple[str, ...]  # empty when the class is not defined as a union
    pathology: bool


@dataclass(frozen=True)
class Taxonomy:
    """The ordered label space; the order is the ``label`` axis of every store."""

    labels: tuple[LabelInfo, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(info.name for info in self.labels)

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, name: str) -> LabelInfo:
        return self.labels[self.index(name)]

    def index(self, name: str) -> int:
        """Position of ``name`` on the label axis; KeyError names unknown classes."""
        try:
            return self._positions[name]
        except KeyError:
            raise KeyError(f"{name!r} is not one of the {len(self)} classes") from None

    def children(self, name: str) -> tuple[str, ...]:
        """Classes whose tree parent is ``name`` (a class or a system)."""
        return tuple(info.name for info in self.labels if info.parent == name)

    def ancestors(self, name: str) -> tuple[str, ...]:
        """Tree parents from the nearest up to and including the system."""
        chain: list[str] = []
        node = self[name].parent
        while node not in SYSTEMS:
            chain.append(node)
            node = self[node].parent
        return (*chain, node)

    def containers(self, name: str) -> tuple[str, ...]:
        """Every class that must contain ``name``: tree ancestors and unions it belongs to."""
        found: set[str] = set()
        frontier = [name]
        while frontier:
            member = frontier.pop()
            wider = [info.name for info in self.labels if member in info.union_of]
            wider += list(self.ancestors(member)[:-1])
            for container in wider:
                if container not in found:
                    found.add(container)
                    frontier.append(container)
        return tuple(sorted(found))

    def system_indices(self, system: str) -> tuple[int, ...]:
        """Label-axis positions of the classes of one system."""
        return tuple(i for i, info in enumerate(self.labels) if info.system == system)

    def union_order(self) -> tuple[str, ...]:
        """Every class, each after all members of its ``union_of`` (for deriving unions)."""
        done: dict[str, None] = {}

        def visit(name: str) -> None:
            if name in done:
                return
            for member in self[name].union_of:
                visit(member)
            done[name] = None

        for name in self.names:
            visit(name)
        return tuple(done)


@cache
def load_taxonomy() -> Taxonomy:
    """The project's label space, from the packaged ``taxonomy.csv``."""
    text = resources.files("catalog").joinpath("taxonomy.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    labels = tuple(
        LabelInfo(
            name=row["name"],
            system=row["system"],
            level=row["level"],
            organ=row["organ"],
            substructure=row["substructure"],
            parent=row["parent"],
            union_of=tuple(m for m in row["union_of"].split("|") if m),
            pathology=row["pathology"] == "true",
        )
        for row in rows
    )
    return Taxonomy(labels)
