"""A built demo store holds physically and anatomically consistent masks (the spine, end to end)."""

import numpy as np
import pytest
import xarray as xr
from digests import tree_digest

from catalog import SYSTEMS, load_taxonomy, open_catalog, select
from flows.ingest import ingest
from flows.phantom import phantom_inputs
from flows.runtime.cluster import ClusterOptions, dask_client
from flows.update import build
from storage.location import StoreRef

CENTRE = 192


@pytest.fixture(scope="module")
def ds(demo_dir):
    return open_catalog(str(demo_dir / "dataset.zarr")).load()


def _centroid(mask2d: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask2d)
    return float(rows.mean()), float(cols.mean())


def test_contract_names_dims_and_dtypes(ds):
    expected = {
        "image": (("study", "view", "y", "x"), np.uint8),
        "mask": (("study", "view", "label", "y", "x"), np.bool_),
        "region_mask": (("study", "view", "region", "y", "x"), np.bool_),
        "footprint": (("study", "view", "label"), np.int32),
        "available": (("study", "label"), np.bool_),
        "pixel_spacing": (("study", "view"), np.float32),
        "committed": (("study",), np.bool_),
    }
    for name, (dims, dtype) in expected.items():
        assert ds[name].dims == dims and ds[name].dtype == dtype, name
    assert ds.sizes == {"study": 3, "view": 2, "label": 210, "region": 10, "y": 384, "x": 384}
    assert list(ds.view.values) == ["PA", "LL"]
    assert list(ds.label.values) == list(load_taxonomy().names)
    assert list(ds.region.values) == list(SYSTEMS)
    for coord in ("system", "organ", "substructure", "level", "split"):
        assert coord in ds.coords
    assert ds.committed.all() and ds.available.all()
    assert (ds.pixel_spacing > 0).all()


def test_footprint_equals_mask_pixel_count(ds):
    assert np.array_equal(ds.footprint.values, ds.mask.sum(("y", "x")).values)
    empty = (ds.footprint == 0).mean().item()
    assert empty < 0.05, f"{empty:.0%} of masks are empty on a phantom with every class"


def test_region_masks_are_unions_of_their_systems(ds):
    taxonomy = load_taxonomy()
    for r, system in enumerate(SYSTEMS):
        members = list(taxonomy.system_indices(system))
        union = ds.mask.values[:, :, members].any(axis=2)
        assert np.array_equal(ds.region_mask.values[:, :, r], union), system


def test_every_child_lies_inside_its_parents(ds):
    taxonomy = load_taxonomy()
    mask = ds.mask.values
    for name in taxonomy.names:
        child = mask[:, :, taxonomy.index(name)]
        for container in taxonomy.containers(name):
            parent = mask[:, :, taxonomy.index(container)]
            assert not (child & ~parent).any(), f"{name} leaks out of {container}"


def test_anatomy_lands_where_a_radiologist_expects(ds):
    for s in range(ds.sizes["study"]):
        pa = select(ds, view="PA").isel(study=s).mask
        ll = select(ds, view="LL").isel(study=s).mask
        _, heart_col = _centroid(pa.sel(label="heart").values[0])
        liver_row, liver_col = _centroid(pa.sel(label="liver").values[0])
        lung_row, _ = _centroid(pa.sel(label="lung").values[0])
        assert heart_col > CENTRE > liver_col  # heart on the viewer's right in PA
        assert lung_row < liver_row  # lungs above the liver
        _, spine_col = _centroid(ll.sel(label="vertebrae").values[0])
        _, sternum_col = _centroid(ll.sel(label="sternum").values[0])
        assert spine_col > sternum_col  # LL: anterior on the left, spine to the right


def test_images_look_like_radiographs(ds):
    image = ds.image.values.astype(float)
    mask = ds.mask
    for s in range(ds.sizes["study"]):
        pa = image[s, 0]
        spine = mask.isel(study=s, view=0).sel(label="thoracic vertebrae").values
        lung = mask.isel(study=s, view=0).sel(label="left lung lower lobe").values
        assert pa.max() == 255
        assert pa[spine].mean() > pa[lung & ~spine].mean()  # bone brighter than lung


def test_build_is_deterministic_and_ingest_too(demo_dir, tmp_path):
    sources = StoreRef(str(tmp_path / "sources.zarr"))
    again = StoreRef(str(tmp_path / "dataset.zarr"))
    inputs = phantom_inputs(3, (64, 64, 96), seed=0)
    with dask_client(ClusterOptions(workers=2)):
        assert not ingest(inputs, sources).failed
        assert not build(sources, again).failed
    assert tree_digest(tmp_path / "sources.zarr") == tree_digest(demo_dir / "sources.zarr")
    assert tree_digest(tmp_path / "dataset.zarr") == tree_digest(demo_dir / "dataset.zarr")


def test_plain_xarray_sees_the_same_committed_data(demo_dir, ds):
    plain = xr.open_zarr(demo_dir / "dataset.zarr")
    plain = plain.isel(study=plain.committed.values)
    assert np.array_equal(plain.mask.values, ds.mask.values)
