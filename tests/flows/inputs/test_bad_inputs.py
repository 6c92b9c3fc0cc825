"""Bad studies are quarantined: named errors, the rest ingested, earlier studies untouched.

Everything runs through ``rga ingest`` on a real local Dask cluster (scheduler and worker
processes on loopback), with real NIfTI files broken the ways real data breaks.
"""

import contextlib
import gzip
import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
from digests import tree_digest
from niftis import AFFINE, BOXES, ct_array, generic_study, mask_array, save, ts_study

from flows.cli import main
from storage.location import StoreRef
from storage.sources import list_studies


def _pixdim(path: Path, value: float) -> None:
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[80:84] = np.float32(value).tobytes()  # pixdim[1]
    path.write_bytes(gzip.compress(bytes(raw)))


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _save_ct(study: Path, array: np.ndarray) -> None:
    save(study / "ct.nii.gz", array)


def _nan_ct() -> np.ndarray:
    ct = ct_array().astype(np.float32)
    ct[3, 3, 3], ct[4, 4, 4] = np.nan, np.inf
    return ct


def _shifted() -> np.ndarray:
    affine = AFFINE.copy()
    affine[2, 3] += 10.0
    return affine


HEART = "heart.nii.gz"
# study id -> (how its files are broken, the error it must get)
CASES = {
    "truncated-ct": (
        lambda s: _truncate(s / "ct.nii.gz", 300),
        "truncated-ct/ct.nii.gz is truncated: its gzip stream ends early",
    ),
    "not-nifti": (
        lambda s: (s / "ct.nii.gz").write_bytes(b"<html>Access denied</html>\n" * 20),
        "not-nifti/ct.nii.gz is not a NIfTI file",
    ),
    "flat-2d": (lambda s: _save_ct(s, ct_array()[:, :, 0]), "flat-2d/ct.nii.gz is 2D"),
    "series-4d": (
        lambda s: _save_ct(s, np.stack([ct_array(), ct_array()], axis=-1)),
        "series-4d/ct.nii.gz is 4D (shape 24 x 20 x 16 x 2)",
    ),
    "mask-shape": (
        lambda s: save(s / "masks" / HEART, mask_array(BOXES["heart"])[:, :, :15]),
        "mask-shape/masks/heart.nii.gz has shape 24 x 20 x 15 but the CT mask-shape/ct.nii.gz "
        "has 24 x 20 x 16",
    ),
    "mask-affine": (
        lambda s: save(s / "masks" / HEART, mask_array(BOXES["heart"]), _shifted()),
        "mask-affine/masks/heart.nii.gz is not on the CT's grid: its voxel corners lie up to 10 mm",
    ),
    "nan-ct": (
        lambda s: _save_ct(s, _nan_ct()),
        "nan-ct/ct.nii.gz contains 1 NaN and 1 infinite voxels",
    ),
    "zero-spacing": (
        lambda s: _pixdim(s / "ct.nii.gz", 0.0),
        "zero-spacing/ct.nii.gz has zero, negative or non-finite voxel spacing in its header "
        "(pixdim 0 x 1.5 x 2.5 mm)",
    ),
    "negative-spacing": (
        lambda s: _pixdim(s / "ct.nii.gz", -1.5),
        "(pixdim -1.5 x 1.5 x 2.5 mm)",
    ),
    "unknown-name": (
        lambda s: save(s / "masks" / "hearts.nii.gz", mask_array(BOXES["heart"])),
        "unknown-name/masks/hearts.nii.gz: label name 'hearts' maps to nothing",
    ),
    "two-files": (
        lambda s: nib.save(
            nib.Nifti1Image(mask_array(BOXES["heart"]), AFFINE), s / "masks" / "heart.nii"
        ),
        "two mask files map to the class 'heart': heart.nii and heart.nii.gz (in two-files/masks)",
    ),
    "no-masks": (lambda s: shutil.rmtree(s / "masks"), "no masks: no-masks/masks/ holds no"),
    "missing-ct": (lambda s: (s / "ct.nii.gz").unlink(), "missing CT: no ct.nii.gz in missing-ct/"),
    "truncated-mask": (
        lambda s: _truncate(s / "masks" / "left lung upper lobe.nii.gz", 200),
        "truncated-mask/masks/left lung upper lobe.nii.gz is truncated",
    ),
    "odd name": (lambda s: None, "study id 'odd name' is not allowed"),
}


def _ingest(root: Path, store: Path, scheduler: str, *extra: str) -> int:
    return main(
        ["ingest", str(root), str(store), "--layout", "generic", "--scheduler", scheduler, *extra]
    )


def _study_bytes(store: Path, study_id: str) -> dict[str, str]:
    return tree_digest(store / "studies" / study_id)


@pytest.fixture(scope="module")
def quarantine(tmp_path_factory, scheduler) -> SimpleNamespace:
    """Two good studies ingested; then every study, good and bad, ingested again with one more."""
    folder = tmp_path_factory.mktemp("quarantine")
    root, store = folder / "in", folder / "sources.zarr"
    for index, study_id in enumerate(("g1", "g2", "g3")):
        generic_study(root, study_id, seed=index)
    assert _ingest(root, store, scheduler, "--study", "g1", "--study", "g2") == 0
    before = {s: _study_bytes(store, s) for s in ("g1", "g2")}
    root_meta = (store / "zarr.json").read_bytes()
    few = {name: BOXES[name] for name in ("heart", "left lung upper lobe")}
    for study_id, (breaks, _) in CASES.items():
        breaks(generic_study(root, study_id, few))
    printed, noted = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(noted):
        code = _ingest(root, store, scheduler)
    return SimpleNamespace(
        code=code,
        out=printed.getvalue(),  # the summary line (data)
        err=noted.getvalue(),  # each failure and the report's path
        report=json.loads((folder / "sources.zarr.failures.json").read_text()),
        report_path=folder / "sources.zarr.failures.json",
        root=root,
        store=store,
        before=before,
        after={s: _study_bytes(store, s) for s in ("g1", "g2")},
        root_meta=(root_meta, (store / "zarr.json").read_bytes()),
    )


@pytest.mark.parametrize("study_id", list(CASES))
def test_each_bad_study_fails_with_a_sentence_naming_it(quarantine, study_id):
    error = quarantine.report["failures"][study_id]
    assert CASES[study_id][1] in error
    shown = repr(study_id) if " " in study_id else study_id
    assert f"  FAILED {shown}: {error}" in quarantine.err
    assert not (quarantine.store / "studies" / study_id).exists()


def test_the_good_studies_are_ingested_and_earlier_ones_untouched(quarantine):
    assert quarantine.code == 1
    assert f"Ingested 3 studies into {quarantine.store}" in quarantine.out
    assert f"; {len(CASES)} failed" in quarantine.out and "FAILED" not in quarantine.out
    assert f"Report: {quarantine.report_path}" in quarantine.err
    assert set(quarantine.report["failures"]) == set(CASES)
    assert quarantine.report["last_run"] == {
        "layout": "generic",
        "input": str(quarantine.root),
        "studies": 3 + len(CASES),
        "ingested": 3,
        "failed": len(CASES),
    }
    # g1 and g2 were re-ingested from the same files: byte for byte what they were
    assert quarantine.after == quarantine.before
    assert quarantine.root_meta[0] == quarantine.root_meta[1]
    complete = [s.study_id for s in list_studies(StoreRef(str(quarantine.store)))]
    assert complete == ["g1", "g2", "g3"]
    assert "Traceback" not in quarantine.out + quarantine.err


def test_study_ids_cannot_escape_the_store(tmp_path, scheduler, capsys):
    root, store = tmp_path / "in", tmp_path / "data" / "sources.zarr"
    generic_study(root, "g1")
    (tmp_path / "x").mkdir()
    generic_study(tmp_path / "x", "ct-outside")  # what ../x would reach from INPUT
    escapes = ["../x", str(tmp_path / "x"), "g1/../../x", "tab\there", "ünïcode"]
    flags = [arg for study_id in escapes for arg in ("--study", study_id)]
    assert _ingest(root, store, scheduler, *flags, "--study", "g1") == 1
    out = capsys.readouterr().err
    report = json.loads((tmp_path / "data" / "sources.zarr.failures.json").read_text())
    assert sorted(report["failures"]) == sorted(escapes)
    for study_id in escapes:
        assert f"study id {study_id!r} is not allowed" in report["failures"][study_id]
        assert f"FAILED {study_id!r}: " in out or f"FAILED {study_id}: " in out
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "sources.zarr",
        "sources.zarr.failures.json",
    ]
    assert sorted(p.name for p in (store / "studies").iterdir()) == ["g1", "zarr.json"]


def test_a_failed_reingest_keeps_the_earlier_version(tmp_path, scheduler, capsys):
    root, store = tmp_path / "in", tmp_path / "sources.zarr"
    generic_study(root, "g1")
    assert _ingest(root, store, scheduler) == 0
    before = _study_bytes(store, "g1")
    mask = root / "g1" / "masks" / "heart.nii.gz"
    data = bytearray(gzip.decompress(mask.read_bytes()))
    data[-200:] = b"\x07" * 200  # voxel values that are not binary, found only when read
    mask.write_bytes(gzip.compress(bytes(data)))
    assert _ingest(root, store, scheduler) == 1
    assert "g1/masks/heart.nii.gz is not a binary mask" in capsys.readouterr().err
    assert _study_bytes(store, "g1") == before
    assert [s.study_id for s in list_studies(StoreRef(str(store)))] == ["g1"]


def test_the_report_keeps_failures_until_they_are_fixed(tmp_path, scheduler):
    root, store = tmp_path / "in", tmp_path / "sources.zarr"
    generic_study(root, "g1")
    generic_study(root, "b1")
    (root / "b1" / "ct.nii.gz").write_bytes(b"not an image")
    assert _ingest(root, store, scheduler) == 1
    assert _ingest(root, store, scheduler, "--study", "g1") == 0  # b1 not attempted: still failed
    report = json.loads((tmp_path / "sources.zarr.failures.json").read_text())
    assert list(report["failures"]) == ["b1"]
    generic_study(root, "b1")  # fixed
    assert _ingest(root, store, scheduler, "--study", "b1") == 0
    assert json.loads((tmp_path / "sources.zarr.failures.json").read_text())["failures"] == {}


def test_same_inputs_give_byte_identical_sources(tmp_path, scheduler):
    """Two ingests of the same files (three layouts' worth of inputs) write the same bytes."""
    generic = tmp_path / "generic"
    for index in range(3):
        generic_study(generic, f"s{index}", seed=index)
    ts = tmp_path / "ts"
    ts_study(ts, "binary")
    ts_study(ts, "multi", multilabel=True)
    digests = []
    for name in ("one.zarr", "two.zarr"):
        store = tmp_path / name
        assert _ingest(generic, store, scheduler) == 0
        flags = ["--layout", "totalsegmentator", "--scheduler", scheduler]
        assert main(["ingest", str(ts), str(store), *flags]) == 0
        digests.append(tree_digest(store))
    assert digests[0] == digests[1]
    assert len(digests[0]) > 20


def test_spacing_flags_are_checked_before_anything_runs(tmp_path, capsys):
    args = ["ingest", str(tmp_path), str(tmp_path / "s.zarr"), "--spacing", "1", "0", "3"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--layout", "radgenome"])
    assert exit_info.value.code == 2
    assert "must be a positive number of mm" in capsys.readouterr().err
    args[-2] = "1"
    assert main([*args, "--layout", "generic"]) == 2
    assert "--spacing applies to the radgenome layout only" in capsys.readouterr().err
    assert not (tmp_path / "s.zarr").exists()


def test_unusable_arguments_stop_before_any_study_is_read(tmp_path, capsys):
    ts_study(tmp_path / "in", "s1")
    (tmp_path / "dup.csv").write_text("id,name\n51,heart\n52,heart\n")
    found, store = str(tmp_path / "in"), str(tmp_path / "s.zarr")
    ts = [found, store, "--layout", "totalsegmentator"]
    cases = [  # what the command line gets wrong is a usage error (2); what it reads, input (1)
        ([str(tmp_path / "nowhere"), store, "--layout", "generic"], 1, "no input folder at"),
        ([*ts, "--class-map", str(tmp_path / "none.csv")], 1, "none.csv does not exist"),
        ([*ts, "--class-map", str(tmp_path / "dup.csv")], 1, "both map to the class 'heart'"),
        ([found, store, "--layout", "radgenome", "--orientation", "RAR"], 2, "three letters"),
        ([found, store, "--layout", "generic", "--class-map", "x.csv"], 2, "applies to the total"),
        ([store, "--layout", "generic"], 2, "needs INPUT and SOURCES"),
    ]
    for args, code, message in cases:
        assert main(["ingest", *args]) == code, args
        assert message in capsys.readouterr().err, args
    assert not (tmp_path / "s.zarr").exists()
