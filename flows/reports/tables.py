"""Small report tables: one value per cell, rendered for a terminal, CSV, Markdown and JSON.

Statistics and measurement reports build ``Table`` objects and never format numbers
themselves, so every output of a report shows the same values the same way.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Cell = str | int | float | None
Variables = Mapping[Hashable, Any]
"""Named arrays a table or figure reads, each through ``[name].values``: an in-memory
``xarray.Dataset`` of per-study or per-class variables is one, so tables need no xarray."""


@dataclass(frozen=True)
class Table:
    """A titled table: named columns and rows of cells (None and NaN show as blank)."""

    name: str  # file stem: ``<name>.csv`` and so on
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.name}: a row has {len(row)} cells, not {len(self.columns)}"
                )

    def records(self) -> list[dict[str, Cell]]:
        """Rows as dictionaries keyed by column (JSON-ready: NaN becomes None)."""
        return [
            {c: _json_cell(v) for c, v in zip(self.columns, row, strict=True)} for row in self.rows
        ]


def format_cell(value: Cell) -> str:
    """Text of one cell: integers with thousands separators, floats to 4 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def to_text(table: Table) -> str:
    """A fixed-width table for a terminal, numbers right-aligned."""
    cells = [[format_cell(v) for v in row] for row in table.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(table.columns)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in table.rows)
        for i in range(len(table.columns))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [table.title, line(table.columns), line(["-" * w for w in widths])]
    out += [line(row) for row in cells] or ["(none)"]
    out += [f"  {note}" for note in table.notes]
    return "\n".join(out) + "\n"


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table under a heading."""
    out = [f"### {table.title}", "", "| " + " | ".join(table.columns) + " |"]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in table.rows)
        for i in range(len(table.columns))
    ]
    out.append("| " + " | ".join("---:" if n else "---" for n in numeric) + " |")
    for row in table.rows:
        out.append("| " + " | ".join(format_cell(v).replace("|", "\\|") for v in row) + " |")
    out += ["", *table.notes] if table.notes else []
    return "\n".join(out) + "\n"


def to_csv(table: Table) -> str:
    """CSV with a header; numbers at full precision, blanks for missing values."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["" if _json_cell(v) is None else v for v in row])
    return buffer.getvalue()


def to_json(tables: Sequence[Table], extra: Mapping[str, Any] | None = None) -> str:
    """One JSON document holding every table's title, columns and records."""
    document: dict[str, Any] = dict(extra or {})
    for table in tables:
        document[table.name] = {
            "title": table.title,
            "columns": list(table.columns),
            "rows": table.records(),
            "notes": list(table.notes),
        }
    return json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n"


def write_report(folder: str | Path, name: str, tables: Sequence[Table], extra=None) -> list[Path]:
    """Write ``<table>.csv`` for each table plus ``<name>.md`` and ``<name>.json`` into folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        path = folder / f"{table.name}.csv"
        path.write_text(to_csv(table), encoding="utf-8")
        written.append(path)
    markdown = folder / f"{name}.md"
    markdown.write_text("\n".join(to_markdown(t) for t in tables), encoding="utf-8")
    document = folder / f"{name}.json"
    document.write_text(to_json(tables, extra), encoding="utf-8")
    return [*written, markdown, document]


def _json_cell(value: Cell) -> Cell:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
