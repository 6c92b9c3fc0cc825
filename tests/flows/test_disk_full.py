"""A full disk under a local dataset store, for real: a tmpfs of limited size (needs root or
CAP_SYS_ADMIN to mount; CI runs as root). The update stops with one sentence, the store still
opens with what was committed, and a rerun after freeing space completes."""

import contextlib
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from phantoms import reference_build

from catalog import open_catalog
from flows.build import BuildParameters
from storage.buildlog import append_record, read_records
from storage.location import StoreRef

SHAPE = (64, 64, 64)
SMALL = BuildParameters(canvas=64)


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs mounted at ``tmp_path/disk``, unmounted after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode:
        pytest.skip(f"mounting a tmpfs needs root or CAP_SYS_ADMIN: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def _resize(disk: Path, kib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={kib}k", str(disk)], check=True)


def _used_kib(disk: Path) -> int:
    stats = os.statvfs(disk)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize // 1024


def _rga_update(sources: StoreRef, dest: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "flows.cli", "update", sources.url, str(dest)]
    command += ["--image-size", str(SMALL.canvas), "--scheduler", "synchronous"]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)


def _committed(dest: Path) -> dict[str, str]:
    """A digest of each committed study's image and masks, by id."""
    ds = open_catalog(str(dest))
    return {
        str(study): hashlib.sha256(
            ds.image.isel(study=i).values.tobytes() + ds.mask.isel(study=i).values.tobytes()
        ).hexdigest()
        for i, study in enumerate(ds.study.values)
    }


def test_a_full_disk_stops_the_update_cleanly_and_a_rerun_completes(small_disk, tmp_path):
    sources, reference = reference_build(tmp_path, 6, SHAPE, SMALL)
    expected = _committed(reference.local_path)
    dest = small_disk / "d.zarr"
    assert _rga_update(sources, dest).returncode == 0  # how much room the whole build takes
    needed = _used_kib(small_disk)
    subprocess.run(["rm", "-rf", str(dest), f"{dest}.lock"], check=True)
    _resize(small_disk, needed * 3 // 4)  # room for some studies, not all

    full = _rga_update(sources, dest)
    assert full.returncode == 1, full.stderr
    assert "No space left on device" in full.stderr and "run the update again" in full.stderr
    assert "Traceback" not in full.stderr, full.stderr
    committed = _committed(dest)  # the store opens, with what was committed
    assert 0 < len(committed) < len(expected), full.stderr
    assert committed == {s: expected[s] for s in committed}
    assert read_records(StoreRef(str(dest))) == []  # the log is written whole or not at all
    assert not list(small_disk.rglob("*.partial"))

    _resize(small_disk, needed * 2)  # space freed
    rerun = _rga_update(sources, dest)
    assert rerun.returncode == 0, rerun.stderr
    assert _committed(dest) == expected
    assert len(read_records(StoreRef(str(dest)))) == 1


def test_a_full_disk_leaves_the_build_log_as_it_was(small_disk):
    ref = StoreRef(str(small_disk / "d.zarr"))
    first = {"added": ["a"], "note": "x" * 2000, "lock_token": 1}
    append_record(ref, first)
    _resize(small_disk, _used_kib(small_disk) + 64)
    filler = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)  # the rest of the disk
    with contextlib.suppress(OSError):
        while True:
            os.write(filler, b"\0" * 4096)
    os.close(filler)
    with pytest.raises(OSError, match="No space left"):
        append_record(ref, {"added": ["b"], "note": "y" * 8000, "lock_token": 1})
    assert read_records(ref) == [first]  # not truncated, not half-written
    assert not list(small_disk.rglob("*.partial"))
