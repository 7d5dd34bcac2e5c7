"""geos2vec.raster: cell tables <-> xarray images, windows, augmentation, zarr, plots."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geos2vec import cells as C
from geos2vec import raster as R
from geos2vec.errors import InvalidInputError, InvalidTypeError

NYC = (40.75, -73.98)


def table(cells, nchan=3, dtype=np.int64, seed=0, names=None):
    rng = np.random.default_rng(seed)
    vals = rng.integers(0, 50, size=(len(cells), nchan)).astype(dtype)
    names = pd.Index(names or [f"ch{k}" for k in range(nchan)], name="feature")
    return pd.DataFrame(vals, index=pd.Index(np.asarray(cells, dtype=np.uint64), name="cell_id"), columns=names)


def some_cells(n=40, seed=0, lat=NYC[0], lng=NYC[1], spread=0.4, level=12):
    rng = np.random.default_rng(seed)
    c = C.latlng_to_cell(lat + rng.uniform(-spread, spread, n), lng + rng.uniform(-spread, spread, n), level)
    return np.unique(c)


def pandas_reference(features, image_level=8, fill=0):
    """Straightforward reference: reindex the table on every pixel cell of every image."""
    imgs = np.unique(C.cell_to_parent(features.index.to_numpy(), image_level))
    level = int(C.get_level(features.index.to_numpy()[:1])[0])
    n = 1 << (level - image_level)
    r, c = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    pix = C.rowcol_to_cell(imgs[:, None, None], r[None], c[None], level)
    full = features.reindex(pix.ravel(), fill_value=fill)
    return imgs, pix, full.to_numpy().reshape(len(imgs), n, n, -1)


# --------------------------------------------------------------------------- layout
def test_layout_matches_cells_and_pandas_reference():
    t = table(some_cells(300), nchan=4)
    da = R.rasterize(t)
    assert da.dims == ("image", "row", "col", "feature")
    assert da.dtype == np.int64
    imgs, pix, ref = pandas_reference(t)
    np.testing.assert_array_equal(da["image"].values, imgs)
    np.testing.assert_array_equal(da["cell_id"].values, pix)
    np.testing.assert_array_equal(da.values, ref)
    assert da["image"].dtype == np.uint64 and da["cell_id"].dtype == np.uint64
    assert list(da["token"].values) == list(C.cell_to_token(imgs))
    assert list(da["feature"].values) == list(t.columns)
    np.testing.assert_array_equal(da["observed"].values, np.isin(pix, t.index.to_numpy()))
    # every pixel: its cell is a child of the image, at the (row, col) cell_to_rowcol gives
    for k, img in enumerate(imgs):
        kids = np.sort(C.cell_to_children(np.uint64(img), 12).ravel())
        np.testing.assert_array_equal(np.sort(da["cell_id"].values[k].ravel()), kids)
    row, col = C.cell_to_rowcol(da["cell_id"].values, 8)
    np.testing.assert_array_equal(row, np.broadcast_to(np.arange(16)[:, None], row.shape))
    np.testing.assert_array_equal(col, np.broadcast_to(np.arange(16)[None, :], col.shape))


def test_hand_checked_pixel_and_map_orientation():
    cell = C.latlng_to_cell(*NYC, 12)
    t = pd.DataFrame({"a": [7], "b": [3]}, index=pd.Index([cell], name="cell_id"))
    da = R.rasterize(t)
    r, c = C.cell_to_rowcol(cell, 8)
    assert da.shape == (1, 16, 16, 2)
    assert da.values[0, r, c].tolist() == [7, 3]
    assert da.values.sum() == 10 and da["observed"].values.sum() == 1
    # NYC lies on an equatorial face: row 0 is north, col 0 is west
    lat, lng = C.cell_to_latlng(da["cell_id"].values[0])
    assert (np.diff(lat, axis=0) < 0).all() and (np.diff(lng, axis=1) > 0).all()


@pytest.mark.parametrize("image_level,gap", [(8, 4), (10, 2), (5, 1), (12, 0)])
def test_other_level_pairs(image_level, gap):
    patch = image_level + gap
    t = table(some_cells(60, level=patch, spread=0.05), nchan=2)
    da = R.rasterize(t, image_level=image_level)
    assert da.shape[1:3] == (1 << gap, 1 << gap)
    assert da.attrs["patch_level"] == patch and da.attrs["image_level"] == image_level
    _, _, ref = pandas_reference(t, image_level)
    np.testing.assert_array_equal(da.values, ref)
    pd.testing.assert_frame_equal(R.to_frame(da), t.sort_index())


def test_fill_and_float_dtypes():
    t = table(some_cells(50), nchan=2, dtype=np.float32)
    da = R.rasterize(t, fill=np.nan)
    assert da.dtype == np.float32
    assert np.isnan(da.values[~da["observed"].values]).all()
    assert not np.isnan(da.values[da["observed"].values]).any()
    da5 = R.rasterize(t, fill=-5)
    assert (da5.values[~da5["observed"].values] == -5).all()
    pd.testing.assert_frame_equal(R.to_frame(da), t.sort_index())


def test_mixed_dtypes_use_common_dtype_and_round_trip():
    cells = some_cells(80)
    t = pd.DataFrame({"n": np.arange(cells.size, dtype=np.int32), "x": np.linspace(0, 1, cells.size),
                      "flag": np.arange(cells.size) % 2 == 0,
                      "nullable": pd.array(np.arange(cells.size), dtype="Int64")},
                     index=pd.Index(cells, name="cell_id"))
    da = R.rasterize(t)
    assert da.dtype == np.float64
    assert R.to_frame(da).columns.name == "feature"
    back = R.to_frame(da)
    assert back["n"].dtype == np.int32 and back["flag"].dtype == bool and back["x"].dtype == np.float64
    np.testing.assert_array_equal(back["x"].to_numpy(), t.sort_index()["x"].to_numpy())
    np.testing.assert_array_equal(back["nullable"].to_numpy(), np.arange(cells.size)[np.argsort(cells)])


# --------------------------------------------------------------------------- round trip
DTYPES = [np.int8, np.int32, np.int64, np.uint16, np.uint64, np.float32, np.float64, np.bool_]


@st.composite
def feature_tables(draw):
    image_level = draw(st.integers(3, 10))
    gap = draw(st.integers(0, 4))
    level = image_level + gap
    lat = draw(st.floats(-80, 80))
    lng = draw(st.floats(-179, 179))
    n = draw(st.integers(1, 60))
    spread = draw(st.floats(1e-4, 2.0))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    cells = np.unique(C.latlng_to_cell(np.clip(lat + rng.uniform(-spread, spread, n), -90, 90),
                                       (lng + rng.uniform(-spread, spread, n) + 180) % 360 - 180, level))
    rng.shuffle(cells)
    ncol = draw(st.integers(1, 4))
    uniform = draw(st.booleans())
    dts = [draw(st.sampled_from(DTYPES))] * ncol if uniform else [draw(st.sampled_from(DTYPES)) for _ in range(ncol)]
    cols = {}
    for k, dt in enumerate(dts):
        dt = np.dtype(dt)
        if dt.kind == "b":
            v = rng.integers(0, 2, cells.size).astype(bool)
        elif dt.kind == "f":
            v = rng.normal(0, 1e3, cells.size).astype(dt)
        else:
            info = np.iinfo(dt)
            v = rng.integers(max(info.min, -1000), min(info.max, 10**6), cells.size, endpoint=True).astype(dt)
        cols[f"c{k}" if k % 2 else f"road {k}"] = v
    t = pd.DataFrame(cols, index=pd.Index(cells, name="cell_id"))
    t.columns.name = "feature"
    return t, image_level


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feature_tables())
def test_round_trip_exact(args):
    t, image_level = args
    da = R.rasterize(t, image_level=image_level)
    back = R.to_frame(da)
    pd.testing.assert_frame_equal(back, t.sort_index(), check_exact=True)
    assert back.index.dtype == np.uint64
    # the observed pixels are exactly the table's cells
    assert int(da["observed"].values.sum()) == len(t)
    np.testing.assert_array_equal(np.sort(da["cell_id"].values[da["observed"].values]), np.sort(t.index.to_numpy()))


def test_inexact_common_dtype_raises():
    cells = some_cells(3)
    t = pd.DataFrame({"big": np.full(cells.size, 2**62 + 1, dtype=np.int64), "x": np.zeros(cells.size)},
                     index=pd.Index(cells, name="cell_id"))
    with pytest.raises(ValueError, match="cannot be stored exactly"):
        R.rasterize(t)


# --------------------------------------------------------------------------- bad input
def test_bad_input():
    cells = some_cells(10)
    t = table(cells)
    with pytest.raises(ValueError, match="duplicate cell id"):
        R.rasterize(pd.concat([t, t.iloc[:1]]))
    mixed = t.copy()
    mixed.index = pd.Index(np.r_[cells[:-1], C.cell_to_parent(cells[-1], 11)], name="cell_id")
    with pytest.raises(ValueError, match="mixes cell levels"):
        R.rasterize(mixed)
    with pytest.raises(TypeError, match="numeric"):
        R.rasterize(t.assign(name="x"))
    with pytest.raises(TypeError, match="uint64 S2 cell ids"):
        R.rasterize(t.reset_index(drop=True).set_axis(C.cell_to_token(cells), axis=0))
    with pytest.raises(ValueError, match="invalid S2 cell"):
        R.rasterize(t.set_axis(pd.Index(np.arange(1, 11, dtype=np.uint64) * 2, name="cell_id"), axis=0))
    with pytest.raises(ValueError, match="empty"):
        R.rasterize(t.iloc[:0])
    with pytest.raises(ValueError, match="not patch_level"):
        R.rasterize(t, patch_level=13)
    with pytest.raises(ValueError, match="finer than patch_level|finer than"):
        R.rasterize(t, image_level=13)
    with pytest.raises(ValueError, match="fill"):
        R.rasterize(t, fill=np.nan)
    with pytest.raises(ValueError, match="<NA>"):
        R.rasterize(pd.DataFrame({"a": pd.array([1, None] + [2] * 8, dtype="Int64")}, index=t.index))
    with pytest.raises(TypeError, match="to_frame"):
        R.rasterize(t["ch0"])
    with pytest.raises(TypeError, match="DataFrame indexed by cell_id, not ndarray"):
        R.rasterize(t.to_numpy())


def test_explicit_images_and_empty_table():
    t = table(some_cells(100))
    data_imgs = np.unique(C.cell_to_parent(t.index.to_numpy(), 8))
    extra = C.latlng_to_cell(np.array([41.9, 34.05]), np.array([-87.7, -118.3]), 8)  # Chicago, LA: no data
    order = np.r_[extra[:1], data_imgs[::-1], extra[1:]]
    da = R.rasterize(t, images=order)
    np.testing.assert_array_equal(da["image"].values, order)
    assert not da["observed"].values[0].any() and not da["observed"].values[-1].any()
    assert (da.values[0] == 0).all()
    pd.testing.assert_frame_equal(R.to_frame(da), t.sort_index())
    with pytest.raises(ValueError, match="not in images="):
        R.rasterize(t, images=data_imgs[1:])
    with pytest.raises(ValueError, match="image_level"):
        R.rasterize(t, images=C.cell_to_parent(data_imgs, 7))
    empty = R.rasterize(t.iloc[:0], images=extra, patch_level=12)
    assert empty.shape == (2, 16, 16, 3) and not empty["observed"].values.any()
    assert R.to_frame(empty).shape == (0, 3)


def test_area_covering_includes_empty_surroundings():
    poly = shapely.box(-74.3, 40.45, -73.6, 41.0)
    cover = R.image_cells(poly, 8)
    polys = np.asarray(C.cell_polygons(cover).values)
    assert shapely.intersects(polys, poly).all()
    # every level-8 cell containing a point of the polygon is in the cover
    rng = np.random.default_rng(1)
    lng, lat = rng.uniform(-74.3, -73.6, 3000), rng.uniform(40.45, 41.0, 3000)
    assert np.isin(C.latlng_to_cell(lat, lng, 8), cover).all()
    # ... and so is every cell touching a vertex of the polygon's boundary
    bx, by = shapely.get_coordinates(poly).T
    assert np.isin(C.latlng_to_cell(by, bx, 8), cover).all()
    t = table(some_cells(30, spread=0.1))
    da = R.rasterize(t, area=gpd.GeoSeries([poly], crs="EPSG:4326").to_crs("EPSG:3857"))
    assert set(da["image"].values) == set(cover) | set(C.cell_to_parent(t.index.to_numpy(), 8))
    with pytest.raises(ValueError, match="no CRS"):
        R.rasterize(t, area=gpd.GeoSeries([poly]))
    with pytest.raises(ValueError, match="not longitude/latitude"):
        R.image_cells(shapely.box(0, 0, 1e6, 1e6))



def _brute_force_cover(area, crs, level, n=60):
    """Cells whose polygon (densified, transformed to ``crs``) meets ``area``, among cells near its points (an
    ``n x n`` grid over its bounds); and the cells of those points."""
    x0, y0, x1, y1 = area.bounds
    xs, ys = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    pts = gpd.GeoSeries(gpd.points_from_xy(xs.ravel(), ys.ravel()), crs=crs)
    pts = pts[pts.within(area.buffer(1e-6))].to_crs(4326)
    inside = np.unique(C.latlng_to_cell(pts.y.to_numpy(), pts.x.to_numpy(), level))
    cand = np.unique(C.grid_disk(inside, 2).ravel())
    polys = gpd.GeoSeries(shapely.segmentize(np.asarray(C.cell_polygons(cand).values), 0.01), crs=4326).to_crs(crs)
    return cand[shapely.intersects(np.asarray(polys.values), area)], inside


@pytest.mark.parametrize("crs,lng,lat", [(3832, 180.0, -17.0), (32760, 179.9, -17.0), (3832, -179.7, -17.3)])
@pytest.mark.parametrize("level", [8, 10])
def test_area_across_the_antimeridian_is_covered_the_short_way(crs, lng, lat, level):
    """A projected square across lng 180 (Fiji): its cells, not a band of cells round the globe."""
    centre = gpd.GeoSeries([shapely.Point(lng, lat)], crs=4326).to_crs(crs).iloc[0]
    square = centre.buffer(50_000, cap_style=3)  # 100 km x 100 km
    got = R.image_cells(gpd.GeoSeries([square], crs=crs), level)
    ref, inside = _brute_force_cover(square, crs, level)
    np.testing.assert_array_equal(got, ref)
    assert np.isin(inside, got).all()
    _, clng = C.cell_to_latlng(got)
    assert (np.abs(clng) > 178.5).all()  # (was a band of 3642 level-8 cells all round the Earth)
    # in lon/lat: longitudes running past 180 mean the same as the two halves split at the antimeridian
    box = shapely.box(179.5, -17.5, 180.5, -16.5)
    halves = np.union1d(R.image_cells(shapely.box(179.5, -17.5, 180, -16.5), level),
                        R.image_cells(shapely.box(-180, -17.5, -179.5, -16.5), level))
    np.testing.assert_array_equal(R.image_cells(box, level), halves)
    polys = gpd.GeoSeries(C.cell_polygons(halves).values, crs=4326)
    assert (polys.intersects(box) | polys.intersects(shapely.affinity.translate(box, -360))).all()


def test_area_around_a_pole_in_a_projected_crs_is_the_polar_area():
    square = gpd.GeoSeries([shapely.Point(0, 0).buffer(500_000, cap_style=3)], crs=3413)  # polar stereographic
    got = R.image_cells(square, 6)  # raised "encloses a pole"; now the square around the pole, closed along lat 90
    xy = np.random.default_rng(0).uniform(-499_000, 499_000, (4000, 2))
    pts = gpd.GeoSeries(gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=3413).to_crs(4326)
    want = np.unique(C.latlng_to_cell(pts.y.to_numpy(), pts.x.to_numpy(), 6))
    assert np.isin(want, got).all() and C.latlng_to_cell(90.0, 0.0, 6) in got


# --------------------------------------------------------------------------- windows / augmentation
def test_windows_aligned_equal_images_and_offsets_follow_the_face_grid():
    # a dense 2x2 block of images so that offset windows exist
    img = C.latlng_to_cell(*NYC, 8)
    block = C.cell_to_children(C.cell_to_parent(img, 7), 8).ravel()
    kids = C.cell_to_children(block, 12).ravel()
    rng = np.random.default_rng(3)
    t = table(rng.choice(kids, 300, replace=False), nchan=2)
    da = R.rasterize(t, images=block)
    w = R.windows(da, size=16, stride=16, min_observed=0)
    assert w.sizes["window"] == 4
    for k in range(4):
        j = int(np.flatnonzero(da["cell_id"].values[:, 0, 0] == w["cell_id"].values[k, 0, 0])[0])
        np.testing.assert_array_equal(w.values[k], da.values[j])
    w4 = R.windows(da, size=16, stride=4, min_observed=0)
    assert w4.sizes["window"] == 5 * 5  # corners 0, 4, ..., 16 in each direction over a 32x32 block
    # neighbouring pixels are neighbouring cells on the face grid: rows/cols consecutive
    face, i, j = C.cell_to_face_ij(w4["cell_id"].values)
    gr, gc = C._rowcol_from_ij(face, i, j, 1 << 12)
    np.testing.assert_array_equal(np.diff(gr, axis=1), 1)
    np.testing.assert_array_equal(np.diff(gc, axis=2), 1)
    np.testing.assert_array_equal(gr[:, 0, 0], w4["row0"].values)
    # every window value is its cell's row in the table, or fill where unobserved
    lookup = t.reindex(w4["cell_id"].values.ravel())
    obs = w4["observed"].values.ravel()
    np.testing.assert_array_equal(obs, lookup.notna().all(axis=1).to_numpy())
    np.testing.assert_array_equal(w4.values.reshape(-1, 2)[obs], lookup.to_numpy()[obs])
    assert (w4.values.reshape(-1, 2)[~obs] == 0).all()
    pd.testing.assert_frame_equal(R.to_frame(w4), t.sort_index())
    # windows must lie fully inside images: drop one image, fewer windows
    assert R.windows(da.isel(image=[0, 1, 2]), 16, 4, min_observed=0).sizes["window"] < 25
    assert R.windows(da, 8, 8, min_observed=0).sizes["window"] == 16
    assert R.windows(da, 16, 4, min_observed=10**6).sizes["window"] == 0


def test_augment_dihedral_hand_checked():
    cell = C.latlng_to_cell(*NYC, 10)
    img = C.cell_to_parent(cell, 9)
    kids = C.cell_to_children(img, 10).ravel()
    t = pd.DataFrame({"v": np.arange(1, 5)}, index=pd.Index(kids, name="cell_id")).rename_axis(columns="feature")
    da = R.rasterize(t, image_level=9)
    a = da.values[0, :, :, 0]  # [[p, q], [r, s]]
    p, q, r, s = a[0, 0], a[0, 1], a[1, 0], a[1, 1]
    aug = R.augment(da)
    assert aug.sizes["image"] == 8 and list(aug["transform"].values) == list(range(8))
    expect = [
        [[p, q], [r, s]],  # identity
        [[q, s], [p, r]],  # quarter turn counter-clockwise
        [[s, r], [q, p]],  # half turn
        [[r, p], [s, q]],  # three quarter turns
        [[q, p], [s, r]],  # left-right flip
        [[s, q], [r, p]],
        [[r, s], [p, q]],  # up-down flip
        [[p, r], [q, s]],  # transpose
    ]
    for k in range(8):
        np.testing.assert_array_equal(aug.values[k, :, :, 0], expect[k])
    # the 8 transforms are distinct and cell ids move with the values
    assert len({tuple(aug.values[k, :, :, 0].ravel()) for k in range(8)}) == 8
    pd.testing.assert_frame_equal(R.to_frame(aug), t.sort_index())
    w = R.windows(da, size=2, stride=1, augment=True)
    assert w.sizes["window"] == 8 and "transform" in w.coords



def _block_images(seed=0):
    """A 5x5 block of level-8 images (level-12 pixels) near (0.3, 10.3), random values in every pixel."""
    img = C.latlng_to_cell(np.array([0.3]), np.array([10.3]), 8)
    kids = C.cell_to_children(np.unique(C.grid_disk(img, 2).ravel()), 12).ravel()
    rng = np.random.default_rng(seed)
    return R.rasterize(pd.DataFrame({"a": rng.random(kids.size)}, index=pd.Index(kids, name="cell_id")))


def test_windows_refuse_augmented_images():
    """Windows are cut from the images as rasterize made them: a turned image would be stitched in turned."""
    da = _block_images()
    w = R.windows(da, size=16, stride=8)
    assert w.sizes["window"] == 81
    with pytest.raises(InvalidInputError, match=r"175 of them are flipped or rotated.*augment after windowing"):
        R.windows(R.augment(da), size=16, stride=8)  # (was 81 windows, 79 of them wrong)
    with pytest.raises(InvalidInputError, match=r"25 of them are flipped or rotated \(transform coordinate \[1\]"):
        R.windows(R.augment(da, [1]), size=16, stride=8)
    with pytest.raises(InvalidInputError, match=r"25 image id\(s\) appear several times"):
        R.windows(xr.concat([da, da], dim="image"), size=16, stride=8)
    # the identity (or a flip of a flip) keeps the images where they are: the same windows
    for same in (R.augment(da, [0]), R.augment(R.augment(da, [4]), [4])):
        np.testing.assert_array_equal(R.windows(same, size=16, stride=8).values, w.values)
    # augmenting the windows is the way: each window turned, as augment turns it
    wa = R.windows(da, size=16, stride=8, augment=True)
    np.testing.assert_array_equal(wa.values[81 * 3:81 * 4], R.augment(w, [3]).values)
    with pytest.raises(InvalidInputError, match="min_observed must be an integer >= 0, got 'x'"):
        R.windows(da, min_observed="x")


def test_augment_checks_dims_and_transforms():
    da = _block_images().isel(image=[0])
    with pytest.raises(InvalidInputError, match=r"in this order, got \('image', 'col', 'row', 'feature'\)"):
        R.augment(da.transpose("image", "col", "row", "feature"), [0])  # (gave values and cell ids apart)
    with pytest.raises(InvalidInputError, match=r"got \[1.7\]; not allowed: \[1.7\]"):
        R.augment(da, [1.7])  # (was transform 1)
    with pytest.raises(InvalidInputError, match=r"got \['3'\]"):
        R.augment(da, ["3"])  # (was transform 3)
    with pytest.raises(InvalidInputError, match=r"got \[1, 9\]; not allowed: \[9\]"):
        R.augment(da, (t for t in [1, 9]))  # (said "got []": the generator was used up)
    with pytest.raises(InvalidInputError, match=r"not allowed: \[True\]"):
        R.augment(da, [True])
    with pytest.raises(InvalidTypeError, match="iterable"):
        R.augment(da, 3)
    with pytest.raises(InvalidInputError, match=r"\['observed'\]"):
        R.augment(da.drop_vars("observed"), [0])
    # numpy integers are integers; a coordinate stored in another dim order is read by name
    moved = da.assign_coords(cell_id=da["cell_id"].transpose("image", "col", "row"))
    out = R.augment(moved, [np.int64(1)])
    np.testing.assert_array_equal(out["cell_id"].values, R.augment(da, [1])["cell_id"].values)
    pd.testing.assert_frame_equal(R.to_frame(out), R.to_frame(da))


# --------------------------------------------------------------------------- dask / zarr
def test_chunks_and_zarr_round_trip(tmp_path):
    t = table(some_cells(400, spread=1.0), nchan=3, dtype=np.int32)
    eager = R.rasterize(t)
    lazy = R.rasterize(t, chunks=3)
    assert lazy.chunks[0][0] == 3
    xr.testing.assert_identical(lazy.compute(), eager)
    R.to_zarr(lazy, tmp_path / "r.zarr")
    back = R.open_zarr(tmp_path / "r.zarr")
    assert back.chunks is not None and back.chunks[0][0] == 3  # lazy, stored chunks
    np.testing.assert_array_equal(back.values, eager.values)
    np.testing.assert_array_equal(back["cell_id"].values, eager["cell_id"].values)
    assert back["image"].dtype == np.uint64 and list(back["token"].values) == list(eager["token"].values)
    assert back.attrs == eager.attrs
    pd.testing.assert_frame_equal(R.to_frame(back), t.sort_index())
    with pytest.raises(ValueError, match="positive"):
        R.rasterize(t, chunks=0)


def test_interrupted_zarr_write_does_not_open_as_valid(tmp_path):
    import dask.array as dsa

    from geos2vec.errors import InvalidInputError

    t = table(some_cells(400, spread=1.0), nchan=3, dtype=np.int32)
    lazy = R.rasterize(t, chunks=2)
    n = lazy.sizes["image"]
    assert n >= 6

    def boom(block, block_info=None):  # the writer dies at the third block (like a kill or Ctrl-C)
        if block_info[0]["chunk-location"][0] == 2:
            raise KeyboardInterrupt
        return block

    broken = lazy.copy(data=dsa.map_blocks(boom, lazy.data, dtype=lazy.dtype))
    with pytest.raises(KeyboardInterrupt):
        R.to_zarr(broken, tmp_path / "cut.zarr")
    with pytest.raises(InvalidInputError, match="not completely written"):
        R.open_zarr(tmp_path / "cut.zarr")
    # deferred writes are marked by hand once computed
    delayed = R.to_zarr(lazy, tmp_path / "late.zarr", compute=False)
    with pytest.raises(ValueError, match="not completely written"):
        R.open_zarr(tmp_path / "late.zarr")
    delayed.compute()
    R.mark_zarr_complete(tmp_path / "late.zarr")
    np.testing.assert_array_equal(R.open_zarr(tmp_path / "late.zarr").values, lazy.values)


def test_dask_dataframe_input():
    dd = pytest.importorskip("dask.dataframe")
    t = table(some_cells(300, spread=1.0), nchan=2).sort_index()
    ddf = dd.from_pandas(t, npartitions=4)
    lazy = R.rasterize(ddf, chunks=2)
    xr.testing.assert_identical(lazy.compute(), R.rasterize(t))
    with pytest.raises(ValueError, match="known divisions"):
        R.rasterize(ddf.clear_divisions())


# --------------------------------------------------------------------------- real data / plots / accessor
def test_shared_cities_round_trip_and_plot(shared_data):
    import matplotlib

    matplotlib.use("Agg")
    g = gpd.read_parquet(shared_data / "pois" / "nyc.parquet")
    cells = C.latlng_to_cell(g.geometry.y.to_numpy(), g.geometry.x.to_numpy(), 12)
    t = pd.crosstab(pd.Index(cells, name="cell_id"), g["fclass"].to_numpy())
    t.columns.name, t.index.name = "feature", "cell_id"
    da = R.rasterize(t)
    assert da.sizes["image"] == 7 and int(da["observed"].values.sum()) == 393  # SOURCES.md
    assert int(da.values.sum()) == len(g)
    pd.testing.assert_frame_equal(R.to_frame(da), t)
    ax = R.plot_image(da, "restaurant")
    coll = ax.collections[1]  # observed pixels (collection 0: unobserved, grey)
    np.testing.assert_allclose(np.sort(coll.get_array()),
                               np.sort(np.log1p(t["restaurant"].to_numpy().astype(float))))
    ax2 = R.plot_image(da, ["restaurant", "cafe"], image=da["token"].values[0], log=False)
    # figsize next to an existing ax is ignored, not passed on to the artist
    assert R.plot_image(da, "restaurant", ax=ax2, figsize=(3, 3)) is ax2
    img = ax2.images[0].get_array()
    want = (da.isel(image=0).sel(feature=["restaurant", "cafe"]).sum("feature")).values.astype(float)
    obs = da["observed"].values[0]
    np.testing.assert_array_equal(np.ma.getdata(img)[obs], want[obs])
    assert np.ma.getmaskarray(img)[~obs].all() or np.isnan(np.ma.getdata(img)[~obs]).all()
    with pytest.raises(ValueError, match="unknown channel"):
        R.plot_image(da, "nope")


def test_accessor_rasterize():
    pytest.importorskip("geos2vec.features")
    from geos2vec.features import count_features

    rng = np.random.default_rng(0)
    n = 200
    g = gpd.GeoDataFrame({"fclass": rng.choice(["cafe", "school", "bank"], n)},
                         geometry=gpd.points_from_xy(NYC[1] + rng.uniform(-.3, .3, n),
                                                                          NYC[0] + rng.uniform(-.3, .3, n)),
                         crs="EPSG:4326")
    da = g.s2vec.rasterize(ontology=["cafe", "school", "bank"], image_level=7)
    assert da.attrs["image_level"] == 7
    xr.testing.assert_identical(da, R.rasterize(count_features(g, ontology=["cafe", "school", "bank"]), image_level=7))
    cells = C.latlng_to_cell(g.geometry.y.to_numpy(), g.geometry.x.to_numpy(), 12)
    ref = pd.crosstab(pd.Index(cells, name="cell_id"), g["fclass"].to_numpy())
    back = R.to_frame(da)
    for name in ["cafe", "school", "bank"]:
        np.testing.assert_array_equal(back[name].to_numpy(), ref[name].to_numpy())


def test_augmenting_twice_records_the_composed_transform():
    """The transform coordinate always maps back to the original image: a flip of a flip is the identity."""
    cell = C.latlng_to_cell(*NYC, 10)
    img = C.cell_to_parent(cell, 8)
    kids = C.cell_to_children(img, 10).ravel()
    t = pd.DataFrame({"v": np.arange(1, kids.size + 1)}, index=pd.Index(kids, name="cell_id")).rename_axis(
        columns="feature")
    da = R.rasterize(t, image_level=8)
    once = R.augment(da)
    twice = R.augment(once)
    # every image of `twice` equals the original transformed by its recorded transform
    for k in range(twice.sizes["image"]):
        ref = R.augment(da, [int(twice["transform"].values[k])])
        np.testing.assert_array_equal(twice.values[k], ref.values[0])
        np.testing.assert_array_equal(twice["cell_id"].values[k], ref["cell_id"].values[0])
    flip = R.augment(R.augment(da, [4]), [4])
    assert list(flip["transform"].values) == [0] and np.array_equal(flip.values, da.values)


class _RecordingArray:
    """An array-like for dask.array.from_array that records which images each read touched."""

    def __init__(self, values):
        self.values, self.shape, self.dtype, self.ndim = values, values.shape, values.dtype, values.ndim
        self.images_read = set()

    def __getitem__(self, key):
        first = key[0] if isinstance(key, tuple) else key
        self.images_read.update(np.arange(self.shape[0])[first].ravel().tolist())
        return self.values[key]


def test_windows_and_augment_of_a_dask_array_stay_lazy_and_read_only_the_images_they_need():
    dsa = pytest.importorskip("dask.array")
    img = C.latlng_to_cell(*NYC, 8)
    block = np.sort(C.cell_to_children(C.cell_to_parent(img, 6), 8).ravel())  # 4 x 4 images of level 8
    kids = C.cell_to_children(block, 12).ravel()
    rng = np.random.default_rng(5)
    t = table(rng.choice(kids, 3000, replace=False), nchan=3)
    eager = R.rasterize(t, images=block)
    eager = eager.assign_coords(covered=eager["observed"] | (rng.random(eager["observed"].shape) < 0.5))
    source = _RecordingArray(np.asarray(eager.values))
    lazy = eager.copy(data=dsa.from_array(source, chunks=(1, 16, 16, 3)))
    ref = R.windows(eager, size=16, stride=8, min_observed=0)
    got = R.windows(lazy, size=16, stride=8, min_observed=0, chunk_windows=5)
    assert source.images_read == set()  # nothing read yet
    assert got.chunks is not None and got.chunks[0][0] == 5
    xr.testing.assert_identical(got.compute(), ref)
    # the first chunk of 5 windows reads only the images those windows overlap
    source.images_read.clear()
    got[:5].compute(scheduler="sync")
    first = np.unique(np.searchsorted(block, C.cell_to_parent(ref["cell_id"].values[:5].ravel(), 8)))
    assert source.images_read == set(first.tolist()) and len(first) < block.size
    # augment keeps it lazy and equal
    aug = R.augment(got, transforms=[1, 6])
    assert aug.chunks is not None
    xr.testing.assert_identical(aug.compute(), R.augment(ref, transforms=[1, 6]))
    xr.testing.assert_identical(R.windows(lazy, 16, 8, min_observed=0, augment=True).compute(),
                                R.windows(eager, 16, 8, min_observed=0, augment=True))
    with pytest.raises(ValueError, match="chunk_windows"):
        R.windows(lazy, 16, 8, chunk_windows=0)


@settings(max_examples=25, deadline=None)
@given(side=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_dihedral_permutations_match_the_transforms(side, seed):
    # the pixel permutations DeviceBatches gathers with are the image transforms of augment, pixel for pixel
    from geos2vec._dihedral import dihedral, permutations

    window = np.random.default_rng(seed).random((side, side))
    perms = permutations(side)
    assert perms.shape == (8, side * side) and perms.dtype == np.int64
    for t in range(8):
        np.testing.assert_array_equal(window.reshape(-1)[perms[t]].reshape(side, side),
                                      dihedral(window[None], t)[0])


# --------------------------------------------------------------------------- coverage through dask, to_frame, zarr
def _table_with_coverage():
    """A table whose source covers a box and lacks channel ``ch1`` (available only where it has a count)."""
    from geos2vec.coverage import set_coverage

    t = table(some_cells(300, spread=1.0), nchan=3).sort_index()
    t.iloc[::2, 1] = 0  # ch1 is zero in half the cells: not available there
    return set_coverage(t, (-74.2, 40.5, -73.8, 40.9), missing_channels=["ch1"])


def test_dask_rasterize_keeps_the_coverage():
    dd = pytest.importorskip("dask.dataframe")
    t = _table_with_coverage()
    eager = R.rasterize(t)
    # hand-checked: covered = centre in the box or a row; ch1 available exactly where it has a count
    lat, lng = C.cell_to_latlng(eager["cell_id"].values.ravel())
    in_box = ((lng > -74.2) & (lng < -73.8) & (lat > 40.5) & (lat < 40.9)).reshape(eager["observed"].shape)
    obs = eager["observed"].values
    np.testing.assert_array_equal(eager["covered"].values, in_box | obs)
    assert (obs & ~in_box).any() and (~obs & in_box).any() and (~obs & ~in_box).any()
    np.testing.assert_array_equal(eager["available"].values[..., 1], obs & (eager.values[..., 1] != 0))
    np.testing.assert_array_equal(eager["available"].values[..., 0], eager["covered"].values)
    for parts, chunks in ((1, None), (4, 2)):
        lazy = R.rasterize(dd.from_pandas(t, npartitions=parts), chunks=chunks)
        assert {"covered", "available"} <= set(lazy.coords)
        xr.testing.assert_identical(lazy.compute(), eager)  # values, covered, available, attrs


def test_to_frame_gives_back_the_coverage(tmp_path):
    pytest.importorskip("geos2vec.features")
    from geos2vec import FeatureStats, count_features
    from geos2vec.errors import CoverageWarning

    pois = gpd.GeoDataFrame({"fclass": ["restaurant", "cafe", "bank"]},
                            geometry=gpd.points_from_xy([-74.0, -74.01, -73.9], [40.7, 40.71, 40.8]), crs=4326)
    t = count_features(pois, coverage=(-74.1, 40.6, -73.8, 40.9))  # no roads: the road channel is missing
    da = R.rasterize(t)
    back = R.to_frame(da)
    pd.testing.assert_frame_equal(back, t)
    assert back.attrs["coverage"] == t.attrs["coverage"] == {
        "geometry": t.attrs["coverage"]["geometry"], "channels": {"road": "POLYGON EMPTY"}}
    road = list(t.columns).index("road")
    counts = np.asarray(FeatureStats.fit(back).count)
    assert counts[road] == 0 and (np.delete(counts, road) == 3).all()  # 3 cells; the missing roads not zeros
    np.testing.assert_array_equal(counts, np.asarray(FeatureStats.fit(t).count))
    xr.testing.assert_identical(R.rasterize(back), da)  # same covered and available
    # through zarr and windows too
    R.to_zarr(da, tmp_path / "c.zarr")
    assert R.to_frame(R.open_zarr(tmp_path / "c.zarr")).attrs["coverage"] == t.attrs["coverage"]
    assert R.to_frame(R.windows(da, size=8, stride=8)).attrs["coverage"] == t.attrs["coverage"]
    # images with a covered mask but no coverage in their attrs: the loss is said, not silent
    da.attrs.pop("coverage")
    with pytest.warns(CoverageWarning, match="coverage is unknown"):
        assert "coverage" not in R.to_frame(da).attrs


def _chunk_files(store, name):
    return sorted(p for p in (store / name).rglob("*") if p.is_file() and p.name != "zarr.json")


def test_interrupted_region_write_does_not_open_as_valid(tmp_path):
    import dask.array as dsa

    from geos2vec.errors import InvalidInputError

    da = R.rasterize(table(some_cells(400, spread=1.0), nchan=3, dtype=np.int32))
    store = tmp_path / "r.zarr"
    R.to_zarr(da.chunk({"image": 1}), store)
    new = (da.isel(image=slice(2, 6)) * 10).chunk({"image": 1})

    def boom(block, block_info=None):  # the writer dies at the third block
        if block_info[0]["chunk-location"][0] == 2:
            raise KeyboardInterrupt
        return block

    broken = new.copy(data=dsa.map_blocks(boom, new.data, dtype=new.dtype))
    with pytest.raises(KeyboardInterrupt):
        R.to_zarr(broken, store, mode="r+", region={"image": slice(2, 6)})
    with pytest.raises(InvalidInputError, match="not completely written"):
        R.open_zarr(store)
    R.to_zarr(new, store, mode="r+", region={"image": slice(2, 6)})  # a finished region write: complete again
    want = da.values.copy()
    want[2:6] *= 10
    np.testing.assert_array_equal(R.open_zarr(store).values, want)
    # an append is an update too: complete once done, and equal to writing everything at once
    R.to_zarr(da.isel(image=slice(0, 3)), tmp_path / "a.zarr", mode="a")
    R.to_zarr(da.isel(image=slice(3, None)), tmp_path / "a.zarr", mode="a", append_dim="image")
    xr.testing.assert_identical(R.open_zarr(tmp_path / "a.zarr").compute(), da)


def test_open_zarr_refuses_lost_arrays_and_chunks(tmp_path):
    import shutil

    from geos2vec.errors import InvalidInputError

    t = table(some_cells(400, spread=1.0), nchan=3, dtype=np.int32)
    cells = t.index.to_numpy()
    da = R.rasterize(t, area=shapely.box(-75.5, 40.0, -72.5, 41.5))  # with all-fill images: all-zero chunks
    assert (~da["observed"].values.any(axis=(1, 2))).any()
    store = tmp_path / "s.zarr"

    def fresh():
        shutil.rmtree(store, ignore_errors=True)
        R.to_zarr(da.chunk({"image": 2}), store)

    fresh()  # empty chunks are written too, so an intact store opens and round-trips
    n_chunks = -(-da.sizes["image"] // 2)
    assert len(_chunk_files(store, "features")) == n_chunks == len(_chunk_files(store, "observed"))
    back = R.open_zarr(store)
    np.testing.assert_array_equal(back.values, da.values)
    np.testing.assert_array_equal(R.to_frame(back).index.to_numpy(), np.sort(cells))
    for name in ("features", "observed", "cell_id"):  # one chunk file lost: not read as empty cells
        fresh()
        _chunk_files(store, name)[1].unlink()
        with pytest.raises(InvalidInputError, match=f"lost 1 of the {n_chunks} chunk files of its '{name}'"):
            R.open_zarr(store)
    for name in ("observed", "cell_id", "image"):  # one array lost: not every pixel observed
        fresh()
        shutil.rmtree(store / name)
        with pytest.raises(InvalidInputError, match=f"lost its \\['{name}'\\] array"):
            R.open_zarr(store)
    fresh()
    meta = store / "features" / "zarr.json"
    meta.write_text(meta.read_text()[:100])
    with pytest.raises(InvalidInputError, match="damaged metadata"):
        R.open_zarr(store)


def test_rasterize_to_frame_and_plot_raise_geos2vec_errors():
    """Every refusal of ``rasterize``, ``to_frame`` and ``plot_image`` is a geos2vec error class (also the
    built-in class callers catch), not a bare ``ValueError`` / ``TypeError``."""
    cells = some_cells(30)
    t = table(cells)
    cases = [
        (InvalidTypeError, "use series.to_frame", lambda: R.rasterize(t.iloc[:, 0])),
        (InvalidTypeError, "not list", lambda: R.rasterize([1, 2])),
        (InvalidInputError, "duplicate cell id", lambda: R.rasterize(pd.concat([t, t.iloc[:1]]))),
        (InvalidInputError, "the feature table is empty", lambda: R.rasterize(t.iloc[:0])),
        (InvalidInputError, "not patch_level 13", lambda: R.rasterize(t, patch_level=13)),
        (InvalidInputError, "finer than patch_level", lambda: R.rasterize(t, image_level=13, patch_level=12)),
        (InvalidInputError, "positive number of images", lambda: R.rasterize(t, chunks=0)),
        (InvalidInputError, "only the image dimension", lambda: R.rasterize(t, chunks={"row": 2})),
        (InvalidTypeError, "to_frame needs an xarray.DataArray", lambda: R.to_frame(np.zeros((1, 16, 16, 3)))),
    ]
    da = R.rasterize(t)
    cases += [
        (InvalidInputError, "expected dims", lambda: R.to_frame(da.isel(image=0, row=0))),
        (InvalidInputError, "no 'observed' coordinate", lambda: R.to_frame(da.drop_vars("observed"))),
    ]
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    cases += [
        (InvalidTypeError, "plot_image needs a DataArray", lambda: R.plot_image(da.values)),
        (InvalidInputError, r"unknown channel\(s\) \['nope'\]", lambda: R.plot_image(da, channel="nope")),
        (InvalidInputError, "is not in the DataArray", lambda: R.plot_image(da, image=10**6)),
    ]
    for cls, match, call in cases:
        with pytest.raises(cls, match=match):
            call()
