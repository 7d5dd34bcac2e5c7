"""geos2vec.raster: zarr stores that are not geos2vec's or written differently, bad tables, images and areas."""

from __future__ import annotations

import re
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

from geos2vec import cells as C
from geos2vec import raster as R
from geos2vec.errors import InvalidInputError, InvalidTypeError
from geos2vec.raster import storage
from tests.test_raster import _brute_force_cover as _cover_and_points

NYC = (40.75, -73.98)


def _table(n=60, seed=0, nchan=3, dtype=np.int64):
    rng = np.random.default_rng(seed)
    cells = np.unique(C.latlng_to_cell(NYC[0] + rng.uniform(-0.3, 0.3, n), NYC[1] + rng.uniform(-0.3, 0.3, n), 12))
    return pd.DataFrame(rng.integers(0, 9, (cells.size, nchan)).astype(dtype),
                        index=pd.Index(cells, name="cell_id"), columns=[f"c{k}" for k in range(nchan)])


def _with_empty_images():
    """Level-10 images (4 x 4 pixels), among them images with no data at all (all-zero chunks)."""
    da = R.rasterize(_table(), image_level=10, area=shapely.box(-74.3, 40.5, -73.7, 41.0))
    assert (~da["observed"].values.any(axis=(1, 2))).sum() >= 4
    return da


# --------------------------------------------------------------------------- zarr
def test_to_zarr_takes_a_dataarray_only(tmp_path):
    da = R.rasterize(_table(), image_level=10)
    for bad in (da.to_dataset(name="x"), da.values):
        with pytest.raises(TypeError, match=f"to_zarr needs an xarray.DataArray, not {type(bad).__name__}"):
            R.to_zarr(bad, tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()


def test_a_store_of_something_else_is_not_read_as_images(tmp_path):
    from geos2vec.model.data import open_images

    xr.Dataset({"other": ("x", np.arange(3))}).to_zarr(tmp_path / "o.zarr", consolidated=False)
    for opener in (R.open_zarr, open_images):
        with pytest.raises(InvalidInputError, match=r"o\.zarr'\) holds no 'features' array; was it written by "
                                                    r"geos2vec\.raster\.to_zarr\?"):
            opener(tmp_path / "o.zarr")


def test_a_store_written_without_empty_chunks_opens(tmp_path):
    """``write_empty_chunks=False`` leaves the all-fill chunks out: the store is not marked as holding every
    chunk, so their absence is not taken for lost files, and they read as the fill."""
    da = _with_empty_images()
    R.to_zarr(da.chunk({"image": 1}), tmp_path / "s.zarr", write_empty_chunks=False)
    files = [p for p in (tmp_path / "s.zarr" / "features").rglob("*") if p.is_file() and p.name != "zarr.json"]
    assert len(files) == int(da["observed"].values.any(axis=(1, 2)).sum()) < da.sizes["image"]
    back = R.open_zarr(tmp_path / "s.zarr")
    np.testing.assert_array_equal(back.values, da.values)
    np.testing.assert_array_equal(back["observed"].values, da["observed"].values)


def test_a_sharded_store_opens_and_round_trips(tmp_path):
    """zarr 3 shards: one file holds several chunks, so the chunk files are not counted."""
    da = _with_empty_images()
    n, f = da.sizes["row"], da.sizes["feature"]
    R.to_zarr(da.chunk({"image": 4}), tmp_path / "s.zarr",
              encoding={"features": {"chunks": (1, n, n, f), "shards": (4, n, n, f)}})
    files = [p for p in (tmp_path / "s.zarr" / "features").rglob("*") if p.is_file() and p.name != "zarr.json"]
    assert len(files) == -(-da.sizes["image"] // 4)  # one file per shard of four chunks
    back = R.open_zarr(tmp_path / "s.zarr")
    np.testing.assert_array_equal(back.values, da.values)
    np.testing.assert_array_equal(back["cell_id"].values, da["cell_id"].values)
    # shard files are not counted against chunks, but a lost array is still refused
    shutil.rmtree(tmp_path / "s.zarr" / "observed")
    with pytest.raises(InvalidInputError, match=r"lost its \['observed'\] array"):
        R.open_zarr(tmp_path / "s.zarr")


def test_stored_chunks_falls_back_to_zarr_2s_count():
    class Zarr2Array:  # zarr 2 arrays have no store_path; nchunks_initialized lists the keys once
        nchunks_initialized = 7

    assert storage._stored_chunks(Zarr2Array()) == 7


# --------------------------------------------------------------------------- tables
def test_tables_without_usable_channels_or_index_are_refused():
    t = _table()
    with pytest.raises(ValueError, match="the feature table has no columns; it needs one numeric column per channel"):
        R.rasterize(t[[]])
    with pytest.raises(ValueError, match=r"duplicate channel names \['c0'\]; channel names must be unique"):
        R.rasterize(t.set_axis(["c0", "c1", "c0"], axis=1))
    multi = t.set_axis(pd.MultiIndex.from_arrays([t.index, np.zeros(len(t), int)], names=["cell_id", "k"]))
    with pytest.raises(TypeError, match=r"must have a flat index of uint64 cell ids \(named 'cell_id'\), not a "
                                        "MultiIndex"):
        R.rasterize(multi)
    for fill in ("0", [0, 1], None):
        with pytest.raises(TypeError, match=re.escape(f"fill must be a number, got {fill!r}")):
            R.rasterize(t, fill=fill)


def test_float32_and_float64_channels_widen_exactly():
    t = _table(nchan=2, dtype=np.float64)
    t["c0"] = (t["c0"] / 3).astype(np.float32)  # not exact in decimal, exact in float64
    t.loc[t.index[0], "c1"] = np.nan
    da = R.rasterize(t, image_level=10, fill=np.nan)
    assert da.dtype == np.float64
    observed = da["observed"].values
    got = pd.DataFrame(da.values[observed], index=da["cell_id"].values[observed], columns=t.columns).sort_index()
    pd.testing.assert_frame_equal(got, t.astype(np.float64).sort_index(), check_names=False)


# --------------------------------------------------------------------------- images=
def test_explicit_images_must_be_a_flat_list_of_distinct_cells():
    t = _table()
    imgs = np.unique(C.cell_to_parent(t.index.to_numpy(), 10))
    with pytest.raises(ValueError, match="give either images= or area=, not both"):
        R.rasterize(t, image_level=10, images=imgs, area=shapely.box(-74.0, 40.7, -73.9, 40.8))
    with pytest.raises(ValueError, match="images must be a 1-D sequence of image cell ids"):
        R.rasterize(t, image_level=10, images=imgs.reshape(1, -1))
    with pytest.raises(ValueError, match="images contains duplicate cell ids"):
        R.rasterize(t, image_level=10, images=np.r_[imgs, imgs[:1]])


@pytest.mark.parametrize("empty", [[], (), np.array([], np.uint64), pd.Index([], dtype="uint64")])
def test_empty_images_say_so(empty):
    """``images=[]`` (a float64 array to NumPy) said "cell ids must be an integer array (uint64), got dtype
    float64; floats cannot hold 64-bit ids exactly"."""
    with pytest.raises(ValueError, match=r"images is empty; pass at least one image cell \(or images=None\)"):
        R.rasterize(_table(), image_level=10, images=empty)


# --------------------------------------------------------------------------- areas
def test_bad_areas_are_named():
    with pytest.raises(InvalidInputError, match="area has no non-empty geometry"):
        R.image_cells(gpd.GeoSeries([None, shapely.Polygon()], crs=4326))
    # a (min_lon, min_lat, max_lon, max_lat) box is the box polygon (6e59a57); other tuples and types are refused
    box = (-74.0, 40.7, -73.9, 40.8)
    np.testing.assert_array_equal(R.image_cells(box), R.image_cells(shapely.box(*box)))
    with pytest.raises(InvalidTypeError, match=r"area must be a shapely geometry, GeoSeries, GeoDataFrame or a "
                                               r"\(min_lon, min_lat, max_lon, max_lat\) box, not tuple"):
        R.image_cells((-74.0, 40.7, -73.9))
    with pytest.raises(InvalidTypeError, match="not dict"):
        R.image_cells({"a": 1})
    with pytest.raises(InvalidInputError, match="area is empty"):
        R.image_cells(shapely.Polygon())


def _all_cells(level):
    return np.sort(C.cell_to_children(C.cell_to_parent(C.latlng_to_cell(
        np.array([0.0, 0.0, 90.0, 0.0, 0.0, -90.0]), np.array([0.0, 90.0, 0.0, 180.0, -90.0, 0.0]), 5), 0),
        level).ravel())


def test_area_near_a_pole_is_covered_at_every_longitude(monkeypatch):
    """A cap round the north pole and a small box next to it: the cells of all S2 cells at the level whose
    polygon meets the area (all 6 * 4**5 of them tested), from a sample grid that goes round the pole once:
    fewer points than there are cells (a widening by ``1 / cos(90)`` went round it thousands of times)."""
    everything = _all_cells(5)
    assert everything.size == 6 * 4**5 and np.unique(everything).size == everything.size
    polys = np.asarray(C.cell_polygons(everything).values)
    sampled = []
    real = C.latlng_to_cell

    def spy(lat, lng, level):
        sampled.append(np.size(lat))
        return real(lat, lng, level)

    monkeypatch.setattr(C, "latlng_to_cell", spy)
    for area in (shapely.box(-180, 86, 180, 90), shapely.box(10, 89.2, 20, 89.6)):
        sampled.clear()
        np.testing.assert_array_equal(R.image_cells(area, 5), everything[shapely.intersects(polys, area)])
        assert 0 < max(sampled) < everything.size


def _brute_force_cover(area, crs, level):
    """Cells whose polygon meets ``area`` (tests/test_raster.py's reference, on an 80 x 80 grid of points)."""
    return _cover_and_points(area, crs, level, n=80)[0]


@pytest.mark.parametrize("hole_side", [-1, 1])
def test_projected_area_with_a_hole_across_the_antimeridian(hole_side):
    """A square across lng 180 (EPSG:3832) with a hole on one side of it: the hole is unwrapped next to the
    outline, so its cells are left out (they were kept: the hole lay 360 degrees away)."""
    crs = 3832
    cx, cy = gpd.GeoSeries([shapely.Point(180.0, -17.0)], crs=4326).to_crs(crs).iloc[0].coords[0]
    hole = shapely.box(-140_000, -140_000, -20_000, 140_000)
    hole = shapely.affinity.scale(hole, xfact=hole_side, origin=(0, 0))
    square = shapely.Polygon(shapely.box(-300_000, -300_000, 300_000, 300_000).exterior.coords,
                             [hole.exterior.coords])
    square = shapely.affinity.translate(square, cx, cy)
    got = R.image_cells(gpd.GeoSeries([square], crs=crs), 8)
    ref = _brute_force_cover(square, crs, 8)
    np.testing.assert_array_equal(got, ref)
    solid = R.image_cells(gpd.GeoSeries([shapely.Polygon(square.exterior)], crs=crs), 8)
    assert set(got) < set(solid) and len(solid) - len(got) >= 2  # whole cells inside the hole are left out


def test_projected_collection_of_multipart_geometries_across_the_antimeridian():
    """A GeometryCollection holding a MultiPolygon (two squares either side of lng 180) and a MultiPoint: each
    part is unwrapped, so the cells are those of the parts, not a band round the Earth."""
    crs = 3832
    cx, cy = gpd.GeoSeries([shapely.Point(180.0, -17.0)], crs=4326).to_crs(crs).iloc[0].coords[0]
    west = shapely.box(cx - 120_000, cy - 40_000, cx - 20_000, cy + 40_000)
    east = shapely.box(cx - 30_000, cy + 60_000, cx + 90_000, cy + 120_000)  # across lng 180
    centre = C.latlng_to_cell(np.array([-18.5]), np.array([179.2]), 8)
    plat, plng = C.cell_to_latlng(centre)
    point = gpd.GeoSeries([shapely.Point(plng[0], plat[0])], crs=4326).to_crs(crs).iloc[0]
    far = shapely.Point(point.x, point.y - 200_000)
    area = shapely.GeometryCollection([shapely.MultiPolygon([west, east]), shapely.MultiPoint([point, far])])
    got = R.image_cells(gpd.GeoSeries([area], crs=crs), 8)
    far_ll = gpd.GeoSeries([far], crs=crs).to_crs(4326).iloc[0]
    far_cell = C.latlng_to_cell(np.array([far_ll.y]), np.array([far_ll.x]), 8)
    ref = np.unique(np.concatenate([_brute_force_cover(west, crs, 8), _brute_force_cover(east, crs, 8),
                                    centre, far_cell]))
    np.testing.assert_array_equal(got, ref)
    _, lng = C.cell_to_latlng(got)
    assert (np.abs(lng) > 178.0).all()


def test_projected_parts_either_side_of_the_antimeridian():
    """Two polygons in EPSG:3832: one across lng 180 (placed about -180 once unwrapped), one just west of it
    (about 179.9). Together they span more than 360 degrees of longitude, and were refused as "not
    longitude/latitude degrees"; they now take the cells of each."""
    crs = 3832
    parts = gpd.GeoSeries([shapely.box(179.7, -17.0, 180.3, -16.5), shapely.box(179.75, -18.0, 179.95, -17.5)],
                          crs=4326).to_crs(crs)
    got = R.image_cells(parts, 8)
    ref = np.union1d(_brute_force_cover(parts.iloc[0], crs, 8), _brute_force_cover(parts.iloc[1], crs, 8))
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, np.union1d(R.image_cells(parts.iloc[:1], 8), R.image_cells(parts.iloc[1:], 8)))
