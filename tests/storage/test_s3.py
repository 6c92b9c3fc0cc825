"""Object storage end to end: a real S3-compatible server (moto) on loopback.

Inputs are put in one bucket, ``rga ingest`` reads them from ``s3://`` into an ``s3://``
sources store on a real local Dask cluster, ``rga build`` writes an ``s3://`` dataset, and
``open_catalog`` opens and slices it lazily. Credentials given as storage options never appear
in the terminal output, the logs, the failure report or anything written to the buckets.
"""

import json
import logging
import socket

import dask
import dask.array as da
import pytest
import s3fs
from digests import tree_digest
from moto.server import ThreadedMotoServer
from niftis import generic_study, ts_study

from catalog import open_catalog, select
from flows.cli import main
from flows.ingest import ingest
from flows.inputs.layouts import discover
from storage.files import Folder
from storage.location import StoreRef

KEY = "AKIAS3NTINELKEY12345"
SECRET = "s3ntinel/secret+value0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 and the storage options that reach it."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    options = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "key": KEY,
        "secret": SECRET,
        "client_kwargs": {"region_name": "us-east-1"},
    }
    plain = {k: v for k, v in options.items() if k != "client_kwargs"}
    for bucket in ("inputs", "out"):
        s3fs.S3FileSystem(**plain).mkdir(bucket)  # created without a region
    fs = s3fs.S3FileSystem(**options)
    yield fs, options
    server.stop()


@pytest.fixture(scope="module")
def inputs(s3, tmp_path_factory):
    """Generic studies (two good, one with a truncated CT) and a TotalSegmentator study."""
    fs, _ = s3
    local = tmp_path_factory.mktemp("inputs")
    for index, study_id in enumerate(("g1", "g2", "broken")):
        generic_study(local / "generic", study_id, seed=index)
    ct = local / "generic" / "broken" / "ct.nii.gz"
    ct.write_bytes(ct.read_bytes()[:200])
    ts_study(local / "ts", "s0001", multilabel=True)
    fs.put(str(local / "generic"), "inputs/generic", recursive=True)
    fs.put(str(local / "ts"), "inputs/ts", recursive=True)
    return local


def _flags(options) -> list[str]:
    return [
        f"--storage-option={k}={json.dumps(v) if isinstance(v, dict) else v}"
        for k, v in options.items()
    ]


def test_ingest_and_build_on_s3_then_read_lazily(s3, inputs, scheduler, capsys, caplog):
    fs, options = s3
    caplog.set_level(logging.DEBUG)
    run = ["--scheduler", scheduler, *_flags(options)]
    assert (
        main(
            [
                "-v",
                "ingest",
                "s3://inputs/generic",
                "s3://out/sources.zarr",
                "--layout",
                "generic",
                *run,
            ]
        )
        == 1
    )
    assert (
        main(
            [
                "ingest",
                "s3://inputs/ts",
                "s3://out/sources.zarr",
                "--layout",
                "totalsegmentator",
                *run,
            ]
        )
        == 0
    )
    assert (
        main(
            ["build", "s3://out/sources.zarr", "s3://out/dataset.zarr", "--image-size", "64", *run]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert "FAILED broken: broken/ct.nii.gz is truncated" in printed.err
    assert "Report: s3://out/sources.zarr.failures.json" in printed.err

    report = json.loads(fs.cat_file("out/sources.zarr.failures.json"))
    assert (
        list(report["failures"]) == ["broken"] and report["last_run"]["input"] == "s3://inputs/ts"
    )

    ds = open_catalog("s3://out/dataset.zarr", options)
    assert list(ds.study.values) == ["g1", "g2", "s0001"]
    heart = select(ds, label="heart", view="PA").mask
    assert isinstance(heart.data, da.Array)  # nothing read yet
    assert heart.sel(study="g1").values.sum() > 0
    assert select(ds, label="lung", view="LL").mask.sel(study="s0001").values.sum() > 0
    assert bool(ds.available.sel(study="s0001", label="left lung")) is True

    everything = printed.out + printed.err + caplog.text
    for name in fs.find("out"):
        everything += fs.cat_file(name).decode("utf-8", errors="replace")
    for secret in (KEY, SECRET):
        assert secret not in everything


def test_s3_and_local_inputs_give_identical_sources(s3, inputs, tmp_path):
    """Provenance is relative to INPUT, so the same files give the same bytes from anywhere."""
    _, options = s3
    stores = {}
    with dask.config.set(scheduler="synchronous"):
        for name, root in (
            ("from-s3", Folder("s3://inputs/generic", options)),
            ("from-disk", Folder(str(inputs / "generic"))),
        ):
            summary = ingest(discover("generic", root), StoreRef(str(tmp_path / name)))
            assert summary.ingested == ["g1", "g2"] and list(summary.failed) == ["broken"]
            stores[name] = tree_digest(tmp_path / name)
    assert stores["from-s3"] == stores["from-disk"]


def test_storage_options_from_the_dask_config(s3, inputs, tmp_path):
    """Without flags, rga.storage-options in the Dask config reaches the bucket."""
    _, options = s3
    with dask.config.set({"rga.storage-options": options, "scheduler": "synchronous"}):
        inputs_found = discover("generic", Folder("s3://inputs/generic"))
        assert [i.study_id for i in inputs_found] == ["broken", "g1", "g2"]
        summary = ingest(inputs_found[1:], StoreRef("s3://out/from-config.zarr"))
    assert summary.ingested == ["g1", "g2"]
