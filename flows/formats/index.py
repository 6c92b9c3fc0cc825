"""The file that names every exported study, written on the client as studies finish."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, Protocol

from storage.exports import ExportFolder


class Index(Protocol):
    """An index (annotations.json, masks.csv, ...): fed in study order as batches finish, so
    that it never has to fit in memory and its bytes do not depend on the schedule."""

    def add(self, records: Any) -> None:
        """Append one study's records (what the format's ``write_study`` returned)."""

    def close(self) -> None:
        """Finish the file."""


class CsvIndex:
    """A CSV table with a header row, one study's rows at a time (``\\n`` line ends)."""

    def __init__(self, folder: ExportFolder, name: str, header: Sequence[str]):
        self.handle = folder.open(name)
        self._add([list(header)])

    def _add(self, rows: Sequence[Sequence[str]]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        self.handle.write(text.getvalue().encode("utf-8"))

    def add(self, records: Sequence[Sequence[str]]) -> None:
        """Append one study's rows."""
        self._add(records)

    def close(self) -> None:
        """Finish the table."""
        self.handle.close()
