"""The evaluation graph (flows/evaluate.py), its results store and PNG predictions."""

import csv
import re
import shutil

import dask
import numpy as np
import pytest
import s3fs
import zarr
from digests import tree_digest
from PIL import Image

from catalog import open_catalog
from flows.atlas import predict_atlas
from flows.cli import main
from flows.evaluate import evaluate
from flows.maths.metrics import METRICS, MetricOptions, pair_metrics
from storage.location import StoreRef
from storage.masks import PngFolder
from storage.results import open_results

TARGETS = ["phantom-0001", "phantom-0002"]


@pytest.fixture(autouse=True)
def in_process():
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture(scope="module")
def gt(demo_dir):
    return StoreRef(str(demo_dir / "dataset.zarr"))


@pytest.fixture(scope="module")
def truth(gt):
    return open_catalog(gt.url)[["mask", "pixel_spacing"]].load()


@pytest.fixture(scope="module")
def atlas(gt, tmp_path_factory):
    """A real, imperfect prediction store: the atlas of two studies for studies 1 and 2."""
    dest = StoreRef(str(tmp_path_factory.mktemp("atlas") / "atlas.zarr"))
    with dask.config.set(scheduler="threads"):
        predict_atlas(gt, dest, ["phantom-0000", "phantom-0001"], TARGETS, threshold=0.5)
    return dest


@pytest.fixture(scope="module")
def scored(gt, atlas, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scored") / "atlas-evaluation"
    with dask.config.set(scheduler="threads"):
        summary = evaluate(gt, atlas, StoreRef(str(folder)), MetricOptions(tolerance_mm=1.5))
    return folder, summary


def test_every_case_holds_the_metrics_of_its_mask_pair(truth, atlas, scored):
    folder, summary = scored
    assert summary.evaluated == TARGETS and not summary.failed
    assert summary.missing == ["phantom-0000"] and summary.unknown == []
    results = open_results(StoreRef(str(folder))).load()
    predicted = open_catalog(atlas.url).load()
    options = MetricOptions(tolerance_mm=1.5)
    s = 1  # phantom-0002: every view and class
    gt_masks = truth.mask.sel(study="phantom-0002").values
    spacing = truth.pixel_spacing.sel(study="phantom-0002").values
    for v in range(2):
        for i in range(truth.sizes["label"]):
            expected = pair_metrics(
                gt_masks[v, i], predicted.mask.values[s, v, i], spacing[v], options
            )
            got = np.array([results[m].values[s, v, i] for m in METRICS])
            assert np.array_equal(got, expected.values, equal_nan=True), (v, i)
            assert results.gt_components.values[s, v, i] == expected.gt_components
            assert results.pred_empty.values[s, v, i] == (expected.pred_components == 0)
    dice = results.dice.values
    assert np.nanmin(dice) < 0.9 < np.nanmax(dice)  # an imperfect predictor, really scored


def test_results_store_contract(truth, scored):
    folder, _ = scored
    results = open_results(StoreRef(str(folder)))
    for name in METRICS:
        assert results[name].dims == ("study", "view", "label")
        assert results[name].dtype == np.float64
    assert results.gt_available.dims == ("study", "label")
    assert results.gt_components.dtype == np.int32
    assert [str(s) for s in results.study.values] == TARGETS
    for coord in ("label", "view", "system", "level", "organ", "substructure"):
        assert [str(v) for v in results[coord].values] == [str(v) for v in truth[coord].values]
    assert np.array_equal(results.pathology.values, truth.pathology.values)
    assert [str(v) for v in results.split.values] == ["train", "train"]
    assert results.attrs["metric_options"] == {"tolerance_mm": 1.5, "match_iou": 0.0}
    assert results.attrs["studies_without_prediction"] == ["phantom-0000"]
    assert "hd95" in results.attrs["definitions"]
    assert results.evaluated.all()
    spacing = truth.pixel_spacing.sel(study=TARGETS).values
    assert np.array_equal(results.pixel_spacing.values, spacing)


def test_csv_and_tables_agree_with_the_store(scored):
    folder, _ = scored
    results = open_results(StoreRef(str(folder))).load()
    with open(folder / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 210
    labels = [str(v) for v in results.label.values]
    for row in rows[::37]:
        s, v = TARGETS.index(row["study"]), ["PA", "LL"].index(row["view"])
        i = labels.index(row["label"])
        for name in METRICS:
            value = results[name].values[s, v, i]
            assert (row[name] == "") if np.isnan(value) else float(row[name]) == value
        assert row["gt_empty"] == str(bool(results.gt_empty.values[s, v, i]))
    # class-balanced means recomputed independently from the store
    per_class = np.nanmean(results.dice.values, axis=0)  # (view, label)
    with open(folder / "summary.csv", newline="") as handle:
        summary = {(r["partition"], r["group"]): r for r in csv.DictReader(handle)}
    assert float(summary["overall", "all classes"]["dice"]) == pytest.approx(np.nanmean(per_class))
    assert float(summary["view", "LL"]["dice"]) == pytest.approx(np.nanmean(per_class[1]))
    leaf = results.level.values == "leaf"
    assert float(summary["level", "leaf"]["dice"]) == pytest.approx(np.nanmean(per_class[:, leaf]))
    lesion = results.pathology.values.astype(bool)
    hd = np.nanmean(results.hd95.values, axis=0)[:, lesion]
    assert float(summary["pathology", "pathology"]["hd95"]) == pytest.approx(np.nanmean(hd))
    assert int(summary["overall", "all classes"]["cases"]) == np.isfinite(results.dice).sum()
    markdown = (folder / "summary.md").read_text()
    assert "| overall | all classes | 420 |" in markdown and "| system | Cardiac |" in markdown
    with open(folder / "per_class.csv", newline="") as handle:
        first = next(csv.DictReader(handle))
    assert float(first["dice"]) == pytest.approx(per_class[0, 0])


def test_evaluation_is_deterministic(gt, atlas, scored, tmp_path):
    folder, _ = scored
    again = tmp_path / "again"
    evaluate(gt, atlas, StoreRef(str(again)), MetricOptions(tolerance_mm=1.5))
    assert tree_digest(again) == tree_digest(folder)


def test_self_evaluation_is_perfect_and_empty_pairs_are_flagged(gt, truth, tmp_path):
    summary = evaluate(gt, gt, StoreRef(str(tmp_path / "self")))
    assert len(summary.evaluated) == 3
    results = open_results(StoreRef(str(tmp_path / "self"))).load()
    present = ~results.gt_empty.values
    assert present.sum() > 0.95 * present.size
    for name, perfect in [("dice", 1), ("iou", 1), ("hd95", 0), ("asd", 0), ("nsd", 1)]:
        assert (results[name].values[present] == perfect).all(), name
    assert (results.det_f1.values[present] == 1).all()
    empty = results.gt_empty.values
    assert np.array_equal(empty, results.pred_empty.values)
    assert np.isnan(results.dice.values[empty]).all()


def test_png_folder_predictions_score_like_the_store(gt, truth, atlas, scored, tmp_path):
    folder, _ = scored
    predicted = open_catalog(atlas.url)
    views, labels = ["PA", "LL"], [str(v) for v in truth.label.values]
    pngs = PngFolder(str(tmp_path / "pngs"))
    pngs.write("phantom-0002", predicted.mask.sel(study="phantom-0002").values, views, labels)
    written = {p.name for p in (tmp_path / "pngs" / "phantom-0002" / "PA").iterdir()}
    assert "cervical vertebrae 1 (c1).png" in written  # names verbatim, spaces and all
    summary = evaluate(gt, pngs, StoreRef(str(tmp_path / "eval")), MetricOptions(tolerance_mm=1.5))
    assert summary.evaluated == ["phantom-0002"]
    assert summary.missing == ["phantom-0000", "phantom-0001"]
    from_png = open_results(StoreRef(str(tmp_path / "eval"))).load()
    from_store = open_results(StoreRef(str(folder))).sel(study=["phantom-0002"]).load()
    for name in METRICS:
        assert np.array_equal(from_png[name].values, from_store[name].values, equal_nan=True)


def test_bad_predictions_fail_alone_with_their_study_named(gt, truth, tmp_path, capsys):
    root = tmp_path / "pngs"
    (root / "phantom-0000" / "PA").mkdir(parents=True)  # no files: every mask predicted empty
    (root / "phantom-0001" / "PA").mkdir(parents=True)
    Image.fromarray(np.full((384, 384), 255, np.uint8)).save(root / "phantom-0001/PA/hart.png")
    (root / "phantom-0002" / "LL").mkdir(parents=True)
    Image.fromarray(np.zeros((100, 384), np.uint8)).save(root / "phantom-0002/LL/heart.png")
    (root / "not-a-study").mkdir()
    dest = tmp_path / "eval"
    code = main(["evaluate", str(root), str(dest), "--gt", gt.url, "--scheduler", "threads"])
    printed = capsys.readouterr()
    out, err = printed.out, printed.err  # results on stdout; what failed on stderr
    assert code == 1
    assert "FAILED phantom-0001: ValueError: study phantom-0001: PA/hart.png names no class" in err
    assert "FAILED phantom-0002" in err and "is 384 x 100 pixels" in err
    assert f"1 studies of {root} are not in the ground truth: not-a-study" in err
    assert "FAILED" not in out
    results = open_results(StoreRef(str(dest)))
    assert [str(s) for s in results.study.values] == ["phantom-0000"]
    everything = open_results(StoreRef(str(dest)), include_unevaluated=True)
    assert everything.evaluated.values.tolist() == [True, False, False]
    present = ~results.gt_empty.values
    assert results.pred_empty.all() and (results.dice.values[present] == 0).all()
    assert re.search(r"^overall +all classes +420 ", out, re.M)  # the headline of what was scored


def test_unavailable_classes_and_uncommitted_studies_are_not_scored(
    demo_dir, truth, atlas, tmp_path
):
    copy = tmp_path / "dataset.zarr"
    shutil.copytree(demo_dir / "dataset.zarr", copy)
    heart = [str(v) for v in truth.label.values].index("heart")
    zarr.open_array(copy / "available", mode="r+")[2, heart] = False
    zarr.open_array(copy / "committed", mode="r+")[1] = False
    summary = evaluate(StoreRef(str(copy)), atlas, StoreRef(str(tmp_path / "eval")))
    assert summary.evaluated == ["phantom-0002"]
    assert summary.missing == ["phantom-0000"] and summary.unknown == ["phantom-0001"]
    results = open_results(StoreRef(str(tmp_path / "eval"))).load()
    assert not results.gt_available.values[0, heart]
    assert np.isnan(results.dice.values[0, :, heart]).all()
    assert (results.gt_components.values[0, :, heart] == -1).all()
    assert np.isfinite(results.dice.values[0, :, heart + 1]).all()


def test_evaluate_command_errors(gt, scored, tmp_path, capsys):
    missing, dest = str(tmp_path / "nothing"), str(tmp_path / "e")
    assert main(["evaluate", missing, dest, "--gt", gt.url]) == 1  # bad input
    assert "no prediction store or folder of masks (PNG, nnU-Net)" in capsys.readouterr().err
    assert main(["evaluate", gt.url, dest, "--gt", missing]) == 1
    assert "no ground-truth dataset store" in capsys.readouterr().err
    results = str(scored[0] / "metrics.zarr")
    assert main(["evaluate", results, dest, "--gt", gt.url]) == 1
    assert "is a Zarr store but not in the dataset schema" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(
        ["evaluate", str(empty), dest, "--gt", gt.url, "--split", "x", "--scheduler", "threads"]
    )
    assert code == 2
    assert "no split 'x'" in capsys.readouterr().err


@pytest.fixture
def s3(s3_server):
    """Storage options that reach the session's S3 server, with this test's bucket made."""
    s3fs.S3FileSystem(**s3_server).mkdir("evaluation-bucket")
    return s3_server


def test_evaluation_on_object_storage(demo_dir, atlas, s3, tmp_path):
    fs = s3fs.S3FileSystem(**s3)
    fs.put(str(demo_dir / "dataset.zarr"), "evaluation-bucket/dataset.zarr", recursive=True)
    gt = StoreRef("s3://evaluation-bucket/dataset.zarr", s3)
    truth = open_catalog(gt)
    labels = [str(v) for v in truth.label.values]
    predicted = open_catalog(atlas.url).mask.sel(study="phantom-0002").values.copy()
    predicted[:, 8:] = False  # a few files keep the object store round trips few
    remote_pngs, local_pngs = (
        PngFolder("s3://evaluation-bucket/pngs", s3),
        PngFolder(str(tmp_path / "p")),
    )
    for pngs in (remote_pngs, local_pngs):
        pngs.write("phantom-0002", predicted, ["PA", "LL"], labels)
    flags = [f"--storage-option={key}={value}" for key, value in s3.items()]
    flags += ["--tolerance-mm", "1.5", "--scheduler", "threads"]
    code = main(
        ["evaluate", remote_pngs.url, "s3://evaluation-bucket/evaluation", "--gt", gt.url, *flags]
    )
    assert code == 0
    dest = StoreRef("s3://evaluation-bucket/evaluation", s3)
    evaluate(gt, local_pngs, StoreRef(str(tmp_path / "e")), MetricOptions(tolerance_mm=1.5))
    remote = open_results(dest).load()
    local = open_results(StoreRef(str(tmp_path / "e"))).load()
    for name in METRICS:
        assert np.array_equal(remote[name].values, local[name].values, equal_nan=True)
    assert np.isfinite(remote.dice.values[0, :, :8]).all() and remote.pred_empty[0, :, 8:].all()
    assert fs.cat("evaluation-bucket/evaluation/summary.md").startswith(b"### ")
    assert len(fs.cat("evaluation-bucket/evaluation/metrics.csv").splitlines()) == 1 + 2 * 210
