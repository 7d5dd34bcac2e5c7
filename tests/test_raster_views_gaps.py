"""Paths the suite never ran: raster transforms, views and plots, the dask paths, cell row/col, pole polygons.

Every value is checked against an independent reference (NumPy / pandas reindexing, the in-memory path for
the dask one, s2sphere, hand-checked geometry); bad input must raise geos2vec's own errors or a clear message.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

from geos2vec import cells as C
from geos2vec import raster as R
from geos2vec.errors import InvalidInputError, InvalidTypeError

NYC = (40.75, -73.98)


def _table(level=10, n=30, nchan=2, seed=0):
    rng = np.random.default_rng(seed)
    cells = np.unique(C.latlng_to_cell(NYC[0] + rng.uniform(-0.4, 0.4, n), NYC[1] + rng.uniform(-0.4, 0.4, n),
                                       level))
    vals = rng.integers(0, 50, size=(cells.size, nchan))
    return pd.DataFrame(vals, index=pd.Index(cells, name="cell_id"),
                        columns=pd.Index([f"ch{k}" for k in range(nchan)], name="feature"))


def _reference(features, imgs, image_level, patch_level, fill=0):
    """Every pixel of ``imgs`` reindexed on the table (pandas), ``(image, row, col, feature)``."""
    n = 1 << (patch_level - image_level)
    r, c = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    pix = C.rowcol_to_cell(np.asarray(imgs, np.uint64)[:, None, None], r[None], c[None], patch_level)
    full = features.reindex(pix.ravel(), fill_value=fill)
    return full.to_numpy().reshape(len(imgs), n, n, -1), features.index.isin(pix.ravel())


# --------------------------------------------------------------------------- rasterize / to_frame
def test_empty_table_needs_patch_level_and_gives_fill_images():
    t = _table()
    imgs = np.unique(C.cell_to_parent(t.index.to_numpy(), 8))
    with pytest.raises(ValueError, match="patch_level is required when the table is empty"):
        R.rasterize(t.iloc[:0], images=imgs)
    da = R.rasterize(t.iloc[:0], images=imgs, patch_level=10, fill=7)
    ref, _ = _reference(t.iloc[:0], imgs, 8, 10, fill=7)
    assert da.shape == ref.shape == (imgs.size, 4, 4, 2)
    np.testing.assert_array_equal(da.values, ref)
    assert not da["observed"].values.any()


def test_gap_over_12_levels_is_refused():
    t = _table(level=21, n=3)
    with pytest.raises(ValueError, match="patch_level - image_level = 13"):
        R.rasterize(t, image_level=8)


def test_chunks_as_a_dict():
    t = _table()
    imgs = np.unique(C.cell_to_parent(t.index.to_numpy(), 8))
    ref, _ = _reference(t, imgs, 8, 10)
    with pytest.raises(ValueError, match=r"only the image dimension is chunked; got chunks for \['row'\]"):
        R.rasterize(t, chunks={"row": 2, "image": 1})
    by_two = R.rasterize(t, chunks={"image": 2})
    assert by_two.data.chunks[0] == tuple([2] * (imgs.size // 2) + [1] * (imgs.size % 2))
    auto = R.rasterize(t, chunks={})  # no image entry: automatic (one chunk for so few images)
    assert auto.data.chunks[0] == (imgs.size,)
    for da in (by_two, auto):
        np.testing.assert_array_equal(da["image"].values, imgs)
        np.testing.assert_array_equal(da.values, ref)


def test_lazy_blocks_of_no_images_is_an_empty_dask_array():
    import dask.array as dsa

    from geos2vec.raster import transform

    out = transform._lazy_blocks(None, 0, 1, 64, 3, np.dtype(np.float64), dsa)  # 64 x 64 pixels: the big case
    assert out.shape == (0, 64, 64, 3) and out.dtype == np.float64
    assert out.compute().shape == np.empty((0, 64, 64, 3)).shape


def test_dask_table_empty_or_with_duplicates():
    dd = pytest.importorskip("dask.dataframe")
    t = _table()
    ddf = dd.from_pandas(t, npartitions=2)
    empty = ddf[ddf["ch0"] < 0]  # no rows, divisions still known
    assert empty.known_divisions
    with pytest.raises(ValueError, match="the feature table is empty; pass images= or area="):
        R.rasterize(empty)
    imgs = np.unique(C.cell_to_parent(t.index.to_numpy(), 8))
    lazy = R.rasterize(empty, images=imgs, patch_level=10, fill=3)
    ref, _ = _reference(t.iloc[:0], imgs, 8, 10, fill=3)
    np.testing.assert_array_equal(lazy.values, ref)
    dup = pd.concat([t, t.iloc[[0, 5]]]).sort_index()
    with pytest.raises(ValueError, match="duplicate cell ids"):
        R.rasterize(dd.from_pandas(dup, npartitions=2, sort=True))


def test_to_frame_refuses_what_rasterize_did_not_make():
    da = R.rasterize(_table())
    with pytest.raises(TypeError, match="not ndarray"):
        R.to_frame(da.values)
    with pytest.raises(TypeError, match="not Dataset"):
        R.to_frame(da.to_dataset())
    with pytest.raises(ValueError, match=r"expected dims.*'col', 'row'"):
        R.to_frame(da.transpose("image", "col", "row", "feature"))
    for coord in ("cell_id", "observed"):
        with pytest.raises(ValueError, match=f"no '{coord}' coordinate"):
            R.to_frame(da.drop_vars(coord))


# --------------------------------------------------------------------------- views
def test_augment_refuses_non_arrays_and_non_square_images():
    da = R.rasterize(_table())
    with pytest.raises(InvalidTypeError, match="got ndarray"):
        R.augment(da.values)
    with pytest.raises(InvalidInputError, match="square images or windows, got 4 x 2"):
        R.augment(da.isel(col=slice(0, 2)))


def test_windows_refuses_non_arrays_mixed_levels_and_level_30():
    da = R.rasterize(_table())
    for bad in (da.values, da.transpose("image", "col", "row", "feature")):
        with pytest.raises(InvalidTypeError, match="DataArray from rasterize"):
            R.windows(bad, size=4)
    finer = R.rasterize(_table(level=11), image_level=9)  # also 4 x 4 pixels, images one level finer
    with pytest.raises(InvalidInputError, match="images of one level"):
        R.windows(xr.concat([da, finer], dim="image"), size=4)
    deepest = R.rasterize(_table(level=30, n=3), image_level=30)
    with pytest.raises(InvalidInputError, match="up to 29"):
        R.windows(deepest, size=1)


@pytest.mark.parametrize("size", [4, 64])
def test_windows_of_a_dask_array_keeping_none(size):
    """No window kept (min_observed above any count, or windows larger than the images): as the NumPy path."""
    da = R.rasterize(_table())
    kw = {"size": size, "stride": 2, "min_observed": size * size + 1}
    ref = R.windows(da, **kw)
    got = R.windows(da.chunk({"image": 2}), **kw)
    assert ref.shape == (0, size, size, 2)
    assert got.chunks is not None and got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_array_equal(got.values, ref.values)
    assert R.to_frame(got).shape == (0, 2)


# --------------------------------------------------------------------------- plot
@pytest.fixture()
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plot_image_by_token_cell_id_or_position(plt):
    t = _table()
    da = R.rasterize(t)
    k = 3
    img = np.uint64(da["image"].values[k])
    token = str(C.cell_to_token(img))
    ref, _ = _reference(t, [img], 8, 10)
    obs = np.isin(_pixels(img), t.index.to_numpy())
    expected = np.where(obs, np.log1p(ref[0].sum(axis=-1).astype(float)), np.nan)
    for image in (token, img, int(img), k, np.int64(k)):
        ax = plt.figure().gca()
        R.plot_image(da, image=image, ax=ax)
        assert ax.get_title() == f"image {token}: all channels"
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array().filled(np.nan)), expected)
    with pytest.raises(TypeError, match="DataArray from rasterize"):
        R.plot_image(da.values)
    with pytest.raises(ValueError, match="'89c4' is not in the DataArray"):
        R.plot_image(da, image="89c4")


def _pixels(img):
    r, c = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    return C.rowcol_to_cell(np.full((4, 4), img, np.uint64), r, c, 10)


def test_plot_image_refuses_negative_positions_and_booleans(plt):
    da = R.rasterize(_table())
    for bad in (-1, np.int64(-2), True, np.bool_(False)):
        with pytest.raises(InvalidInputError, match="image must be a position"):
            R.plot_image(da, image=bad)


# --------------------------------------------------------------------------- dask counts and embeddings
def _pois(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"lon": rng.uniform(-74.0, -73.95, n), "lat": rng.uniform(40.7, 40.75, n),
                         "fclass": rng.choice(["restaurant", "cafe", "school"], n)})


def test_count_features_dask_checks_its_arguments_and_equals_in_memory():
    dd = pytest.importorskip("dask.dataframe")
    from geos2vec.features import count_features
    from geos2vec.partitioned import count_features_dask

    pois = _pois()
    dp = dd.from_pandas(pois, npartitions=4)
    with pytest.raises(InvalidInputError, match="needs pois and/or roads"):
        count_features_dask()
    for bad in (1, 0, True, 2.5, "8"):
        with pytest.raises(InvalidInputError, match="split_every must be an integer of at least 2"):
            count_features_dask(dp, split_every=bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = count_features(pois)
        pd.testing.assert_frame_equal(count_features_dask(dp, split_every=2), ref)
        pd.testing.assert_frame_equal(count_features_dask(dp, extra=[]), count_features(pois, extra=[]))


def test_embed_cells_of_dask_ids_counts_dask_pois_first():
    """Dask POIs as features (a frame without geometry, or in a dict) are counted first: as in memory."""
    dd = pytest.importorskip("dask.dataframe")
    import geos2vec
    from geos2vec.features import count_features

    pois = _pois()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(pois)
        cells = table.index.to_numpy()[::-1][:6]
        ref = geos2vec.embed_cells(cells, table, progress=False)
        ids = dd.from_pandas(pd.Series(cells), npartitions=2)
        for feats in (dd.from_pandas(pois, npartitions=3), {"pois": dd.from_pandas(pois, npartitions=3)}):
            got = geos2vec.embed_cells(ids, feats, progress=False).compute()
            pd.testing.assert_frame_equal(got, ref)


# --------------------------------------------------------------------------- cell row/col
def test_rowcol_to_cell_empty_mixed_and_coarse():
    img = C.latlng_to_cell(np.array([NYC[0], 10.0]), np.array([NYC[1], 20.0]), 8)
    out = C.rowcol_to_cell(np.zeros((0, 3), np.uint64), 0, 0, 12)
    assert out.shape == (0, 3) and out.dtype == np.uint64
    with pytest.raises(ValueError, match="image cells of one level"):
        C.rowcol_to_cell(np.r_[img[:1], C.cell_to_parent(img[1:], 7)], 0, 0, 12)
    with pytest.raises(ValueError, match="level 7 is coarser than the image cells"):
        C.rowcol_to_cell(img, 0, 0, 7)


def test_rowcol_and_face_ij_refuse_fractions_nan_strings_and_booleans():
    import s2sphere

    img = C.latlng_to_cell(np.array([NYC[0]]), np.array([NYC[1]]), 8)
    for bad in (1.7, np.nan, np.array([0.0, 2.5])):
        with pytest.raises(InvalidInputError, match="row must be whole numbers"):
            C.rowcol_to_cell(img, bad, 0, 10)
    for bad in ("1", True):
        with pytest.raises(InvalidTypeError, match="col must be integers"):
            C.rowcol_to_cell(img, 0, bad, 10)
    with pytest.raises(InvalidInputError, match="i must be whole numbers"):
        C.face_ij_to_cell(1, 0.5, 0, 3)
    # whole floats are exact: the same cell as integers, the inverse of cell_to_rowcol
    got = C.rowcol_to_cell(img, 2.0, np.array([3.0]), 10)
    np.testing.assert_array_equal(got, C.rowcol_to_cell(img, 2, 3, 10))
    r, c = C.cell_to_rowcol(got, 8)
    assert (int(r[0]), int(c[0])) == (2, 3)
    # and face_ij_to_cell agrees with s2sphere's CellId.from_face_ij
    want = s2sphere.CellId.from_face_ij(4, 5 << 27, 6 << 27).parent(3).id()
    assert int(C.face_ij_to_cell(4.0, 5.0, 6.0, 3)) == want


# --------------------------------------------------------------------------- polygons at the poles
def _pole_corner_cells(level):
    n = 1 << level
    face = np.repeat([2, 5], 4)  # the poles are the centres of faces 2 and 5
    i = np.tile([n // 2 - 1, n // 2 - 1, n // 2, n // 2], 2)
    j = np.tile([n // 2 - 1, n // 2, n // 2 - 1, n // 2], 2)
    return C.face_ij_to_cell(face, i, j, level)


@pytest.mark.parametrize("level", [1, 14, 16, 23, 26, 27, 28, 30])
def test_polygons_of_cells_with_a_pole_corner(level):
    """A quarter of the polar cap around the pole: 90 degrees of longitude, valid, holding its own centre."""
    import s2sphere

    cells = _pole_corner_cells(level)
    polys = C.cell_polygons(cells)
    for cell, poly in zip(cells, polys):
        xy = shapely.get_coordinates(poly)
        assert poly.is_valid
        assert xy[:, 0].max() - xy[:, 0].min() == pytest.approx(90.0, abs=1e-4)  # within 1 um at level 30
        assert xy[:, 0].min() >= -180.0 and xy[:, 0].max() <= 360.0  # shifted east, never west
        assert np.abs(xy[:, 1]).max() == 90.0  # the pole drawn as a stretch of its parallel
        ll = s2sphere.CellId(int(cell)).to_lat_lng()
        lat, lng = ll.lat().degrees, ll.lng().degrees
        assert any(poly.covers(shapely.Point(x, lat)) for x in (lng, lng + 360.0, lng - 360.0))

