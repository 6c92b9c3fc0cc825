"""Paired model comparison (flows/compare.py): pairing, Bonferroni over the family, the tables
(flows/reports/comparison.py) and the command; the statistics: tests/flows/maths/test_paired.py."""

import csv
import re

import numpy as np
import pytest
import xarray as xr

from flows.cli import main
from flows.compare import compare_models
from flows.reports.comparison import pairs_table
from flows.reports.tables import to_markdown
from storage.location import StoreRef
from storage.results import create_results, mark_evaluated, results_template, write_results

OPTIONS = {"tolerance_mm": 2.0, "match_iou": 0.0}
VIEWS, LABELS = ["PA", "LL"], ["heart", "liver", "left lung", "rib 7"]


def _results(values, studies, options=OPTIONS, gt="gt.zarr"):
    """An in-memory results dataset: ``values`` maps metric -> (study, view, label) array."""
    case = ("study", "view", "label")
    return xr.Dataset(
        {name: (case, np.asarray(v, float)) for name, v in values.items()},
        coords={"study": studies, "view": VIEWS, "label": LABELS},
        attrs={"metric_options": dict(options), "ground_truth": gt},
    )


def test_bonferroni_covers_every_pair_and_metric():
    rng = np.random.default_rng(0)
    studies = [f"s{i}" for i in range(6)]
    base = rng.uniform(0.5, 0.9, (6, 2, 4))
    models = {
        name: _results({"dice": base + shift, "hd95": 10 - 5 * (base + shift)}, studies)
        for name, shift in [("A", 0.0), ("B", 0.05), ("C", 0.1)]
    }
    comparison = compare_models(models, ["dice", "hd95"], n_boot=500)
    assert comparison.family_size == 6 == len(comparison.tests)
    for t in comparison.tests:
        assert t.n == 8  # (view, label) classes
        assert t.p_wilcoxon_bonferroni == pytest.approx(min(1.0, 6 * t.p_wilcoxon))
        assert t.p_bootstrap_bonferroni == pytest.approx(min(1.0, 6 * t.p_bootstrap))
    by_pair = {(t.metric, t.model_a, t.model_b): t for t in comparison.tests}
    # every class improves by the same shift: exact Wilcoxon p for n = 8 is 2 / 256
    dice_ab = by_pair["dice", "A", "B"]
    assert dice_ab.p_wilcoxon == pytest.approx(2 / 256) and dice_ab.rank_biserial == -1.0
    assert dice_ab.better == "B" and dice_ab.significant
    assert by_pair["hd95", "A", "C"].better == "C"  # lower HD95 is better
    assert by_pair["hd95", "A", "C"].mean_diff > 0


def test_classes_pair_only_cases_every_model_defines():
    studies = ["s0", "s1", "s2"]
    a = np.full((3, 2, 4), 0.8)
    b = np.full((3, 2, 4), 0.6)
    a[0, 0, 0] = 0.2  # only counts where B is defined too
    b[0, 0, 0] = np.nan
    a[:, 1, 3] = np.nan  # a class model A never defines: dropped
    comparison = compare_models(
        {"A": _results({"dice": a}, studies), "B": _results({"dice": b}, studies)}, n_boot=200
    )
    (test,) = comparison.tests
    assert test.n == 7 and test.mean_a == pytest.approx(0.8) and test.mean_b == pytest.approx(0.6)


def test_only_studies_of_every_model_are_paired_and_the_others_listed():
    a = _results({"dice": np.full((4, 2, 4), 0.9)}, ["s0", "s1", "s2", "s3"])
    b = _results({"dice": np.full((4, 2, 4), 0.8)}, ["s1", "s2", "s3", "s4"])
    comparison = compare_models({"A": a, "B": b}, n_boot=200)
    assert comparison.studies == ["s1", "s2", "s3"]
    assert comparison.dropped == {"A": ["s0"], "B": ["s4"]}
    markdown = to_markdown(pairs_table(comparison))
    assert "3 studies common to all models" in markdown
    assert "A: 1 studies not evaluated for all models: s0" in markdown


def test_study_unit_tests_each_class_over_its_studies():
    rng = np.random.default_rng(1)
    studies = [f"s{i}" for i in range(10)]
    a = rng.uniform(0.6, 0.9, (10, 2, 4))
    b = a.copy()
    b[:, 0, 0] -= 0.2  # only PA heart differs
    comparison = compare_models(
        {"A": _results({"dice": a}, studies), "B": _results({"dice": b}, studies)},
        unit="study",
        n_boot=300,
    )
    assert comparison.family_size == 8
    groups = {t.group: t for t in comparison.tests}
    assert groups["PA heart"].n == 10 and groups["PA heart"].better == "A"
    assert groups["LL liver"].p_wilcoxon == 1.0 and groups["LL liver"].better == ""
    assert "| dice | A | B | 8 | 1 | 0 | 7 |" in to_markdown(pairs_table(comparison))


def test_incomparable_results_are_refused():
    studies = ["s0"]
    a = _results({"dice": np.ones((1, 2, 4))}, studies)
    b = _results({"dice": np.ones((1, 2, 4))}, studies, options={"tolerance_mm": 1.0})
    with pytest.raises(ValueError, match="different metric options"):
        compare_models({"A": a, "B": b})
    with pytest.raises(ValueError, match="at least two models"):
        compare_models({"A": a})
    c = _results({"dice": np.ones((1, 2, 4))}, ["s9"])
    with pytest.raises(ValueError, match="share no evaluated study"):
        compare_models({"A": a, "C": c})
    note = compare_models({"A": a, "D": _results({"dice": np.ones((1, 2, 4))}, studies, gt="x")})
    assert "D was scored against x" in note.notes[0]


def _write_store(folder, values, studies):
    """A real results store on disk, as ``rga evaluate`` lays it out."""
    ref = StoreRef(str(folder / "metrics.zarr"))
    coords = {
        "view": ("view", np.array(VIEWS, dtype=object)),
        "label": ("label", np.array(LABELS, dtype=object)),
    }
    attrs = {"metric_options": OPTIONS, "ground_truth": "gt.zarr"}
    create_results(ref, results_template(studies, list(values), coords, attrs))
    case = ("study", "view", "label")
    write_results(
        ref, xr.Dataset({m: (case, v) for m, v in values.items()}), slice(0, len(studies))
    )
    mark_evaluated(ref, slice(0, len(studies)), np.ones(len(studies), bool))


def test_compare_command_writes_the_tables(tmp_path, capsys):
    rng = np.random.default_rng(5)
    studies = ["s0", "s1", "s2"]
    base = rng.uniform(0.4, 0.8, (3, 2, 4))
    _write_store(tmp_path / "unet", {"dice": base, "nsd": base}, studies)
    _write_store(tmp_path / "segformer", {"dice": base + 0.1, "nsd": base}, studies)
    out = tmp_path / "cmp"
    args = [str(tmp_path / "unet"), str(tmp_path / "segformer"), "--metric", "dice", "nsd"]
    assert main(["compare", *args, "--bootstrap", "300", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Bonferroni over 2 tests" in printed
    assert re.search(r"^dice +unet +segformer +8 ", printed, re.M)
    assert "| dice | unet | segformer | 8 |" in (out / "comparison.md").read_text()
    with open(out / "models.csv", newline="") as handle:
        models = {r["model"]: r for r in csv.DictReader(handle)}
    assert float(models["segformer"]["dice"]) == pytest.approx(base.mean() + 0.1)
    assert float(models["unet"]["nsd"]) == pytest.approx(base.mean())
    assert models["unet"]["classes"] == "8" and models["unet"]["cases"] == "24"
    assert re.search(r"^segformer +8 +24 ", printed, re.M)
    with open(out / "comparison.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["metric"] for r in rows] == ["dice", "nsd"]
    assert rows[0]["better"] == "segformer" and rows[1]["better"] == ""
    assert float(rows[0]["mean_diff"]) == pytest.approx(-0.1)
    assert main(["compare", str(tmp_path / "unet"), str(tmp_path / "unet")]) == 2
    assert "model names must be unique" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "unet"), str(tmp_path / "none")]) == 1
    assert "no evaluation results" in capsys.readouterr().err
