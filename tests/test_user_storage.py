"""A user updating a zarr store of images: the documented kinds of update keep working."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geos2vec import cells as C

pytest.importorskip("zarr")
pytest.importorskip("dask")
from geos2vec import raster as R  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_region_auto_rewrites_a_subset_of_the_images(tmp_path):
    # xarray's region="auto" finds where the images go from their index: 4 images of a 16-image store were
    # refused as "images of another size" (the check compared them with the whole store)
    rng = np.random.default_rng(0)
    ids = np.unique(C.latlng_to_cell(40 + rng.random(4000), -75 + rng.random(4000), 12))
    table = pd.DataFrame(rng.integers(0, 5, (len(ids), 3)), columns=["a", "b", "c"],
                         index=pd.Index(ids, name="cell_id"))
    da = R.rasterize(table)
    assert da.sizes["image"] == 16
    R.to_zarr(da.chunk({"image": 4}), tmp_path / "s.zarr")
    new = da.isel(image=slice(4, 8)) * 0 + 7
    R.to_zarr(new, tmp_path / "s.zarr", region="auto")
    back = R.open_zarr(tmp_path / "s.zarr").values  # marked complete again
    expected = da.values.copy()
    expected[4:8] = 7
    np.testing.assert_array_equal(back, expected)
    with pytest.raises(Exception, match="row"):  # another size is still refused
        R.to_zarr(new.isel(row=slice(0, 8)), tmp_path / "s.zarr", region="auto")
    np.testing.assert_array_equal(R.open_zarr(tmp_path / "s.zarr").values, expected)


class _Zarr2Array:
    """What ``_check_sizes`` sees of a zarr-python 2 array (``zarr>=2.17`` is supported): no ``.metadata``."""

    def __init__(self, shape, dims):
        self.shape, self.attrs = shape, {"_ARRAY_DIMENSIONS": list(dims)}


class _Zarr2MemoryStore(dict):
    """zarr-python 2's MemoryStore: a mapping whose ``root`` is a dict (not a path)."""

    def __init__(self):
        super().__init__()
        self.root = {}


def test_the_update_checks_take_zarr_2_arrays_and_memory_stores():
    # with zarr-python 2 every region write and append raised AttributeError ('Array' object has no attribute
    # 'metadata'), and a dask write into its MemoryStore TypeError (os.path.realpath of the store's dict)
    from geos2vec.errors import InvalidInputError
    from geos2vec.raster._store_checks import _check_overwrite, _check_sizes, _location

    rng = np.random.default_rng(1)
    ids = np.unique(C.latlng_to_cell(40 + rng.random(400), -75 + rng.random(400), 12))
    da = R.rasterize(pd.DataFrame(rng.integers(0, 5, (len(ids), 2)), columns=["a", "b"],
                                  index=pd.Index(ids, name="cell_id")))
    n = da.sizes["image"]
    stored = _Zarr2Array((n, 16, 16, 2), ("image", "row", "col", "feature"))
    _check_sizes(stored, da.isel(image=slice(0, 2)), "s.zarr", {"region": {"image": slice(0, 2)}})
    _check_sizes(stored, da, "s.zarr", {"append_dim": "image"})
    with pytest.raises(InvalidInputError, match="have 8 along 'row'"):
        _check_sizes(stored, da.isel(row=slice(0, 8)), "s.zarr", {"append_dim": "image"})
    store, other = _Zarr2MemoryStore(), _Zarr2MemoryStore()
    assert _location(store) == ("dict", str(id(store.root))) != _location(other)
    _check_overwrite(store, da.chunk({"image": 1}), False)  # nothing read from it: no refusal


def test_appending_parts_of_one_table_keeps_its_coverage_as_it_is(tmp_path):
    # each append merged the coverage with itself: seconds for a detailed coverage (2 s a 147,000-vertex one,
    # 20x the append) and a rewritten one (the union's WKT, not the table's)
    import json

    import shapely

    from geos2vec.coverage import get_coverage, set_coverage

    rng = np.random.default_rng(2)
    coverage = shapely.union_all(shapely.buffer(shapely.points(-75 + 3 * rng.random(60), 40 + 2 * rng.random(60)),
                                                0.3, quad_segs=4))
    ids = np.unique(C.latlng_to_cell(40 + 2 * rng.random(2000), -75 + 3 * rng.random(2000), 12))
    table = set_coverage(pd.DataFrame(rng.integers(0, 5, (len(ids), 2)), columns=["a", "b"],
                                      index=pd.Index(ids, name="cell_id")), coverage)
    da = R.rasterize(table)
    n = da.sizes["image"]
    R.to_zarr(da.isel(image=slice(0, n // 2)), tmp_path / "s.zarr")
    R.to_zarr(da.isel(image=slice(n // 2, None)), tmp_path / "s.zarr", append_dim="image")
    back = R.open_zarr(tmp_path / "s.zarr")
    assert back.attrs["coverage"] == da.attrs["coverage"]
    assert json.loads(back.attrs["coverage"]) == table.attrs["coverage"]
    assert get_coverage(R.to_frame(back.compute()))[0].equals(coverage)
    np.testing.assert_array_equal(back.values, da.values)
