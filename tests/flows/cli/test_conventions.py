"""The conventions every ``rga`` command follows (flows/cli/options.py, README "Commands"):
``--storage-option`` wherever a store is opened, exit status 2 for usage errors and 1 for bad
input, data on stdout and progress, warnings and errors on stderr."""

from pathlib import Path

import dask
import numpy as np
import pytest
import s3fs
from niftis import generic_study
from PIL import Image

from catalog import open_catalog
from flows.cli import main
from storage.masks import PngFolder

HERE = ["--scheduler", "synchronous"]
HARMLESS = ["--storage-option", "auto_mkdir=true", "--storage-option", 'client_kwargs={"a": 1}']
STUDY = "phantom-0000"
PHANTOM = ["--studies", "1", "--shape", "32", "32", "40"]
KEY, SECRET = "conventions-key-sentinel", "conventions/secret+sentinel42"


def _run(argv: list[str]) -> int:
    """``rga ARGV`` in this process; argparse's own errors come back as their exit status."""
    try:
        return main(argv)
    except SystemExit as done:
        return int(done.code)


@pytest.fixture(scope="module")
def stores(demo_dir, tmp_path_factory) -> dict[str, str]:
    """The demo's stores, one study's masks as PNGs, and an evaluation of them."""
    folder = tmp_path_factory.mktemp("conventions")
    dataset = str(demo_dir / "dataset.zarr")
    truth = open_catalog(dataset)
    pngs = PngFolder(str(folder / "pngs"))
    one = truth.sel(study=STUDY)
    pngs.write(STUDY, one.mask.values, list(truth.view.values), list(truth.label.values))
    evaluation = str(folder / "evaluation")
    assert main(["evaluate", pngs.url, evaluation, "--gt", dataset, "--scheduler", "threads"]) == 0
    return {
        "sources": str(demo_dir / "sources.zarr"),
        "dataset": dataset,
        "pngs": pngs.url,
        "evaluation": evaluation,
    }


STORE_COMMANDS = (
    *("ingest", "build", "update", "log", "info"),
    *("evaluate", "compare", "atlas"),
    *("stats", "measure", "preview"),
    "export",
)


def _real_run(command: str, s: dict[str, str], out: str) -> list[str]:
    """A run of ``command`` on local stores (whatever it writes goes under ``out``)."""
    dataset, small = s["dataset"], ["--image-size", "32", *HERE]
    return {
        "ingest": ["ingest", f"{out}/s.zarr", "--layout", "phantom", *PHANTOM, *HERE],
        "build": ["build", s["sources"], f"{out}/d.zarr", *small],
        "update": ["update", s["sources"], f"{out}/d.zarr", *small],
        "log": ["log", dataset],
        "info": ["info", dataset],
        "evaluate": ["evaluate", s["pngs"], f"{out}/e", "--gt", dataset, *HERE],
        "compare": ["compare", s["evaluation"], s["evaluation"], "--names", "a", "b", "--out", out],
        "atlas": ["atlas", dataset, f"{out}/a.zarr", "--split", "train", *HERE],
        "stats": ["stats", dataset, "--bootstrap", "20"],
        "measure": ["measure", dataset, "--bootstrap", "20", *HERE],
        "preview": ["preview", dataset, STUDY, "--out", f"{out}/p.png", "--labels", "heart"],
        "export": ["export", dataset, f"{out}/x", "--format", "chexmask", *HERE],
    }[command]


@pytest.mark.parametrize("command", STORE_COMMANDS)
def test_every_command_that_opens_a_store_takes_storage_options(
    command, stores, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal must not split the key's name
    assert _run([command, "--help"]) == 0
    helped = capsys.readouterr().out
    assert "--storage-option KEY=VALUE" in helped and "rga.storage-options" in helped
    argv = _real_run(command, stores, str(tmp_path))
    assert _run([*argv, *HARMLESS]) == 0, capsys.readouterr().err
    printed = capsys.readouterr()
    assert printed.out.strip(), f"rga {command} printed no data on stdout"
    assert "Traceback" not in printed.err


def test_a_bad_storage_option_is_a_usage_error(stores, capsys):
    assert _run(["info", stores["dataset"], "--storage-option", "no-equals-sign"]) == 2
    printed = capsys.readouterr()
    assert "must look like KEY=VALUE" in printed.err and printed.out == ""
    with dask.config.set({"rga.storage-options": "not a mapping"}):
        assert _run(["stats", stores["dataset"]]) == 2
    assert "rga.storage-options must be a mapping" in capsys.readouterr().err


@pytest.fixture
def bucket(s3_server, demo_dir) -> str:
    """The demo dataset in a bucket of the loopback S3 server."""
    fs = s3fs.S3FileSystem(**s3_server)
    fs.mkdir("conventions")
    fs.put(str(demo_dir / "dataset.zarr"), "conventions/dataset.zarr", recursive=True)
    return "s3://conventions/dataset.zarr"


def test_read_side_commands_reach_s3_with_flags_or_the_dask_config(
    bucket, s3_server, tmp_path, capsys
):
    options = {**s3_server, "key": KEY, "secret": SECRET}  # the server takes any credentials
    flags = [f"--storage-option={key}={value}" for key, value in options.items()]
    assert main(["info", bucket, *flags]) == 0
    assert main(["log", bucket, *flags]) == 0
    out = tmp_path / "p.png"
    assert main(["preview", bucket, STUDY, "--out", str(out), "--labels", "heart", *flags]) == 0
    printed = capsys.readouterr()
    assert f"Dataset {bucket}" in printed.out and "studies: 3 committed of 3" in printed.out
    assert "+3 added" in printed.out and f"Wrote {out}" in printed.out
    with dask.config.set({"rga.storage-options": options}):  # no flags at all
        assert main(["stats", bucket, "--bootstrap", "20"]) == 0
        assert main(["info", bucket]) == 0
    later = capsys.readouterr()
    assert "Inventory" in later.out or "inventory" in later.out.lower()
    for text in (printed.out, printed.err, later.out, later.err):
        assert KEY not in text and SECRET not in text  # credentials are never printed
    assert main(["info", "s3://conventions/none.zarr", *flags]) == 1
    assert "no dataset store at s3://conventions/none.zarr" in capsys.readouterr().err


def _usage_and_bad_input(stores: dict[str, str], tmp: Path) -> dict[str, list]:
    missing, dataset, out = str(tmp / "missing.zarr"), stores["dataset"], str(tmp / "out")
    return {
        "dataset": [
            (["ingest", out, "--layout", "phantom", "--studies", "0"], 2, "must be at least 1"),
            (["ingest", "in", out, "--layout", "generic", "--spacing", "1", "1", "1"], 2, "only"),
            (["build", stores["sources"], out, "--image-size", "8"], 2, "image size must be"),
            (["update"], 2, "the following arguments are required"),
            (["log", dataset, "--storage-option", "x"], 2, "must look like KEY=VALUE"),
            (["ingest", str(tmp / "nowhere"), out, "--layout", "generic"], 1, "no input folder"),
            (["info", missing], 1, "no dataset store at"),
            (["log", missing], 1, "no dataset store at"),
            (["build", missing, out], 1, "no sources store at"),
            (["update", missing, out, *HERE], 1, "no sources store at"),
        ],
        "evaluation": [
            (["compare", stores["evaluation"]], 2, "at least two models"),
            (["compare", "a", "b", "--names", "x"], 2, "2 results but 1 names"),
            (["evaluate", stores["pngs"], out, "--gt", dataset, "--split", "nope"], 2, "no split"),
            (["atlas", dataset, out, "--split", "valid"], 2, "at least one target study"),
            (["atlas", dataset, out, "--threshold", "2"], 2, "must be in (0, 1]"),
            (["evaluate", missing, out, "--gt", dataset], 1, "no prediction store or folder"),
            (["evaluate", stores["pngs"], out, "--gt", missing], 1, "no ground-truth dataset"),
            (["compare", missing, stores["evaluation"]], 1, "no evaluation results"),
            (["atlas", missing, out], 1, "no dataset store at"),
        ],
        "reports": [
            (["stats", dataset, "--bootstrap", "0"], 2, "--bootstrap must be at least 1"),
            (["stats", dataset, "--ctr-cutpoints", "3", "2", "1"], 2, "must increase strictly"),
            (["measure", stores["pngs"], *HERE], 2, "give --pixel-spacing MM or --dest"),
            (["preview", dataset, "nope", "--out", f"{out}.png"], 2, "no committed study 'nope'"),
            (["preview", dataset, STUDY, "--labels", "hart", "--out", f"{out}.png"], 2, "hart"),
            (["stats", missing], 1, "no dataset store at"),
            (["measure", missing, *HERE], 1, "no dataset store or folder of PNG masks"),
            (["measure", dataset, "--dest", missing, *HERE], 1, "no dataset store at"),
            (["preview", missing, STUDY], 1, "no dataset store at"),
        ],
        "export": [
            (["export", dataset, out, "--format", "coco", "--view", "AP", *HERE], 2, "'AP'"),
            (["export", dataset, out, "--format", "nnunet", "--dataset-id", "1000"], 2, "1..999"),
            (["export", dataset, out, "--format", "tiff"], 2, "invalid choice: 'tiff'"),
            (["export", missing, out, "--format", "coco"], 1, "no dataset store at"),
            (["export", stores["pngs"], out, "--format", "png"], 1, "no dataset store at"),
        ],
    }


@pytest.mark.parametrize("group", ["dataset", "evaluation", "reports", "export"])
def test_usage_errors_exit_2_and_bad_input_exits_1(group, stores, tmp_path, capsys):
    cases = _usage_and_bad_input(stores, tmp_path)[group]
    assert {code for _, code, _ in cases} == {1, 2}  # each group has both kinds
    for argv, code, message in cases:
        assert _run(argv) == code, (argv, capsys.readouterr().err)
        printed = capsys.readouterr()
        assert message in printed.err, (argv, printed.err)
        assert printed.out == "" and "Traceback" not in printed.err, argv
    assert not (tmp_path / "out").exists()  # nothing was written


def test_data_goes_to_stdout_and_progress_and_failures_to_stderr(stores, tmp_path, capsys):
    assert main(["info", stores["dataset"]]) == 0
    info = capsys.readouterr()
    assert "labels: 210 classes in 10 regions" in info.out and info.err == ""

    generic_study(tmp_path / "in", "good")
    broken = generic_study(tmp_path / "in", "broken") / "ct.nii.gz"
    broken.write_bytes(broken.read_bytes()[:100])
    sources = tmp_path / "s.zarr"
    argv = ["ingest", str(tmp_path / "in"), str(sources), "--layout", "generic", *HERE]
    assert main(argv) == 1
    ingested = capsys.readouterr()
    assert "Ingested 1 studies" in ingested.out and "; 1 failed" in ingested.out  # the summary
    assert "FAILED broken: " in ingested.err and "FAILED broken" not in ingested.out
    assert f"Report: {sources}.failures.json" in ingested.err and "Report" not in ingested.out
    assert "Ingesting 2 studies" in ingested.err and "ingest: 2/2 studies" in ingested.err

    # evaluate: one study scored, one unreadable, one without a prediction
    pngs = tmp_path / "pngs"
    (pngs / STUDY).mkdir(parents=True)
    (pngs / "phantom-0001" / "PA").mkdir(parents=True)
    Image.fromarray(np.zeros((100, 384), np.uint8)).save(pngs / "phantom-0001/PA/heart.png")
    argv = ["evaluate", str(pngs), str(tmp_path / "e"), "--gt", stores["dataset"]]
    assert main([*argv, "--scheduler", "threads"]) == 1
    scored = capsys.readouterr()
    assert "Evaluated 1 studies" in scored.out and "overall" in scored.out  # the headline
    assert "FAILED phantom-0001" in scored.err and "FAILED" not in scored.out
    assert "1 ground-truth studies have no prediction: phantom-0002" in scored.err
    assert "evaluate: 2/2 studies" in scored.err and "evaluate:" not in scored.out
