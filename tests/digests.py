"""Byte-level fingerprints of stores, for determinism and no-change checks."""

import hashlib
from pathlib import Path

from storage.buildlog import LOG_NAME


def tree_digest(folder: Path, ignore: tuple[str, ...] = (LOG_NAME,)) -> dict[str, str]:
    """sha256 of every file below ``folder`` by relative path (the build log is timestamped)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and p.name not in ignore
    }
