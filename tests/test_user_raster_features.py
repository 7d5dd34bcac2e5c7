"""A user's channel subsets of images.

References are pandas on the input table, never the code's own output: ``to_frame`` of a channel subset/reorder
gives each channel the dtype it had in the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geos2vec import cells as C
from geos2vec import raster as R


# --------------------------------------------------------------------------- 1. channel subsets of images
@pytest.fixture(scope="module")
def table():
    """Six level-12 cells of one image: 0/1 counts (int64), whole-number floats, bools: they fit each other."""
    kids = np.sort(C.cell_to_children(C.latlng_to_cell(34.05, -118.25, 8), 12).ravel()[:6])
    return pd.DataFrame({"shop": np.array([0, 1, 1, 0, 1, 0], dtype=np.int64),
                         "area": np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                         "open": np.array([True, False, True, True, False, True])},
                        index=pd.Index(kids, name="cell_id", dtype=np.uint64))


@pytest.mark.parametrize("pick", [["open", "area", "shop"], ["area", "shop"], ["shop"], ["open", "shop"]])
def test_to_frame_of_a_channel_subset_keeps_each_channels_dtype(table, pick):
    # channel_dtypes was read by position: after sel(feature=["open", "area", "shop"]) "shop" came back bool and
    # "open" int64; a subset of another length came back in the common dtype (float64)
    got = R.to_frame(R.rasterize(table).sel(feature=pick))
    pd.testing.assert_frame_equal(got, table[pick].rename_axis(columns="feature"))


def test_to_frame_of_an_isel_slice_and_of_a_stored_subset(table, tmp_path):
    da = R.rasterize(table)
    got = R.to_frame(da.isel(feature=slice(1, 3)))
    pd.testing.assert_frame_equal(got, table[["area", "open"]].rename_axis(columns="feature"))
    R.to_zarr(da.sel(feature=["open", "shop"]), tmp_path / "sub.zarr")
    back = R.to_frame(R.open_zarr(tmp_path / "sub.zarr").load())
    pd.testing.assert_frame_equal(back, table[["open", "shop"]].rename_axis(columns="feature"))


def test_arrays_without_channel_names_fall_back_as_documented(table):
    da = R.rasterize(table)
    del da.attrs["channel_names"]  # as written before channel_names was recorded: positional when it fits
    pd.testing.assert_frame_equal(R.to_frame(da), table.rename_axis(columns="feature"))
    sub = R.to_frame(da.sel(feature=["open", "shop"]))  # cannot be told apart: the array's dtype, values kept
    assert (sub.dtypes == np.float64).all()
    np.testing.assert_array_equal(sub.to_numpy(), table[["open", "shop"]].to_numpy(np.float64))
    renamed = R.to_frame(R.rasterize(table).assign_coords(feature=["a", "b", "c"]))  # no dtype recorded for "a"
    assert (renamed.dtypes == np.float64).all()
