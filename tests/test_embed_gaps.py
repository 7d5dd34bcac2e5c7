"""Error branches and hostile inputs of model.embed, the seamless window plan, embedding.py and the accessor.

Each test checks a branch the rest of the suite never ran, against an independent reference (the Keras
model's own ``encode``, NumPy / pandas, or a hand-checked case).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec import cells as C
from geos2vec.errors import InvalidInputError, InvalidTypeError
from geos2vec.normalize import FeatureStats
from geos2vec.raster import rasterize

pytest.importorskip("tensorflow")

from geos2vec.model import S2VecModel  # noqa: E402
from geos2vec.model.context import FaceGrid, encode_windows, window_plan  # noqa: E402
from geos2vec.model.embed import MODES, _encoder_fn, contextual_tokens  # noqa: E402

CENTRE = C.latlng_to_cell(40.73, -73.99, 8)  # a level-8 cell on face 4 (NYC)
SMALL = dict(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2, epochs=1, seed=5,
             mixed_precision="float32")  # float32 on a GPU too: compared with the Keras encoder at 1e-4


def _table(seed=0):
    """Random counts in 80 % of the level-12 cells of a 3x3 block of level-8 images (float32 channels c0..c4)."""
    images = np.unique(C.grid_disk(np.array([CENTRE], np.uint64), 1))
    cells = np.sort(C.cell_to_children(images, 12).ravel())
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(rng.poisson(0.7, (cells.size, 5)).astype(np.float32),
                         index=pd.Index(cells, name="cell_id"), columns=[f"c{k}" for k in range(5)])
    return table[rng.random(cells.size) < 0.8]


@pytest.fixture(scope="module")
def block():
    table = _table()
    da = rasterize(table)
    model = S2VecModel(**SMALL).build(da, stats=FeatureStats.fit(table, log1p=True))
    return model, da, table


def _keras_tokens(model, da, covered=None):
    """Reference: the Keras encoder on the normalized images, as (image, row*col, dim)."""
    n, r, c, f = da.shape
    x = model.stats.transform(np.asarray(da.values, np.float32).reshape(n, r * c, f)).astype(np.float32)
    return model.keras_model.encode(x, covered=covered).numpy()


# --------------------------------------------------------------------------- model.embed options
@pytest.mark.parametrize("kw", [{"batch_size": 0}, {"batch_size": -1}, {"batch_size": 2.5}, {"batch_size": "8"},
                                {"block": 0}, {"block": -4}, {"block": True}])
def test_batch_size_and_block_must_be_positive_integers(block, kw):
    """batch_size=-1 gave all-zero contextual vectors and np.empty garbage in 'tiled'; block=-1 no rows at all."""
    model, da, _ = block
    (name, value), = kw.items()
    for mode in MODES:
        with pytest.raises(InvalidInputError, match=rf"{name} must be a positive integer, got {value!r}"):
            model.embed(da, mode=mode, verbose=False, **kw)


def test_batch_size_and_block_of_one_give_the_keras_encoders_tokens(block):
    model, da, _ = block
    tokens = _keras_tokens(model, da)
    obs = np.asarray(da["observed"].values).reshape(da.sizes["image"], -1)
    for kw in ({"batch_size": 1, "block": 1}, {"batch_size": np.int64(3), "block": np.int32(2)}):
        tiled = model.embed(da, mode="tiled", verbose=False, **kw)
        np.testing.assert_allclose(tiled.values, tokens[obs], rtol=1e-4, atol=1e-5)
        image = model.embed(da, mode="image", verbose=False, **kw)
        np.testing.assert_allclose(image.values, tokens.mean(axis=1), rtol=1e-4, atol=1e-5)
    ref = model.embed(da, verbose=False)
    small = model.embed(da, batch_size=1, block=1, verbose=False)
    np.testing.assert_array_equal(small["cell"].values, ref["cell"].values)
    np.testing.assert_allclose(small.values, ref.values, rtol=1e-4, atol=1e-5)


def test_embed_names_bad_cells_grids_coordinates_and_tables(block):
    model, da, table = block
    with pytest.raises(InvalidInputError, match=r"cells must be 'observed', 'all' or an array.*'ALL'"):
        model.embed(da, cells="ALL", verbose=False)
    with pytest.raises(InvalidInputError, match=r"cells must be level-12 cells"):
        model.embed(da, cells=np.asarray(da["image"].values[:2], np.uint64), verbose=False)
    with pytest.raises(InvalidTypeError, match=r"mode='tiled' needs images.*mode='patch'"):
        model.embed(table, mode="tiled")
    with pytest.raises(InvalidInputError, match="not built or trained yet"):
        S2VecModel(**SMALL).embed(da)
    with pytest.raises(InvalidInputError, match=r"trained on 16x16 images, got 8x8"):
        model.embed(rasterize(table, image_level=9), verbose=False)
    with pytest.raises(InvalidInputError, match=r"needs a 'cell_id\(image, row, col\)' coordinate"):
        model.embed(da.drop_vars("cell_id"), mode="tiled", verbose=False)
    with pytest.raises(InvalidInputError, match=r"mode='image' needs an 'image' coordinate"):
        model.embed(da.drop_vars("image"), mode="image", verbose=False)
    twice = pd.concat([table, table[["c1"]]], axis=1)
    with pytest.raises(InvalidInputError, match=r"duplicate columns \['c1'\]"):
        model.embed(twice, mode="patch")


def test_image_mode_without_cell_ids_names_the_image_of_a_nan_pixel(block):
    model, da, _ = block
    bare = da.drop_vars(["cell_id"])
    # the image vectors do not need cell ids: the same as with them, and the mean of the Keras tokens
    got = model.embed(bare, mode="image", verbose=False)
    np.testing.assert_allclose(got.values, _keras_tokens(model, da).mean(axis=1), rtol=1e-4, atol=1e-5)
    holed = bare.copy(data=np.asarray(bare.values, np.float32).copy())
    holed.values[1, 3, 5, 2] = np.nan
    token = C.cell_to_token(np.uint64(da["image"].values[1]))  # the pixel has no cell id: its image names it
    with pytest.raises(InvalidInputError, match=rf"1 NaN/inf value\(s\) in 1 cell\(s\) \(e\.g\. \['{token}'\]\)"):
        model.embed(holed, mode="image", verbose=False)


def test_keras_encoder_reads_the_covered_mask_and_is_traced_once():
    """contextual_tokens' traced Keras encoder passes the covered mask (it feeds the missing token)."""
    table = _table(1)
    da = rasterize(table)
    model = S2VecModel(**SMALL, missing_token=True).build(da, stats=FeatureStats.fit(table))
    km = model.keras_model
    rng = np.random.default_rng(2)
    covered = rng.random((da.sizes["image"], 16, 16)) < 0.6
    values = np.asarray(da.values, np.float32)
    got = contextual_tokens(km, model.stats, values, 4, covered=covered)
    ref = _keras_tokens(model, da, covered=covered.reshape(da.sizes["image"], -1).astype(np.float32))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, _keras_tokens(model, da), atol=1e-3)  # the mask changes the tokens
    assert _encoder_fn(km) is _encoder_fn(km)  # cached on the model


# --------------------------------------------------------------------------- window plan (context.py)
def test_contextual_mode_on_images_too_small_for_windows_says_to_use_tiled():
    table = _table(3)
    da = rasterize(table, image_level=11)  # 2x2 pixels per image: no n/4 margin for the seamless windows
    model = S2VecModel(**SMALL).build(da)
    with pytest.raises(InvalidInputError, match=r"divisible by 4, got 2x2 images; embed them with mode='tiled'"):
        model.embed(da, verbose=False)
    tiled = model.embed(da, mode="tiled", verbose=False)  # what the message offers works
    obs = np.asarray(da["observed"].values).reshape(da.sizes["image"], -1)
    np.testing.assert_allclose(tiled.values, _keras_tokens(model, da)[obs], rtol=1e-4, atol=1e-5)
    with pytest.raises(InvalidInputError, match="context must be one of"):
        window_plan([0], [1], [1], 16, "middle")


def test_window_plan_of_one_pixel_by_hand_and_of_no_pixel():
    # n = 4, h = 2: pixel (R, C) = (5, 6) of face 3
    corners, con = window_plan([3], [5], [6], 4, "centred")
    assert corners.tolist() == [[3, 3, 5]] and con["pos"].tolist() == [(5 - 3) * 4 + (6 - 5)]
    corners, con = window_plan([3], [5], [6], 4, "blend")
    # windows at rows {4, 2} x cols {6, 4}; tent weights 1 - |R - r0 + 0.5 - h| / h per axis
    got = {tuple(corners[w]): round(float(x), 6) for w, x in zip(con["window"], con["weight"])}
    assert got == {(3, 4, 6): 0.75 * 0.25, (3, 4, 4): 0.75 * 0.75, (3, 2, 6): 0.25 * 0.25, (3, 2, 4): 0.25 * 0.75}
    calls = []
    for context in ("centred", "blend"):
        corners, con = window_plan(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), 4, context)
        assert corners.shape == (0, 3) and all(v.size == 0 for v in con.values())
        out = encode_windows(lambda x, c: calls.append(1), np.zeros((0, 4, 4, 2), np.float32),
                             np.zeros((0, 4, 4), bool), con, 0, 3)
        assert out.shape == (0, 3) and out.dtype == np.float32
    assert calls == []  # nothing to encode


def test_face_grid_of_mixed_levels_or_no_images():
    with pytest.raises(InvalidInputError, match="images of one level"):
        FaceGrid(np.array([CENTRE, C.cell_to_parent(CENTRE, 7)], np.uint64), 16)
    empty = FaceGrid(np.empty(0, np.uint64), 16)
    img, r, c = empty.lookup(np.array([4, 4]), np.array([35, -1]), np.array([17, 3]))
    # (-1, 3) lies beyond face 4's edge: its place in its image on face 2 (the cell grid_disk finds there)
    across = C.grid_disk(C.face_ij_to_cell(4, 0, 3, 12), 1)[1]  # (di, dj) = (-1, 0); row = i on face 4
    assert img.tolist() == [-1, -1] and r.tolist() == [35 % 16, int(C.cell_to_rowcol(across, 8)[0])] \
        and c.tolist() == [17 % 16, int(C.cell_to_rowcol(across, 8)[1])]


# --------------------------------------------------------------------------- embedding.py / accessor
def test_rows_with_duplicate_or_multi_index_labels_keep_them_and_get_their_cells_vectors(block):
    model, da, table = block
    cells = table.index.to_numpy(np.uint64)[[40, 3, 40, 700]]
    lat, lng = C.cell_to_latlng(cells)
    for index in (pd.Index(["a", "b", "a", "a"]), pd.MultiIndex.from_tuples([(1, "x"), (0, "y"), (1, "x"), (2, "z")])):
        rows = gpd.GeoDataFrame({"v": [1, 2, 3, 4]}, geometry=gpd.points_from_xy(lng, lat), index=index, crs=4326)
        out = rows.s2vec.embed(features=table, model=model, progress=False)
        assert out.index.equals(index) and out["v"].tolist() == [1, 2, 3, 4]
        assert out["s2_cell"].tolist() == cells.tolist()
        ref = model.embed(da, as_frame=True, verbose=False).loc[cells]  # each point's pixel (all are observed)
        np.testing.assert_allclose(out.filter(like="s2vec_").to_numpy(), ref.to_numpy(), rtol=1e-5, atol=1e-6)


def test_unbuilt_model_and_cells_or_tables_of_another_level_are_clear_errors(block):
    from geos2vec.embedding import cell_embeddings, embed_cells

    model, _, table = block
    lat, lng = C.cell_to_latlng(table.index.to_numpy(np.uint64)[:2])
    rows = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lng, lat), crs=4326)
    for call in (lambda: rows.s2vec.embed(features=table, model=S2VecModel(**SMALL)),
                 lambda: embed_cells(table.index[:2], table, model=S2VecModel(**SMALL)),
                 lambda: cell_embeddings(table, model=S2VecModel(**SMALL))):
        with pytest.raises(InvalidInputError, match=r"not built or trained yet.*load_model"):  # was "level-None"
            call()
    parents = C.cell_to_parent(table.index.to_numpy(np.uint64)[:3], 11)
    with pytest.raises(InvalidInputError, match="all cells must be level 12"):
        embed_cells(parents, table, model=model)
    coarse = table.groupby(C.cell_to_parent(table.index.to_numpy(np.uint64), 11)).sum()
    with pytest.raises(InvalidInputError, match=r"holds cells of level\(s\) \[11\].*asked for at level 12"):
        rows.s2vec.embed(features=coarse, model=model)


def test_accessor_keeps_the_error_class_of_bad_coordinates():
    from geos2vec.accessor import DaskS2VecAccessor

    rows = gpd.GeoDataFrame(geometry=[shapely.Point(10.0, 40.0), shapely.Point(10.0, 95.0)], crs=4326)
    with pytest.raises(InvalidInputError, match=r"1 latitude\(s\) outside \[-90, 90\] at positions \[1\].*in order"):
        rows.s2vec.cell_ids()
    with pytest.raises(InvalidInputError, match="latitude"):
        rows.geometry.s2vec.tokens()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AttributeError, match="dask_geopandas.from_dask_dataframe"):
            DaskS2VecAccessor(pd.DataFrame({"a": [1]}))
