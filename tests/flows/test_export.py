"""``rga export`` (flows/export.py, flows/formats): each format read back by its own tools.

The dataset is a copy of the demo build altered so that every case the formats must keep apart
occurs: classes that overlap (the phantom's nested anatomy), a class unavailable in one study
(its stored mask is not empty: the export must still call it unknown), an available class with
an empty mask, and a study in another split. Exports run on a real local Dask cluster.
"""

import csv
import io
import json
import shutil

import numpy as np
import pytest
import s3fs
import zarr
from digests import tree_digest
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from catalog import open_catalog
from flows.cli import main
from flows.maths.atoms import class_masks
from flows.maths.rle import chexmask_decode
from storage.location import StoreRef
from storage.results import open_results

UNKNOWN, EMPTY = "heart", "trachea"  # unavailable in study 1; empty on PA of study 0
NNUNET = "Dataset500_RadGenomeAnatomy"


@pytest.fixture(scope="module")
def dataset(demo_dir, tmp_path_factory):
    copy = tmp_path_factory.mktemp("export") / "dataset.zarr"
    shutil.copytree(demo_dir / "dataset.zarr", copy)
    labels = [str(n) for n in open_catalog(str(copy)).label.values]
    zarr.open_array(copy / "available", mode="r+")[1, labels.index(UNKNOWN)] = False
    zarr.open_array(copy / "mask", mode="r+")[0, 0, labels.index(EMPTY)] = False
    split = zarr.open_array(copy / "split", mode="r+")
    split[:] = np.array(["train", "train", "test"], dtype=object)
    return copy


@pytest.fixture(scope="module")
def truth(dataset):
    return open_catalog(str(dataset))[["image", "mask", "available", "pixel_spacing"]].load()


def _export(dataset, out, fmt, scheduler, *extra):
    args = ["export", str(dataset), str(out), "--format", fmt, "--scheduler", scheduler, "-q"]
    return main([*args, *extra])


@pytest.fixture(scope="module")
def exported(dataset, scheduler, tmp_path_factory):
    """Every format, exported once."""
    root = tmp_path_factory.mktemp("exports")
    for fmt in ("coco", "chexmask", "png", "nnunet"):
        assert _export(dataset, root / fmt, fmt, scheduler) == 0
    return root


def _names(truth, dim):
    return [str(v) for v in truth[dim].values]


def test_the_dataset_has_every_case_the_formats_must_keep_apart(truth):
    labels = _names(truth, "label")
    masks = truth.mask.values
    assert (masks.sum(axis=2) >= 2).any()  # pixels covered by several classes
    unknown, empty = labels.index(UNKNOWN), labels.index(EMPTY)
    assert masks[1, :, unknown].any() and not truth.available.values[1, unknown]
    assert not masks[0, 0, empty].any() and truth.available.values[0, empty]


def test_coco_is_what_pycocotools_reads(exported, truth, capsys):
    coco = COCO(str(exported / "coco" / "annotations.json"))
    labels, views = _names(truth, "label"), _names(truth, "view")
    categories = coco.loadCats(coco.getCatIds())
    assert [c["id"] for c in categories] == list(range(1, 211))
    assert [c["name"] for c in categories] == labels
    assert [c["supercategory"] for c in categories] == [str(s) for s in truth.system.values]
    assert [img["id"] for img in coco.dataset["images"]] == list(range(1, 7))
    overlapping = 0
    for image in coco.dataset["images"]:
        s, v = _names(truth, "study").index(image["study"]), views.index(image["view"])
        assert image["file_name"] == f"{image['study']}/{image['view']}.png"
        assert (image["height"], image["width"]) == truth.mask.shape[-2:]
        assert image["split"] == ["train", "train", "test"][s]
        assert image["pixel_spacing"] == float(truth.pixel_spacing.values[s, v])
        unavailable = [i + 1 for i in np.flatnonzero(~truth.available.values[s])]
        assert image["unavailable_category_ids"] == unavailable
        pixels = np.asarray(Image.open(exported / "coco" / "images" / image["file_name"]))
        assert pixels.dtype == np.uint8 and np.array_equal(pixels, truth.image.values[s, v])
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        given = {a["category_id"]: a for a in annotations}
        assert len(given) == len(annotations)  # one annotation per class and image
        for i, label in enumerate(labels):
            stored = truth.mask.values[s, v, i]
            known = bool(truth.available.values[s, i]) and stored.any()
            assert (i + 1 in given) == known, label
            if known:
                annotation = given[i + 1]
                assert isinstance(annotation["segmentation"]["counts"], str)
                assert np.array_equal(coco.annToMask(annotation).astype(bool), stored)
                rle = {**annotation["segmentation"]}
                rle["counts"] = rle["counts"].encode()
                assert annotation["area"] == int(coco_mask.area(rle)) == int(stored.sum())
                assert annotation["bbox"] == coco_mask.toBbox(rle).tolist()
                assert annotation["iscrowd"] == 0
        footprints = np.stack([coco.annToMask(a) for a in annotations])
        overlapping += int((footprints.sum(axis=0) >= 2).sum())
    assert overlapping > 0  # overlapping classes are separate annotations


def test_chexmask_rows_decode_to_the_stored_masks(exported, truth):
    text = (exported / "chexmask" / "masks.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    labels, studies = _names(truth, "label"), _names(truth, "study")
    assert list(rows[0])[:6] == ["study", "view", "split", "Height", "Width", "pixel_spacing"]
    assert list(rows[0])[6:-1] == labels and list(rows[0])[-1] == "unavailable"
    assert [(r["study"], r["view"]) for r in rows] == [
        (s, v) for s in studies for v in ("PA", "LL")
    ]
    for row in rows:
        s, v = studies.index(row["study"]), _names(truth, "view").index(row["view"])
        assert row["unavailable"] == ("heart" if s == 1 else "")
        for i, label in enumerate(labels):
            if not truth.available.values[s, i]:
                assert row[label] == ""
                continue
            mask = chexmask_decode(row[label], int(row["Height"]), int(row["Width"]))
            assert np.array_equal(mask, truth.mask.values[s, v, i]), label
    assert rows[0][EMPTY] == ""  # an empty mask is the empty string


def _dice_one_for_every_available_class(pred, dataset, tmp_path, *extra):
    dest = tmp_path / "evaluation"
    assert main(["evaluate", str(pred), str(dest), "--gt", str(dataset), *extra]) == 0
    results = open_results(StoreRef(str(dest))).load()
    scored = results.gt_available.values[:, None, :] & ~results.gt_empty.values
    assert scored.sum() > 1000
    assert (results.dice.values[scored] == 1).all()
    assert (results.gt_available.values == open_catalog(str(dataset)).available.values).all()
    return results


def test_png_and_coco_round_trip_through_evaluate(exported, dataset, tmp_path):
    _dice_one_for_every_available_class(exported / "png" / "masks", dataset, tmp_path / "p")
    coco = exported / "coco" / "annotations.json"
    _dice_one_for_every_available_class(coco, dataset, tmp_path / "c")


def test_png_layout_and_its_table(exported, truth):
    root = exported / "png"
    image = np.asarray(Image.open(root / "images" / "phantom-0000" / "LL.png"))
    assert np.array_equal(image, truth.image.values[0, 1])
    assert not (root / "masks" / "phantom-0000" / "PA" / f"{EMPTY}.png").exists()
    assert not (root / "masks" / "phantom-0001" / "PA" / f"{UNKNOWN}.png").exists()
    rows = list(csv.DictReader(io.StringIO((root / "studies.csv").read_text())))
    assert [r["unavailable"] for r in rows] == ["", "", UNKNOWN, UNKNOWN, "", ""]


def test_nnunet_is_region_based_and_rebuilds_every_class(exported, truth):
    root = exported / "nnunet" / NNUNET
    document = json.loads((root / "dataset.json").read_text())
    assert list(document)[:6] == [
        "channel_names",
        "labels",
        "regions_class_order",
        "numTraining",
        "file_ending",
        "overwrite_image_reader_writer",
    ]
    labels = _names(truth, "label")
    assert list(document["labels"]) == ["background", *labels]
    assert document["labels"]["background"] == 0 and document["file_ending"] == ".png"
    regions = [document["labels"][n] for n in labels]
    atoms = document["rga"]["atoms"]
    ids = sorted({i for region in regions for i in region})
    assert ids == list(range(1, len(atoms) + 1))  # consecutive, as nnU-Net requires
    assert len(document["regions_class_order"]) == len(labels)
    assert any(len(atom) > 1 for atom in atoms)
    assert document["numTraining"] == 4
    for s, study in enumerate(_names(truth, "study")):
        part = "Ts" if s == 2 else "Tr"
        for v, view in enumerate(_names(truth, "view")):
            case = f"{study}_{view}"
            image = np.asarray(Image.open(root / f"images{part}" / f"{case}_0000.png"))
            assert np.array_equal(image, truth.image.values[s, v])
            label_map = np.asarray(Image.open(root / f"labels{part}" / f"{case}.png"))
            assert label_map.dtype == np.uint16
            rebuilt = class_masks(label_map, regions)
            known = truth.available.values[s]
            assert np.array_equal(rebuilt[known], truth.mask.values[s, v][known])
            assert not rebuilt[~known].any()  # unknown, not drawn
            assert document["rga"]["cases"][case]["unavailable"] == ([UNKNOWN] if s == 1 else [])


def test_nnunet_predictions_round_trip_as_label_maps_and_probabilities(
    exported, dataset, truth, tmp_path
):
    _dice_one_for_every_available_class(exported / "nnunet" / NNUNET, dataset, tmp_path / "d")
    # What nnUNetv2_predict writes: <case>.png (or .npz region probabilities) + dataset.json.
    root, predicted = exported / "nnunet" / NNUNET, tmp_path / "predicted"
    predicted.mkdir()
    shutil.copy(root / "dataset.json", predicted)
    document = json.loads((root / "dataset.json").read_text())
    regions = [document["labels"][n] for n in _names(truth, "label")]
    for n, label_map in enumerate(sorted(root.glob("labels*/*.png"))):
        if n % 2:
            shutil.copy(label_map, predicted / label_map.name)
        else:
            masks = class_masks(np.asarray(Image.open(label_map)), regions)
            probabilities = np.where(masks, 0.75, 0.25).astype(np.float16)[:, None]
            np.savez_compressed(predicted / f"{label_map.stem}.npz", probabilities=probabilities)
    _dice_one_for_every_available_class(predicted, dataset, tmp_path / "p")


def test_coco_results_with_scores_are_thresholded(exported, dataset, truth, tmp_path):
    document = json.loads((exported / "coco" / "annotations.json").read_text())
    results = [
        {k: a[k] for k in ("image_id", "category_id", "segmentation")} | {"score": 0.9}
        for a in document["annotations"]
    ]
    full = {"size": list(truth.mask.shape[-2:]), "counts": [0, int(np.prod(truth.mask.shape[-2:]))]}
    results += [{"image_id": 1, "category_id": 5, "segmentation": full, "score": 0.2}]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    annotations = str(exported / "coco" / "annotations.json")
    _dice_one_for_every_available_class(
        path, dataset, tmp_path / "r", "--coco-annotations", annotations
    )
    dest = tmp_path / "low"
    assert (
        main(
            [
                "evaluate",
                str(path),
                str(dest),
                "--gt",
                str(dataset),
                "--coco-annotations",
                annotations,
                "--score-threshold",
                "0.1",
            ]
        )
        == 0
    )
    low = open_results(StoreRef(str(dest))).load()
    assert low.dice.values[0, 0, 4] < 1  # the low-scored full-image segment now counts


def test_a_rerun_is_byte_identical_and_out_is_refused_without_overwrite(
    exported, dataset, scheduler, tmp_path, capsys
):
    for fmt in ("coco", "chexmask", "png", "nnunet"):
        before = tree_digest(exported / fmt)
        assert _export(dataset, exported / fmt, fmt, scheduler) == 2
        assert "exists: choose another folder or --overwrite" in capsys.readouterr().err
        assert tree_digest(exported / fmt) == before  # nothing was touched
        again = tmp_path / fmt
        assert _export(dataset, again, fmt, "threads") == 0  # other scheduler, same bytes
        assert tree_digest(again) == before
        assert _export(dataset, again, fmt, scheduler, "--overwrite") == 0
        assert tree_digest(again) == before


def test_selection_flags(dataset, truth, scheduler, tmp_path):
    out = tmp_path / "lungs"
    assert (
        _export(
            dataset,
            out,
            "coco",
            scheduler,
            "--split",
            "train",
            "--view",
            "PA",
            "--systems",
            "Pulmonary",
        )
        == 0
    )
    document = json.loads((out / "annotations.json").read_text())
    assert [(i["study"], i["view"]) for i in document["images"]] == [
        ("phantom-0000", "PA"),
        ("phantom-0001", "PA"),
    ]
    systems = {c["supercategory"] for c in document["categories"]}
    assert systems == {"Pulmonary"}
    labels = _names(truth, "label")
    assert all(c["id"] == labels.index(c["name"]) + 1 for c in document["categories"])
    heart = tmp_path / "heart"
    assert (
        _export(
            dataset,
            heart,
            "nnunet",
            scheduler,
            "--labels",
            "heart",
            "trachea",
            "--dataset-id",
            "7",
            "--dataset-name",
            "Heart",
        )
        == 0
    )
    document = json.loads((heart / "Dataset007_Heart" / "dataset.json").read_text())
    assert list(document["labels"]) == ["background", "heart", "trachea"]


def test_names_and_values_that_name_nothing_are_usage_errors(dataset, tmp_path, capsys):
    out = str(tmp_path / "x")
    for extra, message in (
        (["--labels", "hart"], "did you mean 'heart'"),
        (["--split", "nope"], "no split 'nope'"),
        (["--format", "nnunet", "--dataset-name", "a b"], "letters, digits and hyphens"),
    ):
        args = ["export", str(dataset), out, *extra]
        if "--format" not in extra:
            args += ["--format", "coco"]
        assert main([*args, "--scheduler", "threads"]) == 2
        assert message in capsys.readouterr().err
    assert main(["export", str(tmp_path / "none"), out, "--format", "png"]) == 1
    assert "no dataset store" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_study_that_cannot_be_read_fails_alone(dataset, tmp_path, capsys):
    broken = tmp_path / "dataset.zarr"
    shutil.copytree(dataset, broken)
    shard = broken / "mask" / "c" / "1" / "0" / "0" / "0" / "0"  # study 1's one shard
    assert shard.is_file()
    shard.write_bytes(b"not a shard")
    code = _export(broken, tmp_path / "out", "coco", "threads")
    captured = capsys.readouterr()
    assert code == 1 and "FAILED phantom-0001: " in captured.err
    assert "Exported 2 studies" in captured.out and "1 failed" in captured.out
    document = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert {i["study"] for i in document["images"]} == {"phantom-0000", "phantom-0002"}


def test_predictions_that_do_not_fit_are_clear_errors(exported, dataset, tmp_path, capsys):
    source = json.loads((exported / "coco" / "annotations.json").read_text())
    cases = {
        "image": lambda d: d["annotations"][0].update(image_id=99),
        "category": lambda d: d["annotations"][0].update(category_id=999),
        "size": lambda d: d["images"][0].update(height=10),
    }
    messages = {
        "image": "names image 99, which",
        "category": "names category 999, which",
        "size": "is 384 x 10 pixels",
    }
    for name, alter in cases.items():
        document = json.loads(json.dumps(source))
        alter(document)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(document))
        code = main(
            [
                "evaluate",
                str(path),
                str(tmp_path / name),
                "--gt",
                str(dataset),
                "--scheduler",
                "threads",
            ]
        )
        captured = capsys.readouterr()
        assert code == 1 and messages[name] in captured.err + captured.out, captured
        assert str(path) in captured.err + captured.out
    document = json.loads(json.dumps(source))
    document["images"][0].update(study="not-a-study", file_name="not-a-study/PA.png")
    (tmp_path / "unknown.json").write_text(json.dumps(document))
    code = main(["evaluate", str(tmp_path / "unknown.json"), str(tmp_path / "u"), "--gt",
                 str(dataset), "--scheduler", "threads"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0  # the known studies are scored; the unknown one is named with its file
    assert f"1 studies of {tmp_path / 'unknown.json'} are not in the ground truth" in captured.err
    results = tmp_path / "results.json"
    results.write_text("[]")
    assert main(["evaluate", str(results), str(tmp_path / "r"), "--gt", str(dataset)]) == 1
    assert "--coco-annotations" in capsys.readouterr().err
    folder = tmp_path / "nn"
    shutil.copytree(exported / "nnunet" / NNUNET, folder)
    label_map = folder / "labelsTr" / "phantom-0000_PA.png"
    Image.fromarray(np.zeros((5, 6), np.uint16)).save(label_map)
    code = main(
        [
            "evaluate",
            str(folder),
            str(tmp_path / "n"),
            "--gt",
            str(dataset),
            "--scheduler",
            "threads",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1 and "FAILED phantom-0000: " in captured.err
    assert "labelsTr/phantom-0000_PA.png is 6x5 pixels" in captured.err


def test_export_to_object_storage(dataset, s3_server, scheduler, tmp_path):
    fs = s3fs.S3FileSystem(**s3_server)
    fs.mkdir("exports")
    options = [f"--storage-option={k}={v}" for k, v in s3_server.items()]
    assert _export(dataset, "s3://exports/coco", "coco", scheduler, *options) == 0
    local = tmp_path / "coco"
    assert _export(dataset, local, "coco", "threads") == 0
    assert fs.cat_file("exports/coco/annotations.json") == (local / "annotations.json").read_bytes()
    assert sorted(fs.find("exports/coco")) == sorted(
        f"exports/coco/{p.relative_to(local)}" for p in local.rglob("*") if p.is_file()
    )
