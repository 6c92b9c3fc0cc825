"""Clinical measurements: hand-made masks, the in-graph block, and phantoms of known geometry
built through the real pipeline (ingest + build) measured against their analytic values."""

import math

import dask
import numpy as np
import pytest

import flows.build
from catalog import load_taxonomy, open_catalog
from flows.build import BuildParameters, projected_dataset
from flows.ingest import ingest
from flows.maths.measurements import (
    DEFAULT_CUT_POINTS,
    MEASUREMENTS,
    NOT_GRADED,
    REQUIRED_LABELS,
    THORACIC_VERTEBRAE,
    CutPoints,
    MeasurementLabels,
    drop_specks,
    measure_study,
    row_extents,
    turning_angle_deg,
)
from flows.measure import EXCLUSION_VARIABLES, GRADE_VARIABLES, MEASUREMENT_VARIABLES
from flows.phantom import PhantomGeometry, PhantomInput
from flows.update import build
from storage import dataset as dataset_store
from storage.location import StoreRef
from storage.sources import list_studies

SIZE = 200
LABELS = MeasurementLabels.from_names(REQUIRED_LABELS)
IDX = {name: i for i, name in enumerate(REQUIRED_LABELS)}


# ---------------------------------------------------------------------------------------------
# Hand-made masks (rows down = inferior; PA: image left = patient's right; LL: left = anterior)
# ---------------------------------------------------------------------------------------------


def blank() -> np.ndarray:
    return np.zeros((2, len(REQUIRED_LABELS), SIZE, SIZE), bool)


def chest(heart_cols=(80, 140), lung_cols=(40, 160), rib_rows=(30, 150)) -> np.ndarray:
    """PA: heart rows 100-139, lungs split at the midline, ribs over rows rib_rows."""
    m = blank()
    m[0, IDX["heart"], 100:140, heart_cols[0] : heart_cols[1]] = True
    m[0, IDX["right lung"], 40:150, lung_cols[0] : 95] = True
    m[0, IDX["left lung"], 40:150, 105 : lung_cols[1]] = True
    m[0, IDX["rib"], rib_rows[0] : rib_rows[1], 35:165] = True
    return m


def add_spine(m: np.ndarray, view: int, cols: np.ndarray, levels=range(12), top=20) -> None:
    """Square vertebrae (7 x 7 px) centred on ``cols`` at rows 20, 34, ... (14 px apart)."""
    for level in levels:
        row, col = top + 14 * level, round(float(cols[level]))
        m[view, IDX[THORACIC_VERTEBRAE[level]], row - 3 : row + 4, col - 3 : col + 4] = True


def arc_columns(angle_deg: float, centre: float = 100.0) -> np.ndarray:
    """Columns of centroids on a circular arc through 12 rows 14 px apart, whose tangents at the
    first and last centroid differ by ``angle_deg``; positive bulges toward higher columns."""
    if angle_deg == 0:
        return np.full(12, centre)
    half = 11 * 14 / 2
    radius = half / math.sin(math.radians(abs(angle_deg)) / 2)
    dz = np.arange(12) * 14 - half
    bulge = np.sqrt(radius**2 - dz**2) - radius * math.cos(math.radians(abs(angle_deg)) / 2)
    return centre + math.copysign(1, angle_deg) * bulge


def test_cardiothoracic_ratio_of_rectangles_in_mm():
    result = measure_study(chest(), [2.0, 2.0], LABELS)["cardiothoracic_ratio"]
    assert result.value == pytest.approx(60 / 120)
    assert result.details["cardiac_width_mm"] == pytest.approx(120.0)
    assert result.details["thoracic_width_mm"] == pytest.approx(240.0)
    assert result.grade == 0 and result.exclusion == ""


def test_thoracic_span_only_counts_rows_of_the_rib_cage():
    m = chest(rib_rows=(30, 120))
    m[0, IDX["left lung"], 130:150, 105:190] = True  # wider, but below the last rib row
    assert measure_study(m, [1.0, 1.0], LABELS)["cardiothoracic_ratio"].value == pytest.approx(0.5)
    m[0, IDX["rib"], 125:135, 35:165] = True
    assert measure_study(m, [1.0, 1.0], LABELS)["cardiothoracic_ratio"].value == pytest.approx(
        60 / 150
    )


def test_specks_do_not_move_extents_but_a_fragmented_heart_is_excluded():
    m = chest()
    m[0, IDX["heart"], 5, 5] = True  # a one-pixel speck far away
    assert measure_study(m, [1.0, 1.0], LABELS)["cardiothoracic_ratio"].value == pytest.approx(0.5)
    m[0, IDX["heart"], 100:140, 150:175] = True  # a second large part
    result = measure_study(m, [1.0, 1.0], LABELS)["cardiothoracic_ratio"]
    assert math.isnan(result.value) and result.grade == NOT_GRADED
    assert result.exclusion.startswith("cardiac silhouette fragmented")


def test_exclusion_reasons_tell_unavailable_from_empty():
    m = chest()
    available = np.ones(len(REQUIRED_LABELS), bool)
    available[IDX["heart"]] = False
    reason = measure_study(m, [1.0, 1.0], LABELS, available)["cardiothoracic_ratio"].exclusion
    assert reason == "heart not available"
    m[0, IDX["right lung"]] = False
    reason = measure_study(m, [1.0, 1.0], LABELS)["cardiothoracic_ratio"].exclusion
    assert reason == "right lung mask empty on PA"
    reason = measure_study(chest(), [np.nan, 1.0], LABELS)["cardiothoracic_ratio"].exclusion
    assert reason == "pixel spacing of PA unknown"


@pytest.mark.parametrize("angle", [0.0, 12.0, -30.0, 55.0])
def test_spinal_curvature_is_the_apex_turning_angle_signed_to_the_patients_right(angle):
    m = blank()
    # PA: a curve bulging toward LOWER columns is convex to the patient's right: positive
    add_spine(m, 0, arc_columns(-angle))
    result = measure_study(m, [1.0, 1.0], LABELS)["spinal_curvature_deg"]
    # inscribed angle: the apex turning angle of a circular arc is half its central angle
    assert result.value == pytest.approx(angle / 2, abs=0.6)
    assert result.details["levels"] == "T1-T12"


def test_turning_angle_of_a_right_angle():
    a, m, b = np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([1.0, 1.0])
    assert turning_angle_deg(a, m, b) == pytest.approx(90.0)
    assert turning_angle_deg(a, m, np.array([2.0, 0.0])) == pytest.approx(0.0)


@pytest.mark.parametrize("angle", [0.0, 20.0, 45.0, -15.0])
def test_kyphosis_is_the_end_plate_tangent_angle_positive_when_convex_posteriorly(angle):
    m = blank()
    # LL: posterior is toward HIGHER columns; centroids 14 px apart, end plates 7 px beyond
    # the ends, so the arc through the end plates spans 12 levels: rebuild it on 12 * 14 px
    half = 12 * 14 / 2
    if angle:
        radius = half / math.sin(math.radians(abs(angle)) / 2)
        dz = np.arange(12) * 14 + 7 - half
        bulge = np.sqrt(radius**2 - dz**2) - radius * math.cos(math.radians(abs(angle)) / 2)
        cols = 100 + math.copysign(1, angle) * bulge
    else:
        cols = np.full(12, 100.0)
    add_spine(m, 1, cols)
    result = measure_study(m, [1.0, 1.0], LABELS)["kyphosis_deg"]
    assert result.value == pytest.approx(angle, abs=1.5)


def test_too_few_contiguous_vertebrae_are_excluded():
    m = blank()
    add_spine(m, 1, np.full(12, 100.0), levels=[0, 1, 2, 3, 5, 6, 7, 8, 9])
    result = measure_study(m, [1.0, 1.0], LABELS)["kyphosis_deg"]
    assert result.exclusion == "only 5 contiguous thoracic vertebrae on LL (need 8)"
    reason = measure_study(m, [1.0, 1.0], LABELS)["spinal_curvature_deg"].exclusion
    assert reason == "only 0 contiguous thoracic vertebrae on PA (need 8)"


def test_drop_specks_and_row_extents():
    mask = np.zeros((5, 10), bool)
    mask[1:4, 2:8] = True
    mask[0, 9] = True
    cleaned = drop_specks(mask)
    assert not cleaned[0, 9] and cleaned[1:4, 2:8].all()
    assert list(row_extents(mask)) == [1, 6, 6, 6, 0]


def test_grading_cut_points():
    grading = CutPoints()
    assert [grading.grade("cardiothoracic_ratio", v) for v in (0.5, 0.51, 0.56, 0.61)] == [
        0,
        1,
        2,
        3,
    ]
    assert grading.grade("spinal_curvature_deg", -13.0) == 2  # graded by magnitude
    assert grading.grade("kyphosis_deg", float("nan")) == NOT_GRADED
    values = np.array([10.0, 40.0, 45.0, np.nan, 70.0])
    assert list(grading.grades("kyphosis_deg", values)) == [0, 0, 1, -1, 3]
    with pytest.raises(ValueError, match="increase strictly"):
        CutPoints(kyphosis_deg=(50.0, 40.0, 60.0))


def test_labels_absent_from_the_label_axis_exclude_with_a_reason():
    names = [n for n in REQUIRED_LABELS if n != "rib"]
    labels = MeasurementLabels.from_names(names)
    assert labels.rib == -1
    keep = [IDX[n] for n in names]
    result = measure_study(chest()[:, keep], [1.0, 1.0], labels)["cardiothoracic_ratio"]
    assert result.exclusion == "rib not available"


# ---------------------------------------------------------------------------------------------
# The in-graph block
# ---------------------------------------------------------------------------------------------


def test_schema_holds_every_measurement_variable_as_a_small_array():
    assert set(MEASUREMENT_VARIABLES) <= set(dataset_store.SMALL)
    for name in MEASUREMENT_VARIABLES:
        assert dataset_store.SCHEMA[name].dims == ("study",)
        assert not dataset_store.SCHEMA[name].per_study_shard
    assert [dataset_store.SCHEMA[n].dtype for n in MEASUREMENTS] == [np.float32] * 3
    assert [dataset_store.SCHEMA[n].dtype for n in GRADE_VARIABLES] == [np.int8] * 3
    assert [dataset_store.SCHEMA[n].fill for n in EXCLUSION_VARIABLES] == [""] * 3


def test_measurements_come_from_the_same_projection_as_the_writes(demo_dir, monkeypatch):
    """One compute of every variable projects (reads) each study exactly once."""
    sources = StoreRef(str(demo_dir / "sources.zarr"))
    studies = list_studies(sources)[:2]
    calls = []
    real = flows.build._project_one

    def counting(*args, **kwargs):
        calls.append(args[1].study_id)
        return real(*args, **kwargs)

    monkeypatch.setattr(flows.build, "_project_one", counting)
    projected = projected_dataset(sources, studies, load_taxonomy(), BuildParameters())
    names = ["mask", "footprint", *MEASUREMENT_VARIABLES]
    with dask.config.set(scheduler="synchronous"):
        values = dict(zip(names, dask.compute(*(projected[n].data for n in names)), strict=True))
    assert sorted(calls) == sorted(s.study_id for s in studies)
    direct = measure_study(
        values["mask"][0],
        projected["pixel_spacing"].values[0],
        MeasurementLabels.from_names(load_taxonomy().names),
    )
    assert values["cardiothoracic_ratio"][0] == pytest.approx(direct.values()[0])
    assert values["kyphosis_deg"][0] == pytest.approx(direct.values()[2])


# ---------------------------------------------------------------------------------------------
# Verification against known truth: phantoms through ingest + build
# ---------------------------------------------------------------------------------------------

PHANTOM_SHAPE = (224, 64, 256)  # 2.5 mm across, 3.1 mm along the spine: fast and accurate
# (CTR, thoracic width mm, scoliosis = frontal Cobb deg, kyphosis deg)
CASES = (
    (0.40, 280.0, 0.0, 10.0),
    (0.45, 260.0, 19.0, 25.0),
    (0.525, 300.0, -35.0, 45.0),
    (0.575, 240.0, 60.0, 55.0),
    (0.625, 280.0, -50.0, 70.0),
    (0.67, 300.0, 4.0, 0.0),
    (0.70, 300.0, -8.0, 35.0),
)


def analytic_scd(cobb_deg: float) -> float:
    """The phantom's SCD: its T1..T12 centroids lie on an arc whose end tangents differ by the
    Cobb angle; the T1 and T12 centroids span 11/12 of the chord, so they subtend a central
    angle 2 asin(11/12 sin(cobb / 2)), and by the inscribed-angle theorem the apex turning
    angle is half of that, whichever vertebra is the apex. Positive: convex to the right."""
    half = math.asin(11 / 12 * math.sin(math.radians(abs(cobb_deg)) / 2))
    return math.copysign(math.degrees(half), cobb_deg)


@pytest.fixture(scope="module")
def verification(tmp_path_factory):
    folder = tmp_path_factory.mktemp("verification")
    sources, dest = StoreRef(str(folder / "sources.zarr")), StoreRef(str(folder / "dataset.zarr"))
    inputs = [
        PhantomInput(
            f"case-{i}",
            "train",
            PHANTOM_SHAPE,
            seed=i,
            geometry=PhantomGeometry(
                heart_width_mm=ctr * width,
                thoracic_width_mm=width,
                scoliosis_deg=scoliosis,
                kyphosis_deg=kyphosis,
            ),
        )
        for i, (ctr, width, scoliosis, kyphosis) in enumerate(CASES)
    ]
    with dask.config.set(scheduler="threads"):
        assert not ingest(inputs, sources).failed
        assert not build(sources, dest).failed
    return open_catalog(dest).load()


def test_cardiothoracic_ratio_within_002_of_the_analytic_value(verification):
    measured = verification["cardiothoracic_ratio"].values
    truth = np.array([c[0] for c in CASES])
    assert np.all(np.abs(measured - truth) <= 0.02), np.c_[truth, measured]
    assert (verification["cardiomegaly_exclusion"].values == "").all()


def test_spinal_curvature_within_3_degrees_of_the_analytic_value(verification):
    measured = verification["spinal_curvature_deg"].values
    truth = np.array([analytic_scd(c[2]) for c in CASES])
    assert np.all(np.abs(measured - truth) <= 3.0), np.c_[truth, measured]


def test_kyphosis_within_3_degrees_of_the_phantoms_cobb_angle(verification):
    measured = verification["kyphosis_deg"].values
    truth = np.array([c[3] for c in CASES])
    assert np.all(np.abs(measured - truth) <= 3.0), np.c_[truth, measured]


def test_stored_grades_match_the_grades_of_the_truth(verification):
    truths = {
        "cardiothoracic_ratio": [c[0] for c in CASES],
        "spinal_curvature_deg": [analytic_scd(c[2]) for c in CASES],
        "kyphosis_deg": [c[3] for c in CASES],
    }
    tolerance = {"cardiothoracic_ratio": 0.02, "spinal_curvature_deg": 3.0, "kyphosis_deg": 3.0}
    for name, variable in zip(MEASUREMENTS, GRADE_VARIABLES, strict=True):
        truth = np.array(truths[name])
        points = np.array(getattr(DEFAULT_CUT_POINTS, name))
        # a truth within the tolerance of a cut-point may legitimately fall either side
        clear = np.abs(np.abs(truth)[:, None] - points).min(axis=1) > tolerance[name]
        expected = DEFAULT_CUT_POINTS.grades(name, truth)
        stored = verification[variable].values
        assert np.array_equal(stored[clear], expected[clear]), (name, expected, stored)
        assert len(set(expected[clear])) == 4, f"{name}: the cases must cover every grade"
