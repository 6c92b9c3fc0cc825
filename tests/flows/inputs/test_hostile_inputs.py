"""Hostile files: headers that claim more than the file or the limit holds, gzip bombs, and
symbolic links out of INPUT. Each is refused with a sentence naming the file, before memory
grows, with the C reader and with the fallback (the ``implementation`` fixture)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from niftis import generic_study

from flows.cli import main
from flows.inputs import nifti
from flows.inputs.layouts import LayoutOptions, ReadLimits, discover
from flows.inputs.nifti import DEFAULT_MAX_VOXELS, TRAILING_SLACK, InputError
from storage.files import Folder

HUGE = (60000, 60000, 60000)  # 2.16e14 voxels: NIfTI-2 (NIfTI-1 dims stop at 32767)
BOMB_BYTES = 4 << 30  # what the bomb inflates to after its voxels
PEAK_BOUND_MIB = 400  # what refusing every file below may cost a process, imports included


def header_only(shape: tuple[int, ...], dtype=np.uint8, *, nifti2: bool = True) -> bytes:
    """A gzip NIfTI whose header claims ``shape`` and whose data is 1 KiB of zeros."""
    header = (nib.Nifti2Header if nifti2 else nib.Nifti1Header)()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_zooms((1.0,) * len(shape))
    header.set_sform(np.eye(4), code=1)
    header["vox_offset"] = len(header.binaryblock) + 4
    return gzip.compress(header.binaryblock + bytes(4) + bytes(1024), mtime=0)


def far_offset() -> bytes:
    """A small, honest volume whose header puts its voxels a terabyte into the file."""
    header = nib.Nifti1Header()
    header.set_data_shape((8, 8, 8))
    header.set_data_dtype(np.uint8)
    header.set_sform(np.eye(4), code=1)
    header["vox_offset"] = 1e12
    return gzip.compress(header.binaryblock + bytes(4 + 512), mtime=0)


def bomb(tmp_path: Path) -> bytes:
    """A valid 16^3 mask followed by ``BOMB_BYTES`` of zeros in further gzip members (4 MiB)."""
    path = tmp_path / "bomb-head.nii.gz"
    mask = np.zeros((16, 16, 16), np.uint8)
    mask[4:9, 4:9, 4:9] = 1
    nib.save(nib.Nifti1Image(mask, np.eye(4)), path)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # one gzip member of 64 MiB of zeros
    member = squeeze.compress(bytes(64 << 20)) + squeeze.flush()
    return path.read_bytes() + member * (BOMB_BYTES // (64 << 20))


def test_a_header_claiming_more_voxels_than_the_limit_is_refused(implementation):
    data = header_only(HUGE)
    claim = r"v\.nii\.gz claims 60000 x 60000 x 60000 = 216,000,000,000,000 voxels, more than"
    with pytest.raises(InputError, match=claim + r" the limit of 536,870,912 \(--max-voxels\)"):
        nifti.decode_mask(data, "v.nii.gz")
    with pytest.raises(InputError, match=claim):
        nifti.decode(data, "v.nii.gz")
    small = header_only((64, 64, 64), nifti2=False)
    with pytest.raises(InputError, match="more than the limit of 100,000"):
        nifti.decode_mask(small, "v.nii.gz", max_voxels=100_000)


def test_a_header_claiming_more_than_the_file_can_hold_is_refused(implementation):
    """Within the voxel limit, but more than 1 KiB of gzip can inflate to."""
    data = header_only((512, 512, 512), np.int16)
    message = r"v\.nii\.gz is truncated or its header is wrong: the header promises [\d,]+ bytes"
    for decode in (nifti.decode, nifti.decode_mask):
        with pytest.raises(InputError, match=message):
            decode(data, "v.nii.gz", max_voxels=2**30)
    with pytest.raises(InputError, match=message):
        nifti.decode(far_offset(), "v.nii.gz")
    with pytest.raises(InputError, match=r"v\.nii is truncated: its header promises"):
        nifti.decode(gzip.decompress(header_only((64, 64, 64), nifti2=False)), "v.nii")


def test_a_stream_that_inflates_past_its_voxels_is_stopped(implementation, tmp_path):
    data = bomb(tmp_path)
    message = (
        rf"m\.nii\.gz decodes to more than its header promises \([\d,]+ bytes, and more than "
        rf"{TRAILING_SLACK:,} follow\): a gzip bomb or a wrong header"
    )
    for decode in (nifti.decode, nifti.decode_mask):
        with pytest.raises(InputError, match=message):
            decode(data, "m.nii.gz")


def test_trailing_bytes_within_the_slack_are_read_and_checked(implementation, tmp_path):
    """A few trailing bytes are tolerated, and the stream's CRC is still checked to the end."""
    mask = np.zeros((16, 16, 16), np.uint8)
    mask[2:5, 3:7, 4:9] = 1
    path = tmp_path / "m.nii.gz"
    nib.save(nib.Nifti1Image(mask, np.eye(4)), path)
    data = path.read_bytes() + gzip.compress(bytes(TRAILING_SLACK), mtime=0)
    _, box = nifti.decode_mask(data, "m.nii.gz")
    assert box.origin == (2, 3, 4) and int(box.data.sum()) == mask.sum()
    assert nifti.decode(data, "m.nii.gz").data.sum() == mask.sum()
    broken = bytearray(data)
    broken[-8] ^= 0xFF  # the trailing member's CRC
    with pytest.raises(InputError, match=r"m\.nii\.gz is corrupt"):
        nifti.decode_mask(bytes(broken), "m.nii.gz")


# The peak is VmHWM, which a new process image starts afresh: getrusage's ru_maxrss survives
# exec on Linux, so it would report the forking pytest process's size.
_PEAK = """
import re, sys
from flows.codecs import plane_reader
from flows.inputs import nifti
if sys.argv[1] == "fallback":
    plane_reader._SparseReader = plane_reader._byte_bounds = None
refused = 0
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    for decode in (nifti.decode, nifti.decode_mask):
        try:
            decode(data, path)
        except nifti.InputError:
            refused += 1
status = open("/proc/self/status").read()
print(refused, int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) // 1024)
"""


def test_refusing_hostile_files_keeps_memory_bounded(implementation, tmp_path):
    """Each hostile file, decoded as a CT and as a mask in a fresh process: all refused, and the
    process's peak stays far below the 4 GiB worker the README sizes for (a file that were
    believed would take gigabytes to terabytes)."""
    files = {
        "huge.nii.gz": header_only(HUGE),
        "big.nii.gz": header_only((512, 512, 512), np.int16),
        "far.nii.gz": far_offset(),
        "bomb.nii.gz": bomb(tmp_path),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(tmp_path / name) for name in files]
    run = subprocess.run(
        [sys.executable, "-c", _PEAK, implementation.name, *paths],
        capture_output=True,
        text=True,
        check=True,
    )
    refused, peak_mib = (int(v) for v in run.stdout.split())
    assert refused == 2 * len(files)
    assert peak_mib < PEAK_BOUND_MIB, f"peak RSS {peak_mib} MiB"


# ---------------------------------------------------------------------------------------------
# Symbolic links
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def linked_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """INPUT with three generic studies: ``inside`` links to a file in INPUT (allowed),
    ``outside`` links its CT to a file outside INPUT, ``elsewhere`` is a link to a study folder
    outside INPUT."""
    root, away = tmp_path / "input", tmp_path / "away"
    for study in ("inside", "outside"):
        generic_study(root, study)
    generic_study(away, "elsewhere")
    generic_study(away, "ct-donor")
    (root / "spare.nii.gz").write_bytes((root / "inside" / "ct.nii.gz").read_bytes())
    (root / "inside" / "ct.nii.gz").unlink()
    (root / "inside" / "ct.nii.gz").symlink_to(root / "spare.nii.gz")
    (root / "outside" / "ct.nii.gz").unlink()
    (root / "outside" / "ct.nii.gz").symlink_to(away / "ct-donor" / "ct.nii.gz")
    (root / "elsewhere").symlink_to(away / "elsewhere", target_is_directory=True)
    return root, away


def _load(root: Path, study: str, follow: bool = False):
    options = LayoutOptions(limits=ReadLimits(follow_symlinks=follow))
    (item,) = [i for i in discover("generic", Folder(str(root)), options) if i.study_id == study]
    loaded = item.load()
    list(loaded.masks)  # the masks are read when consumed
    return loaded


def test_links_out_of_input_are_refused_unless_followed(linked_inputs):
    root, away = linked_inputs
    with pytest.raises(InputError) as refused:
        _load(root, "outside")
    target = os.path.realpath(away / "ct-donor" / "ct.nii.gz")
    assert str(refused.value) == (
        f"outside/ct.nii.gz is a symbolic link to {target}, outside the input folder; pass "
        "--follow-symlinks to read it"
    )
    with pytest.raises(InputError, match=r"elsewhere/ct\.nii\.gz is a symbolic link to .*away"):
        _load(root, "elsewhere")
    followed = _load(root, "outside", follow=True)
    (ct,) = [r for r in followed.attrs["inputs"] if r["path"] == "outside/ct.nii.gz"]
    assert ct["resolved"] == target  # the provenance says where the bytes came from
    masks = [r for r in _load(root, "elsewhere", follow=True).attrs["inputs"]]
    assert all(r["resolved"].startswith(os.path.realpath(away)) for r in masks)


def test_links_within_input_are_read_and_recorded(linked_inputs):
    root, _ = linked_inputs
    records = _load(root, "inside").attrs["inputs"]
    assert records[0]["path"] == "inside/ct.nii.gz"
    assert records[0]["resolved"] == os.path.realpath(root / "spare.nii.gz")
    assert all("resolved" not in r for r in records[1:])  # the masks are plain files


def test_an_input_folder_that_is_itself_a_link_is_not_a_link_out(linked_inputs, tmp_path):
    """INPUT given as a link (a mounted data set) is where the user pointed: no file is refused
    and nothing is recorded as resolved."""
    root, _ = linked_inputs
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    records = _load(alias, "inside").attrs["inputs"]
    assert records[0]["resolved"] == os.path.realpath(root / "spare.nii.gz")
    assert all("resolved" not in r for r in records[1:])


def test_ingest_names_the_link_and_builds_the_rest(linked_inputs, tmp_path, capsys):
    root, _ = linked_inputs
    sources = tmp_path / "sources.zarr"
    code = main(["ingest", str(root), str(sources), "--layout", "generic", "-q", "--workers", "1"])
    assert code == 1  # a study failed; the others are committed
    err = capsys.readouterr().err
    assert "FAILED outside: outside/ct.nii.gz is a symbolic link to" in err
    assert "FAILED elsewhere: elsewhere/ct.nii.gz is a symbolic link to" in err
    report = json.loads((tmp_path / "sources.zarr.failures.json").read_text())
    assert sorted(report["failures"]) == ["elsewhere", "outside"]
    again = ["ingest", str(root), str(sources), "--layout", "generic", "-q", "--workers", "1"]
    assert main([*again, "--follow-symlinks"]) == 0
    assert main([*again, "--max-voxels", "100"]) == 1
    assert "voxels, more than the limit of 100 (--max-voxels)" in capsys.readouterr().err


def test_limits_are_flags_of_the_file_layouts_only(tmp_path, capsys):
    out = str(tmp_path / "s.zarr")
    assert main(["ingest", out, "--layout", "phantom", "--follow-symlinks"]) == 2
    assert "--follow-symlinks applies to the" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", "in", out, "--layout", "generic", "--max-voxels", "0"])
    assert exit_info.value.code == 2
    assert "--max-voxels: 0 must be at least 1" in capsys.readouterr().err
    assert DEFAULT_MAX_VOXELS == 512 * 512 * 2048
