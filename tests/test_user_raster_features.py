"""A user's channel subsets of images, category channels of float columns, and roads in several CRSs.

References are pandas on the input table, s2sphere on hand-computed points and shapely, never the code's own
output: (1) ``to_frame`` of a channel subset/reorder gives each channel the dtype it had in the table; (2) a
category column of whole numbers names its channels ``k=1`` whether it is int or float (a NaN made it float);
(3) a line is counted halfway along its length, so a road has the same cell in EPSG:4326 and a projected CRS.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely

import geos2vec  # noqa: F401  (registers the accessor)
from geos2vec import cells as C
from geos2vec import raster as R
from geos2vec.features import count_features

SAMPLE_ROADS = Path(geos2vec.__file__).parent / "data" / "sample" / "los_angeles_roads.parquet"


def ref_cell(lat, lng, level):
    return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(level).id()


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


# --------------------------------------------------------------------------- 2. category channel names
def _pois(k):
    lon = np.array([-118.25, -118.24, -118.20, -118.21, -118.26])
    lat = np.array([34.05, 34.06, 34.02, 34.03, 34.05])
    return gpd.GeoDataFrame({"category": ["cafe"] * 5, "k": k}, geometry=gpd.points_from_xy(lon, lat), crs=4326)


def _counts(frame, extra, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return count_features(frame, extra=extra, **kw)


def _reference(pois, names):
    """pandas crosstab of (s2sphere cell, value), columns named by hand."""
    keep = pois["k"].notna().to_numpy()
    cells = [ref_cell(y, x, 12) for x, y in zip(pois.geometry.x[keep], pois.geometry.y[keep])]
    ref = pd.crosstab(pd.Index(np.array(cells, dtype=np.uint64), name="cell_id"),
                      pois["k"].to_numpy()[keep]).sort_index(axis=1)
    ref.columns = names
    return ref


def test_whole_number_categories_are_named_the_same_for_int_and_float_columns():
    ints = _pois(np.array([1, 2, 1, 2, 2], dtype=np.int64))
    floats = _pois([1.0, 2.0, np.nan, 2.0, 2.0])  # a NaN: the same codes read as float64
    a, b = _counts(ints, ["k"]), _counts(floats, ["k"])
    assert list(a.columns[-2:]) == list(b.columns[-2:]) == ["k=1", "k=2"]  # was k=1.0, k=2.0 for floats
    for got, pois in ((a, ints), (b, floats)):
        ref = _reference(pois, ["k=1", "k=2"])
        pd.testing.assert_frame_equal(got.loc[ref.index, ["k=1", "k=2"]], ref, check_names=False,
                                      check_index_type=False)
    # a category dtype of floats, nullable Float64: the same names; non-whole floats and strings as they are
    assert list(_counts(floats.astype({"k": "category"}), ["k"]).columns[-2:]) == ["k=1", "k=2"]
    assert list(_counts(floats.astype({"k": "Float64"}), ["k"]).columns[-2:]) == ["k=1", "k=2"]
    assert list(_counts(_pois([1.0, 2.5, 2.5, 1.0, 1.0]), ["k"]).columns[-2:]) == ["k=1", "k=2.5"]
    assert list(_counts(_pois(["1", "b", "b", "1", "b"]), ["k"]).columns[-2:]) == ["k=1", "k=b"]
    assert list(_counts(_pois(["1.0", "b", "b", "1.0", "b"]), ["k"]).columns[-2:]) == ["k=1.0", "k=b"]  # text


def test_float_category_names_are_the_coverages_too():
    # the coverage lists each layer's channels: the renamed ones, so that rasterize finds them
    road = gpd.GeoSeries([shapely.LineString([(-118.25, 34.05), (-118.20, 34.02)])], crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = count_features(_pois([1.0, 2.0, np.nan, 2.0, 2.0]), road, extra=["k"],
                           coverage=shapely.box(-118.3, 34.0, -118.1, 34.1))
    pois_layer, road_layer = t.attrs["coverage"]["layers"]
    assert pois_layer[-2:] == ["k=1", "k=2"] and road_layer == ["road"]
    assert set(pois_layer) | set(road_layer) == set(t.columns)
    da = R.rasterize(t)
    assert bool(da["covered"].any())


def test_the_dask_path_names_float_categories_as_the_in_memory_path():
    dd = pytest.importorskip("dask.dataframe")
    g = _pois([1.0, 2.0, np.nan, 2.0, 2.0])
    frame = pd.DataFrame({"lon": g.geometry.x, "lat": g.geometry.y, "category": g["category"], "k": g["k"]})
    mem, lazy = _counts(frame, ["k"]), _counts(dd.from_pandas(frame, npartitions=2), ["k"])
    assert list(lazy.columns[-2:]) == ["k=1", "k=2"]  # were k=1.0, k=2.0 on both paths
    ref = _reference(g, ["k=1", "k=2"])
    pd.testing.assert_frame_equal(lazy.loc[ref.index, ["k=1", "k=2"]], ref, check_names=False, check_index_type=False)
    pd.testing.assert_frame_equal(lazy, mem, check_names=False)
    # count_features_dask itself: the same names (it said k=1.0, k=2.0) and counts
    from geos2vec.partitioned import count_features_dask

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = count_features_dask(dd.from_pandas(frame, npartitions=2), extra=["k"])
    assert list(direct.columns[-2:]) == ["k=1", "k=2"]
    np.testing.assert_array_equal(direct.loc[ref.index].iloc[:, -2:].to_numpy(), ref.to_numpy())


# --------------------------------------------------------------------------- 3. lines at their midpoint
def _near_border(lat, lng, level, eps=1e-9):
    """True where a point within ``eps`` degrees lies in another cell."""
    here = C.latlng_to_cell(lat, lng, level)
    return np.logical_or.reduce([C.latlng_to_cell(lat + dy, lng + dx, level) != here
                                 for dx, dy in ((eps, 0), (-eps, 0), (0, eps), (0, -eps))])


def test_sample_roads_have_the_same_cell_in_every_crs():
    roads = gpd.read_parquet(SAMPLE_ROADS)
    geoms = roads.geometry.values
    two = shapely.get_num_coordinates(geoms) == 2
    assert two.sum() > 1000  # 2,570 two-vertex roads: their ends tied in point_on_surface
    # reference: halfway along the line (two vertices: the mean of the ends, by hand), its cell by s2sphere
    mid = shapely.get_coordinates(shapely.line_interpolate_point(geoms, 0.5, normalized=True))
    ends = shapely.get_coordinates(geoms[two]).reshape(-1, 2, 2).mean(axis=1)
    np.testing.assert_allclose(mid[two], ends, rtol=0, atol=1e-12)
    got = roads.s2vec.cell_ids(12).to_numpy()
    border = _near_border(mid[:, 1], mid[:, 0], 12)
    rows = np.flatnonzero(two)[::10]
    ok = ~border[rows]
    want = [ref_cell(y, x, 12) for x, y in ends[::10][ok]]
    assert got[rows[ok]].tolist() == want  # point_on_surface gave an end, in another cell for some
    for crs in ("EPSG:3857", "EPSG:32611"):  # was 73 of 2,570 two-vertex roads in another cell
        other = roads.to_crs(crs).s2vec.cell_ids(12).to_numpy()
        moved = np.flatnonzero(other != got)
        assert border[moved].all(), f"{crs}: {moved.size} roads changed cell, {int((~border[moved]).sum())} " \
                                    "of them away from a cell border"


def test_lines_across_the_antimeridian_and_multilines_take_their_midpoint():
    # 179.9 -> -179.7 is 0.4 degrees long across ±180: halfway is longitude -179.9 (latitude 2)
    cross = shapely.LineString([(179.9, 1.0), (-179.7, 3.0)])
    # parts of length 1 and 3: halfway (2 of 4) is 1 degree into the second part
    multi = shapely.MultiLineString([[(10.0, 0.0), (11.0, 0.0)], [(20.0, 0.5), (20.0, 3.5)]])
    gdf = gpd.GeoDataFrame(geometry=[cross, multi], crs=4326)
    want = [ref_cell(2.0, -179.9, 12), ref_cell(1.5, 20.0, 12)]
    assert gdf.s2vec.cell_ids(12).tolist() == want
    # the same road given in the Fiji map grid (EPSG:3460): the same cell
    assert gdf.iloc[:1].to_crs(3460).s2vec.cell_ids(12).tolist() == want[:1]
    # count_features counts a line POI there too (once), in either CRS
    pois = gpd.GeoDataFrame({"category": ["cafe"]}, geometry=[multi], crs=4326)
    for frame in (pois, pois.to_crs(3857)):
        t = _counts(frame, None)
        assert t.index.tolist() == [want[1]] and int(t["cafe"].sum()) == 1
