"""``rga preview``: both views with coloured overlays and a legend, reading only what it draws."""

from collections import Counter

import numpy as np
import pytest
import zarr
from counting import CountingStore
from PIL import Image

from catalog import load_taxonomy, open_catalog
from flows.cli import main
from flows.reports.preview import FILL_ALPHA, PALETTE, _overlays, render_preview, save_preview

TAXONOMY = load_taxonomy()


@pytest.fixture(scope="module")
def ds(demo_dir):
    return open_catalog(str(demo_dir / "dataset.zarr"))


def test_overlay_colours_the_class_inside_its_mask_only(ds):
    study = str(ds.study.values[1])
    picture = np.asarray(render_preview(ds, study, labels=["heart"]))
    heart = ds.mask.sel(study=study, label="heart").values  # (view, y, x)
    image = ds.image.sel(study=study).values
    # the PA panel sits at (x 8, y 36): 8 px margin, 20 px title, 16 px view label
    top, left = 36, 8
    rows, cols = np.nonzero(heart[0])
    inner = [
        (r, c)
        for r, c in zip(rows, cols, strict=True)
        if heart[0, r - 1 : r + 2, c - 1 : c + 2].all()
    ]
    r, c = inner[len(inner) // 2]
    grey = float(image[0, r, c])
    expected = np.rint((1 - FILL_ALPHA) * grey + FILL_ALPHA * np.array(PALETTE[0]))
    assert picture[top + r, left + c].tolist() == expected.tolist()
    outside = np.argwhere(~heart[0] & (image[0] > 0))[0]
    assert picture[top + outside[0], left + outside[1]].tolist() == [image[0][tuple(outside)]] * 3


def test_preview_reads_only_the_image_and_the_chosen_masks(demo_dir):
    store = CountingStore(zarr.storage.LocalStore(demo_dir / "dataset.zarr", read_only=True))
    ds = open_catalog(store)
    before = Counter(store.reads)
    render_preview(ds, str(ds.study.values[2]), labels=["heart", "left lung"], systems=["Skeletal"])
    reads = {k: n - before[k] for k, n in store.reads.items() if "/c/" in k and n > before[k]}
    # each study is one shard object; an inner chunk costs at most two reads (index + chunk):
    # 2 views x 2 classes, 2 views x 1 system, 2 views of the image
    assert set(reads) == {
        "mask/c/2/0/0/0/0",
        "region_mask/c/2/0/0/0/0",
        "image/c/2/0/0/0",
        "available/c/0/0",
    }
    assert reads["mask/c/2/0/0/0/0"] <= 2 * 4
    assert reads["region_mask/c/2/0/0/0/0"] <= 2 * 2
    assert reads["image/c/2/0/0/0"] <= 2 * 2


def test_legend_notes_empty_and_unavailable_classes(ds):
    one = ds.isel(study=0).load()
    one["mask"].loc[{"label": "liver"}] = False
    one["available"].loc[{"label": "spleen"}] = False
    one["mask"].loc[{"label": "spleen"}] = False
    notes = {o.name: o.note for o in _overlays(one, ["heart", "liver", "spleen"], [])}
    assert notes == {"heart": "", "liver": "empty", "spleen": "not available"}
    picture = render_preview(one, labels=["heart", "liver", "spleen"])  # one study: no id needed
    assert picture.mode == "RGB"


def test_unknown_names_are_refused(ds):
    with pytest.raises(KeyError, match="no label named 'hart'"):
        render_preview(ds, str(ds.study.values[0]), labels=["hart"])
    with pytest.raises(KeyError, match="no region named 'Cardio'"):
        render_preview(ds, str(ds.study.values[0]), systems=["Cardio"])
    with pytest.raises(KeyError, match="no committed study 'nope'"):
        render_preview(ds, "nope")
    with pytest.raises(ValueError, match="name the one to preview"):
        render_preview(ds)
    with pytest.raises(ValueError, match=r"ending in \.png"):
        save_preview(ds, str(ds.study.values[0]), "picture.jpg")


def test_preview_command_writes_the_same_png_twice(demo_dir, tmp_path, capsys):
    study = "phantom-0001"
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in paths:
        args = ["preview", str(demo_dir / "dataset.zarr"), study, "--out", str(path)]
        args += ["--labels", "heart", "right lung", "left lung", "--systems", "Skeletal"]
        assert main([*args, "--scale", "2"]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    with Image.open(paths[0]) as image:
        assert image.width == 2 * 384 * 2 + 3 * 8  # two views at scale 2, three margins
    assert f"Wrote {paths[0]}" in capsys.readouterr().out
    assert main(["preview", str(demo_dir / "dataset.zarr"), "nope", "--out", str(paths[0])]) == 2
