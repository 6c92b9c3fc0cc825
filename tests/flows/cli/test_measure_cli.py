"""``rga measure``: predicted masks in the dataset schema or as PNG folders, and agreement with
reference grades."""

import csv
import json

import numpy as np
import pytest

from catalog import load_taxonomy, open_catalog
from flows.cli import main
from flows.measure import MEASUREMENT_VARIABLES, measure
from flows.predictions import open_predictions
from storage.masks import PngFolder

RUN_HERE = ["--scheduler", "synchronous"]


@pytest.fixture(scope="module")
def truth(demo_dir):
    return open_catalog(str(demo_dir / "dataset.zarr")).load()


@pytest.fixture(scope="module")
def png_folder(demo_dir, truth, tmp_path_factory):
    """Two demo studies' masks as PNGs, plus a third study whose heart PNG is corrupt."""
    folder = tmp_path_factory.mktemp("pred") / "png"
    pngs = PngFolder(str(folder))
    views, labels = list(truth.view.values), list(load_taxonomy().names)
    for s in range(2):
        pngs.write(str(truth.study.values[s]), truth.mask.values[s], views, labels)
    (folder / "broken" / "PA").mkdir(parents=True)
    (folder / "broken" / "PA" / "heart.png").write_bytes(b"not a png")
    return folder


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_measuring_the_ground_truth_as_a_prediction_gives_the_stored_values(demo_dir, truth):
    result = measure(open_predictions(str(demo_dir / "dataset.zarr")))
    assert result.failed == {}
    for name in MEASUREMENT_VARIABLES:
        assert np.array_equal(result.measured[name].values, truth[name].values), name


def test_png_folder_matches_the_dataset_and_a_bad_study_fails_alone(
    demo_dir, truth, png_folder, tmp_path, capsys
):
    out = tmp_path / "out"
    args = ["measure", str(png_folder), "--dest", str(demo_dir / "dataset.zarr")]
    code = main([*args, "--out", str(out), *RUN_HERE])
    printed = capsys.readouterr()
    assert code == 1  # one study could not be read
    failed = "FAILED broken: masks unreadable: study broken: PA/heart.png is not a readable PNG"
    assert failed in printed.err and "FAILED" not in printed.out  # errors on stderr
    assert "cardiothoracic" in printed.out  # the tables on stdout
    rows = {r["study"]: r for r in read_csv(out / "measurements.csv")}
    assert set(rows) == {"broken", *map(str, truth.study.values[:2])}
    for s in range(2):
        row = rows[str(truth.study.values[s])]
        assert float(row["cardiothoracic_ratio"]) == pytest.approx(
            float(truth.cardiothoracic_ratio.values[s]), rel=1e-6
        )
        assert float(row["kyphosis_deg"]) == pytest.approx(float(truth.kyphosis_deg.values[s]))
        grade = int(truth.scoliosis_grade.values[s])
        assert row["scoliosis_grade"] == ["negative", "mild", "moderate", "severe"][grade]
    assert rows["broken"]["cardiothoracic_ratio"] == ""
    assert rows["broken"]["cardiomegaly_exclusion"].startswith("masks unreadable")
    assert {"measurements_report.md", "measurements_report.json", "measurements.png"} <= {
        p.name for p in out.iterdir()
    }


def test_png_folder_needs_a_pixel_spacing(png_folder, capsys):
    assert main(["measure", str(png_folder), *RUN_HERE]) == 2
    assert "give --pixel-spacing MM or --dest DATASET" in capsys.readouterr().err


def test_pixel_spacing_flag_scales_nothing_but_the_ratio_stays(png_folder, truth):
    result = measure(open_predictions(str(png_folder), pixel_spacing=1.0))
    study = str(truth.study.values[0])
    measured = result.measured.sel(study=study)
    assert float(measured.cardiothoracic_ratio) == pytest.approx(
        float(truth.cardiothoracic_ratio.values[0]), rel=1e-6
    )


def test_agreement_with_reference_grades(demo_dir, truth, tmp_path, capsys):
    stored = truth.cardiomegaly_grade.values.astype(int)
    names = ["negative", "mild", "moderate", "severe"]
    studies = [str(s) for s in truth.study.values]
    reference = tmp_path / "reference.csv"
    lines = ["study,condition,grade"]
    # cardiomegaly: the first two agree, the third is one grade off
    for s, grade in zip(studies[:2], stored[:2], strict=True):
        lines.append(f"{s},cardiomegaly,{names[grade]}")
    lines.append(f"{studies[2]},Cardiomegaly,{(stored[2] + 1) % 4}")
    lines.append("not-a-study,kyphosis,mild")  # no masks for it
    reference.write_text("\n".join(lines) + "\n")
    out = tmp_path / "agreement"
    args = ["measure", str(demo_dir / "dataset.zarr"), "--reference", str(reference)]
    assert main([*args, "--out", str(out), "--bootstrap", "200", *RUN_HERE]) == 0
    printed = capsys.readouterr().out
    assert "Agreement with reference grades" in printed
    rows = {r["condition"]: r for r in read_csv(out / "agreement.csv")}
    cardio = rows["cardiomegaly"]
    assert (cardio["reference"], cardio["paired"], cardio["missing"]) == ("3", "3", "0")
    assert float(cardio["accuracy"]) == pytest.approx(2 / 3)
    off = 1.0 if (stored[2] + 1) % 4 - stored[2] == 1 else 2 / 3
    assert float(cardio["off_by_one"]) == pytest.approx(off)
    assert float(cardio["accuracy_low"]) <= 2 / 3 <= float(cardio["accuracy_high"])
    assert (rows["kyphosis"]["reference"], rows["kyphosis"]["missing"]) == ("1", "1")
    assert rows["kyphosis"]["accuracy"] == ""  # nothing paired: no statistic
    document = json.loads((out / "measurements_report.json").read_text())
    confusion = document["confusion_cardiomegaly"]["rows"]
    assert sum(sum(v for k, v in r.items() if k) for r in confusion) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("study,condition\ns1,kyphosis\n", "needs the columns study, condition, grade"),
        ("study,condition,grade\ns1,asthma,mild\n", "line 2: unknown condition 'asthma'"),
        ("study,condition,grade\ns1,kyphosis,huge\n", "line 2: grade 'huge' is not one of"),
        (
            "study,condition,grade\ns1,kyphosis,mild\ns1,kyphosis,severe\n",
            "line 3: a second grade for s1 kyphosis",
        ),
    ],
)
def test_bad_reference_files_are_refused_with_the_line(
    demo_dir, tmp_path, capsys, content, message
):
    reference = tmp_path / "reference.csv"
    reference.write_text(content)
    args = ["measure", str(demo_dir / "dataset.zarr"), "--reference", str(reference)]
    assert main([*args, *RUN_HERE]) == 1  # a malformed file is bad input
    assert message in capsys.readouterr().err


def test_missing_prediction_is_bad_input(tmp_path, capsys):
    assert main(["measure", str(tmp_path / "nothing"), *RUN_HERE]) == 1
    assert "no dataset store or folder of PNG masks" in capsys.readouterr().err
