"""Export folders (local or object storage) and the PNG, JSON and NPZ files they hold.

An ``ExportFolder`` is a picklable ``storage.files.Folder`` address: every worker writes
its own files into it, one writer per file, so a study's files never meet another task's.
PNG bytes depend only on the pixels (Pillow's defaults, no timestamps): reruns are identical.
"""

from __future__ import annotations

import io
import json
import re
from typing import IO, Any

import numpy as np
from PIL import Image

from storage.files import Folder

_NUMBER_LIST = re.compile(r"\[\s*((?:-?[0-9.eE+]+,?\s*)*)\]")


class ExportFolder(Folder):
    """A folder of exported files, addressed like an input ``Folder``; names below are
    relative paths (``images/<study>/PA.png``), not single components."""

    def file_url(self, name: str) -> str:
        """The URL of ``name`` (a relative path) inside the folder."""
        return f"{self.url.rstrip('/')}/{name}"

    def exists(self) -> bool:
        """Whether anything (a folder or a file) is at the folder's address."""
        fs, path = self._fs()
        fs.invalidate_cache(path)
        return bool(fs.exists(path))

    def remove(self) -> None:
        """Delete the folder and everything in it (``--overwrite``)."""
        fs, path = self._fs()
        if fs.exists(path):
            fs.rm(path, recursive=True)
        fs.invalidate_cache(path)

    def write(self, name: str, data: bytes) -> None:
        """Write the file ``name`` (a relative path; parent folders are made)."""
        fs, path = self._fs()
        target = f"{path}/{name}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(target, data)

    def open(self, name: str) -> IO[bytes]:
        """A binary handle writing the file ``name`` (for indexes streamed a batch at a time)."""
        fs, path = self._fs()
        target = f"{path}/{name}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        return fs.open(target, "wb")

    def read_file(self, name: str) -> bytes:
        """The whole file ``name``; FileNotFoundError names it."""
        fs, path = self._fs()
        try:
            return fs.cat_file(f"{path}/{name}")
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.file_url(name)} does not exist") from None

    def files(self, under: str = "") -> list[str]:
        """Relative paths of the files below ``under`` (recursively), sorted."""
        fs, path = self._fs()
        root = f"{path}/{under}".rstrip("/")
        fs.invalidate_cache(root)
        if not fs.isdir(root):
            return []
        found = fs.find(root)
        return sorted(str(p)[len(path) + 1 :] for p in found)


def png_bytes(pixels: np.ndarray) -> bytes:
    """A greyscale PNG of (y, x) uint8 or uint16 pixels (16-bit for uint16)."""
    if pixels.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"PNG pixels must be uint8 or uint16, not {pixels.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_pixels(data: bytes, where: str) -> np.ndarray:
    """The pixels of PNG bytes (greyscale as (y, x)); ``where`` names the file in errors."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image)
    except OSError as error:
        raise ValueError(f"{where} is not a readable PNG ({error})") from None


def json_bytes(document: Any, *, indent: int | None = None) -> bytes:
    """UTF-8 JSON with the keys in the order given (formats' readers expect it) and a final
    newline; indented, lists of numbers stay on one line."""
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    if indent is not None:  # only whitespace changes, so strings are left as they were
        text = _NUMBER_LIST.sub(lambda m: f"[{_joined(m[1])}]", text)
    return (text + "\n").encode("utf-8")


def _joined(numbers: str) -> str:
    return ", ".join(part.strip() for part in numbers.split(",") if part.strip())


def npz_arrays(data: bytes, where: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file's bytes (no pickles); ``where`` names the file."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{where} is not a readable .npz file ({error})") from None
