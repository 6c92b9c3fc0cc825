"""Byte-level fingerprints of stores, for determinism and no-change checks."""

import hashlib
from pathlib import Path

from storage.buildlog import LOG_FOLDER


def tree_digest(folder: Path, ignore: tuple[str, ...] = (LOG_FOLDER,)) -> dict[str, str]:
    """sha256 of every file below ``folder`` by relative path, except below the folders and
    files ``ignore`` names at any depth (by default the build log, which is timestamped)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and not set(p.relative_to(folder).parts) & set(ignore)
    }
