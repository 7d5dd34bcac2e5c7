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
