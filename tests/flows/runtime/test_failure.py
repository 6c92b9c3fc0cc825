"""A study that fails on a worker: one sentence by default, its full traceback with -v.

``rga`` runs as a user runs it (a subprocess with its own local cluster of worker processes),
so the traceback has to travel from the worker process back to the terminal.
"""

import subprocess
import sys

import numpy as np
from niftis import generic_study

from flows.runtime.failure import capture


def _rga(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "flows.cli", *args, "--workers", "1"]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)


def _inputs(tmp_path):
    inputs = tmp_path / "in"
    generic_study(inputs, "good")
    broken = generic_study(inputs, "broken")
    (broken / "ct.nii.gz").write_bytes((broken / "ct.nii.gz").read_bytes()[:300])  # truncated
    return inputs


def test_an_ingest_failure_is_one_sentence_and_its_traceback_with_v(tmp_path):
    inputs, sentence = _inputs(tmp_path), "broken/ct.nii.gz is truncated"
    quiet = _rga("ingest", str(inputs), str(tmp_path / "a.zarr"), "--layout", "generic")
    assert quiet.returncode == 1 and sentence in quiet.stdout + quiet.stderr
    assert "Traceback" not in quiet.stdout + quiet.stderr
    verbose = _rga("-v", "ingest", str(inputs), str(tmp_path / "b.zarr"), "--layout", "generic")
    assert verbose.returncode == 1 and sentence in verbose.stdout + verbose.stderr
    assert "ingest of study broken failed on its worker:\nTraceback" in verbose.stderr
    assert "flows/inputs/nifti.py" in verbose.stderr  # frames of the worker, not of the client


def test_a_build_failure_on_a_worker_shows_its_traceback_with_v(tmp_path):
    sources = tmp_path / "s.zarr"
    ingested = _rga("ingest", str(_inputs(tmp_path)), str(sources), "--layout", "generic")
    assert ingested.returncode == 1  # "broken" failed; "good" is in the sources
    [chunk] = [p for p in (sources / "studies" / "good" / "ct").rglob("c/*/*/*") if p.is_file()]
    chunk.write_bytes(b"not blosc")  # the study's CT can no longer be decoded
    quiet = _rga("build", str(sources), str(tmp_path / "d1.zarr"))
    assert quiet.returncode == 1 and "FAILED good: " in quiet.stdout + quiet.stderr
    assert "Traceback" not in quiet.stdout + quiet.stderr
    verbose = _rga("-v", "build", str(sources), str(tmp_path / "d2.zarr"))
    assert verbose.returncode == 1
    assert "projection of study good failed on its worker:\nTraceback" in verbose.stderr
    assert "storage/sources.py" in verbose.stderr


def test_a_captured_failure_keeps_the_sentence_and_the_frames():
    try:
        np.zeros(3).reshape(2, 2)
    except ValueError as error:
        failure = capture(error)
    assert str(failure) == failure.message
    assert failure.message.startswith("ValueError: cannot reshape")
    assert failure.details.startswith("Traceback") and __file__ in failure.details
    assert capture(KeyError("x"), "study s: no such key").message == "study s: no such key"
    secret = failure.redacted(lambda text: text.replace("reshape", "***"))
    assert "reshape" not in secret.message + secret.details
