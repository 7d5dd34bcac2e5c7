"""Embeddings joined onto user rows, the compact (NumPy) model format, and the NumPy encoder."""

from __future__ import annotations

import subprocess
import sys
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec
from geos2vec import cells as C
from geos2vec.demo import load_sample
from geos2vec.embedding import embed, embed_cells, row_cells
from geos2vec.errors import InvalidInputError
from geos2vec.features import count_features
from geos2vec.normalize import FeatureStats
from geos2vec.raster import rasterize

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def sample():
    pois, roads = load_sample()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(pois, roads, level=12)
    return pois, roads, table


@pytest.fixture(scope="module")
def tiny(sample, tmp_path_factory):
    """A tiny randomly initialised model on the bundled sample, saved in compact form and reloaded."""
    from geos2vec.model import S2VecModel

    _, _, table = sample
    da = rasterize(table)
    model = S2VecModel(encoder_layers=2, embedding_dim=16, decoder_dim=8, decoder_layers=1, num_heads=2,
                       epochs=1, seed=3)
    model.build(da, stats=FeatureStats.fit(table, log1p=True))
    path = tmp_path_factory.mktemp("model") / "tiny"
    model.save(path, compact=True)
    return model, path, da


def test_compact_model_embeds_like_keras(tiny):
    model, path, da = tiny
    loaded = geos2vec.load_model(path)
    assert loaded.keras_model is None and loaded.numpy_weights is not None
    assert loaded.stats.log1p and loaded.channels == model.channels
    np_ctx = loaded.embed(da, mode="contextual", as_frame=True, verbose=False)
    np_patch = loaded.embed(da, mode="patch", as_frame=True, verbose=False)
    # the same float16 weights in Keras
    again = geos2vec.load_model(path)
    again.ensure_keras()
    k_ctx = again.embed(da, mode="contextual", as_frame=True, verbose=False)
    k_patch = again.embed(da, mode="patch", as_frame=True, verbose=False)
    assert np_ctx.index.equals(k_ctx.index)
    np.testing.assert_allclose(np_ctx.to_numpy(), k_ctx.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(np_patch.to_numpy(), k_patch.to_numpy(), atol=1e-4)
    # and the float32 original agrees up to float16 rounding of the weights
    orig = model.embed(da, mode="contextual", as_frame=True, verbose=False)
    np.testing.assert_allclose(np_ctx.to_numpy(), orig.to_numpy(), atol=5e-3)  # measured 1.3e-3; bfloat16 2e-2


def test_compact_model_loads_and_embeds_without_tensorflow(tiny):
    _, path, _ = tiny
    code = (
        "import sys, geos2vec\n"
        "from geos2vec.demo import load_sample\n"
        "pois, roads = load_sample()\n"
        f"m = geos2vec.load_model({str(path)!r})\n"
        "out = pois.iloc[:50].s2vec.embed(features={'pois': pois, 'roads': roads}, model=m)\n"
        "assert out['s2vec_0'].notna().all()\n"
        "print('tensorflow' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "False"


def test_points_join_keeps_rows_index_order(tiny, sample):
    _, path, _ = tiny
    pois, roads, table = sample
    model = geos2vec.load_model(path)
    users = pois.iloc[[5, 2, 900, 17]].copy()
    users.index = pd.Index(["d", "b", "a", "c"], name="home")
    far = gpd.GeoDataFrame({"name": ["far"]}, geometry=[shapely.Point(10.0, 50.0)], index=["z"], crs=4326)
    none = gpd.GeoDataFrame({"name": ["none"]}, geometry=[None], index=["n"], crs=4326)
    users = pd.concat([users, far, none])
    with pytest.warns(UserWarning, match="2 of 6 rows got NaN"):
        out = users.s2vec.embed(features=table, model=model)
    assert out.index.equals(users.index) and list(out["name"]) == list(users["name"])
    assert isinstance(out, gpd.GeoDataFrame) and out.crs == users.crs
    cols = [f"s2vec_{k}" for k in range(16)]
    assert list(out.columns[-16:]) == cols
    assert out.loc[["z", "n"], cols].isna().all().all() and pd.isna(out.loc["n", "s2_cell"])
    ids = C.latlng_to_cell(users.geometry.y.iloc[:4].to_numpy(), users.geometry.x.iloc[:4].to_numpy(), 12)
    assert out["s2_cell"].iloc[:4].tolist() == ids.tolist()
    # each point has its cell's vector (the contextual embedding of that pixel)
    ref = model.embed(rasterize(table), mode="contextual", as_frame=True, verbose=False)
    np.testing.assert_allclose(out[cols].iloc[:4].to_numpy(), ref.loc[ids].to_numpy(), rtol=1e-5, atol=1e-6)


def test_embed_cells_order_duplicates_and_outside(tiny, sample):
    _, path, _ = tiny
    _, _, table = sample
    model = geos2vec.load_model(path)
    observed = table.index.to_numpy()
    empty = np.setdiff1d(C.cell_to_children(C.cell_to_parent(observed[:1], 8), 12).ravel(), observed)[:1]
    ask = np.array([observed[3], observed[0], observed[3], empty[0]], dtype=np.uint64)
    with pytest.warns(UserWarning, match="1 of 4 cells have no features"):
        emb = embed_cells(ask, table, model=model)
    assert emb.index.tolist() == ask.tolist()
    np.testing.assert_array_equal(emb.iloc[0].to_numpy(), emb.iloc[2].to_numpy())
    assert emb.iloc[3].isna().all() and emb.iloc[:3].notna().all().all()
    filled = embed_cells(ask, table, model=model, outside="embed")
    assert filled.notna().all().all()
    # "image": each cell gets its level-8 image's vector, the mean of that image's per-image tokens
    parents = C.cell_to_parent(observed, 8)
    other = observed[np.flatnonzero(parents != parents[0])[0]]
    two = np.array([observed[0], other, observed[1]], dtype=np.uint64)
    image = embed_cells(two, table, model=model, mode="image")
    per_image = model.embed(rasterize(table), mode="image", as_frame=True, verbose=False)
    tiled = model.embed(rasterize(table), mode="tiled", cells="all", as_frame=True, verbose=False)
    for row, cell in enumerate(two):
        parent = C.cell_to_parent(cell, 8)
        np.testing.assert_allclose(image.iloc[row].to_numpy(), per_image.loc[parent].to_numpy(), rtol=1e-5,
                                   atol=1e-6)
        pixels = C.cell_to_children(np.array([parent], np.uint64), 12).ravel()
        np.testing.assert_allclose(image.iloc[row].to_numpy(), tiled.reindex(pixels).mean().to_numpy(),
                                   rtol=1e-4, atol=1e-5)
    assert not np.allclose(image.iloc[0].to_numpy(), image.iloc[1].to_numpy())


def test_polygon_weights_follow_area(sample):
    _, _, table = sample
    cell = table.index.to_numpy()[10]
    ring = C.cell_polygons(np.array([cell])).iloc[0]
    # a box straddling the cell's eastern edge: about half inside, half in the neighbour
    x0, y0, x1, y1 = ring.bounds
    w = x1 - x0
    box = shapely.box(x1 - 0.3 * w, y0 + 0.3 * (y1 - y0), x1 + 0.3 * w, y1 - 0.3 * (y1 - y0))
    row, cells, weight = row_cells(gpd.GeoSeries([box], crs=4326), 12)
    assert (row == 0).all() and abs(weight.sum() - 1) < 1e-12
    polys = C.cell_polygons(cells)
    exact = shapely.area(shapely.intersection(polys.values, box))
    exact = exact / exact.sum()
    np.testing.assert_allclose(weight, exact, atol=0.06)
    line = shapely.LineString([(x0 + 0.5 * w, (y0 + y1) / 2), (x1 + 0.5 * w, (y0 + y1) / 2)])
    row, cells, weight = row_cells(gpd.GeoSeries([line], crs=4326), 12)
    assert len(cells) == 2 and np.allclose(weight, 0.5, atol=0.1)


def test_polygon_rows_get_weighted_mean(tiny, sample):
    _, path, _ = tiny
    _, _, table = sample
    model = geos2vec.load_model(path)
    cells = table.index.to_numpy()[:40]
    polys = C.cell_polygons(cells).values
    union = shapely.union_all(polys[:2]).buffer(-1e-4)
    gdf = gpd.GeoDataFrame(geometry=[union], crs=4326)
    out = gdf.s2vec.embed(features=table, model=model, outside="embed")
    row, cc, weight = row_cells(gdf.geometry, 12)
    per_cell = embed_cells(cc, table, model=model, outside="embed").to_numpy()
    np.testing.assert_allclose(out.filter(like="s2vec_").to_numpy()[0], weight @ per_cell, rtol=1e-5, atol=1e-6)


def test_bad_input(tiny, sample):
    _, path, _ = tiny
    pois, _, table = sample
    model = geos2vec.load_model(path)
    with pytest.raises(ValueError, match="level-12 cells only"):
        pois.s2vec.embed(features=table, level=13, model=model)
    with pytest.raises(ValueError, match="lacks"):
        embed(pois, table.drop(columns=["road"]), model=model)
    with pytest.raises(TypeError, match="features must be"):
        embed(pois, [1, 2], model=model)
    with pytest.raises(ValueError, match="set_crs"):
        embed(pois.set_crs(None, allow_override=True), table, model=model)
    with pytest.raises(ValueError, match="outside"):
        embed_cells(table.index[:2], table, model=model, outside="zero")
    tokens = table.set_axis(pd.Index(C.cell_to_token(table.index.to_numpy()), name="cell_id"))
    with pytest.raises(TypeError, match="indexed by uint64 cell ids.*got index dtype.*token_to_cell"):
        embed(pois.iloc[:2], tokens, model=model)


def test_geoseries_and_projected_rows_match_wgs84_frame(tiny, sample):
    _, path, _ = tiny
    pois, _, table = sample
    model = geos2vec.load_model(path)
    users = pois.iloc[::97].copy()
    cols = [f"s2vec_{k}" for k in range(16)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = users.s2vec.embed(features=table, model=model)
        from_series = users.geometry.s2vec.embed(features=table, model=model)
        projected = users.to_crs(32611).s2vec.embed(features=table, model=model)  # UTM 11N (Los Angeles)
    assert ref[cols].notna().all().all()
    assert from_series.index.equals(users.index) and from_series.crs == users.crs
    np.testing.assert_array_equal(from_series[cols].to_numpy(), ref[cols].to_numpy())
    # the user's projected rows keep their CRS and geometry; embeddings are those of the WGS84 rows
    assert projected.crs.to_epsg() == 32611 and projected.geometry.equals(users.to_crs(32611).geometry)
    assert projected["s2_cell"].tolist() == ref["s2_cell"].tolist()
    np.testing.assert_array_equal(projected[cols].to_numpy(), ref[cols].to_numpy())


def test_how_point_takes_the_representative_points_cell(tiny, sample):
    _, path, _ = tiny
    _, _, table = sample
    model = geos2vec.load_model(path)
    cells = table.index.to_numpy()[5:25]
    # a polygon over several observed cells and a line across two
    poly = shapely.union_all(C.cell_polygons(cells[:3]).values).convex_hull
    lat, lng = C.cell_to_latlng(cells[3:5])
    line = shapely.LineString(np.c_[lng, lat])
    gdf = gpd.GeoDataFrame(geometry=[poly, line], crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = gdf.s2vec.embed(features=table, model=model, how="point", outside="embed")
        weighted = gdf.s2vec.embed(features=table, model=model, outside="embed")
    rep = shapely.point_on_surface(poly)  # polygons: a point inside; a two-vertex line: its endpoints' mean
    rep_cells = C.latlng_to_cell(np.array([rep.y, lat.mean()]), np.array([rep.x, lng.mean()]), 12)
    assert out["s2_cell"].tolist() == rep_cells.tolist()
    want = embed_cells(rep_cells, table, model=model, outside="embed").to_numpy()
    np.testing.assert_allclose(out.filter(like="s2vec_").to_numpy(), want, rtol=1e-6, atol=1e-7)
    # the weighted mean over several cells is a different vector
    assert not np.allclose(weighted.filter(like="s2vec_").to_numpy()[0], want[0])


def test_geometry_collections_count_as_their_multi_geometry():
    line = shapely.LineString([(-118.295, 34.035), (-118.255, 34.065)])
    box = shapely.box(-118.295, 34.035, -118.255, 34.065)
    pts = shapely.MultiPoint([(-118.28, 34.05), (-118.26, 34.04)])
    plain = [shapely.MultiLineString([line]), box, pts]
    collections = [shapely.GeometryCollection([line]), shapely.GeometryCollection([box]),
                   shapely.GeometryCollection(list(shapely.get_parts(pts)))]
    for a, b in zip(plain, collections):  # the same cells and weights (line parts used to be ignored)
        ra, ca, wa = row_cells(gpd.GeoSeries([a], crs=4326), 12)
        rb, cb, wb = row_cells(gpd.GeoSeries([b], crs=4326), 12)
        order_a, order_b = np.argsort(ca, kind="stable"), np.argsort(cb, kind="stable")
        np.testing.assert_array_equal(ca[order_a], cb[order_b])
        np.testing.assert_allclose(wa[order_a], wb[order_b], rtol=1e-12)
        assert len(ca) > 1
    # nested collections and empty parts (as overlays leave them) are still one kind
    ref = row_cells(gpd.GeoSeries([box], crs=4326), 12)[1]
    for g in (shapely.GeometryCollection([shapely.GeometryCollection([shapely.MultiPolygon([box])])]),
              shapely.GeometryCollection([box, shapely.Point()])):
        np.testing.assert_array_equal(np.sort(row_cells(gpd.GeoSeries([g], crs=4326), 12)[1]), np.sort(ref))
    mixed = gpd.GeoSeries([box, shapely.GeometryCollection([line, box])], index=["ok", "mixed"], crs=4326)
    with pytest.raises(InvalidInputError, match=r"mixing points, lines and polygons at index \['mixed'\]"):
        row_cells(mixed, 12)
    row, cells, _ = row_cells(mixed, 12, how="point")          # the representative point still works
    assert row.tolist() == [0, 1]


def test_line_weights_follow_length_not_vertices():
    cell = C.latlng_to_cell(34.05, -118.25, 12)
    x0, y0, x1, y1 = C.cell_polygons(np.array([cell])).iloc[0].bounds
    w, ym = x1 - x0, (y0 + y1) / 2
    # half of the line inside the cell digitized with 200 vertices, the other half (outside) with 2
    xs = np.r_[np.linspace(x0 + 0.5 * w, x1 - 1e-9, 200), x1 + 0.5 * w]
    dense = shapely.LineString(np.c_[xs, np.full(xs.size, ym)])
    rng = np.random.default_rng(1)
    x = -118.25 + np.cumsum(rng.normal(0, 0.004, 60))
    y = 34.05 + np.cumsum(rng.normal(0, 0.004, 60))
    wiggly = shapely.MultiLineString([np.c_[x[:30], y[:30]], np.c_[x[30:], y[30:]]])
    other = C.latlng_to_cell(34.1, -118.3, 12)
    plat, plng = C.cell_to_latlng(np.array([cell, cell, other], dtype=np.uint64))
    pts = shapely.MultiPoint(np.c_[plng, plat])  # a multipoint: each point counts once
    row, cells, weight = row_cells(gpd.GeoSeries([dense, wiggly, pts], crs=4326), 12)
    np.testing.assert_allclose(np.bincount(row, weights=weight), 1.0)
    # exact shares of length per cell (planar, longitude scaled by cos(latitude))
    k = np.cos(np.radians(34.05))
    for r, geom in ((0, dense), (1, wiggly)):
        sel = row == r
        parts = shapely.intersection(C.cell_polygons(cells[sel]).values, geom)
        exact = np.array([shapely.length(shapely.transform(p, lambda c: c * [k, 1.0])) for p in parts])
        np.testing.assert_allclose(weight[sel], exact / exact.sum(), atol=0.03)
    assert sorted(weight[row == 2].round(6).tolist()) == [round(1 / 3, 6), round(2 / 3, 6)]


def test_existing_output_columns_raise_instead_of_duplicating(tiny, sample):
    _, path, _ = tiny
    pois, _, table = sample
    model = geos2vec.load_model(path)
    users = pois.iloc[:3][["name", "geometry"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        once = users.s2vec.embed(features=table, model=model)
        # embedding again with another prefix still clashes on s2_cell; dropping it works
        with pytest.raises(ValueError, match=r"already has column\(s\) \['s2_cell'\]"):
            once.s2vec.embed(features=table, model=model, prefix="v2_")
        again = once.drop(columns="s2_cell").s2vec.embed(features=table, model=model, prefix="v2_")
        # the function on a GeoSeries returns a frame like the accessor does
        from_fn = embed(users.geometry, table, model=model)
    with pytest.raises(ValueError, match="s2vec_0.*prefix="):
        once.s2vec.embed(features=table, model=model)
    with pytest.raises(ValueError, match="s2vec_3"):
        users.assign(s2vec_3=1.0).s2vec.embed(features=table, model=model)
    assert not again.columns.duplicated().any()
    np.testing.assert_array_equal(again.filter(like="v2_").to_numpy(), once.filter(like="s2vec_").to_numpy())
    assert isinstance(from_fn, gpd.GeoDataFrame) and from_fn.columns[:2].tolist() == ["geometry", "s2_cell"]


def test_nan_coordinates_name_index_labels(tiny, sample):
    _, path, _ = tiny
    pois, _, table = sample
    users = pois.iloc[:3].copy()
    users.index = ["a", "b", "c"]
    users.loc["b", "geometry"] = shapely.Point(np.nan, 34.0)
    with pytest.raises(ValueError, match=r"index \['b'\]"):
        users.s2vec.embed(features=table, model=geos2vec.load_model(path))


def test_function_and_module_names_do_not_clash():
    import importlib
    import types

    import geos2vec

    assert callable(geos2vec.embed) and geos2vec.embed is embed
    mod = importlib.import_module("geos2vec.embedding")
    assert isinstance(mod, types.ModuleType) and mod.embed is geos2vec.embed
    import geos2vec.raster as raster

    assert isinstance(raster, types.ModuleType) and raster.rasterize is geos2vec.rasterize


def test_numpy_gelu_matches_tensorflow_and_the_exact_formula():
    import math

    tf = pytest.importorskip("tensorflow")
    from geos2vec.model.numpy_encoder import _gelu

    x = np.concatenate([np.linspace(-20, 20, 40001), np.random.default_rng(0).normal(0, 3, 10 ** 5)])
    exact = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x])
    x32 = x.astype(np.float32)
    fast = _gelu(x32)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, tf.nn.gelu(x32, approximate=False).numpy(), rtol=0, atol=1.5e-6)
    np.testing.assert_allclose(fast, exact, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_gelu(x), exact, rtol=1e-14, atol=1e-15)  # float64: libm erf
    out = x32.copy()
    # in place (vector and scalar tails may round differently: erf 1 ulp from -1 is 0.5 * 20 * 2**-24 = 6e-7 at -20,
    # on AVX-512 machines; the bound against the exact formula above is 1e-6 too)
    assert _gelu(out, out=out) is out
    np.testing.assert_allclose(out, fast, rtol=1e-6, atol=1e-6)


def test_nan_or_inf_pixels_raise_instead_of_nan_vectors(tiny, sample):
    from geos2vec.errors import InvalidInputError

    _, path, _ = tiny
    _, _, table = sample
    model = geos2vec.load_model(path)
    small = table.iloc[:40].astype("float32")
    holes = rasterize(small, fill=np.nan)  # the documented float fill: every unobserved pixel is NaN
    n_nan = int(np.isnan(holes.values).sum())
    for mode in ("contextual", "tiled", "image"):
        with pytest.raises(InvalidInputError, match=rf"{n_nan} NaN/inf value.*fill=0") as info:
            model.embed(holes, mode=mode, verbose=False)
        assert not isinstance(info.value, TypeError)
    # patch mode reads the observed pixels only: those are finite, so it equals the fill=0 images
    np.testing.assert_array_equal(model.embed(holes, mode="patch", as_frame=True).to_numpy(),
                                  model.embed(rasterize(small), mode="patch", as_frame=True).to_numpy())
    # one inf pixel in an observed cell is named by its token and channel
    one = rasterize(small).astype("float32")
    cell = np.uint64(small.index[7])
    img, r, c = (int(v[0]) for v in np.nonzero(one["cell_id"].values == cell))
    one.values[img, r, c, 3] = np.inf
    with pytest.raises(InvalidInputError, match=r"1 NaN/inf value\(s\) in 1 cell") as info:
        model.embed(one, verbose=False)
    assert C.cell_to_token(cell) in str(info.value) and str(small.columns[3]) in str(info.value)
    with pytest.raises(InvalidInputError, match="NaN/inf"):
        model.embed(one, mode="patch", verbose=False)


def test_patch_mode_on_a_table_needs_cell_ids_and_finite_counts(tiny, sample):
    from geos2vec.errors import InvalidInputError, InvalidTypeError

    _, path, _ = tiny
    _, _, table = sample
    model = geos2vec.load_model(path)
    small = table.iloc[:3]
    ref = model.embed(small, mode="patch", as_frame=True)
    assert ref.index.tolist() == small.index.tolist()
    with pytest.raises(InvalidInputError, match=r"level-12 cell ids.*3 of its 3 .*\[0, 1, 2\].*set_index"):
        model.embed(small.reset_index(drop=True), mode="patch")
    children = C.cell_to_children(small.index.to_numpy(np.uint64)[:1], 13).ravel()[:1]
    with pytest.raises(InvalidInputError, match=r"1 of its 1 index"):
        model.embed(small.iloc[:1].set_axis(pd.Index(children, name="cell_id")), mode="patch")
    with pytest.raises(InvalidTypeError, match="token_to_cell"):
        model.embed(small.set_axis(pd.Index(C.cell_to_token(small.index.to_numpy(np.uint64)))), mode="patch")
    bad = small.astype("float64")
    bad.iloc[1, 0] = np.nan
    with pytest.raises(InvalidInputError, match=r"1 NaN/inf value") as info:
        model.embed(bad, mode="patch")
    assert C.cell_to_token(np.uint64(small.index[1])) in str(info.value)


def test_features_none_rows_without_geometry_get_nan_and_are_kept(tiny, sample):
    _, path, _ = tiny
    pois, _, _ = sample
    model = geos2vec.load_model(path)
    rows = pois.iloc[:30].copy()
    rows.index = pd.Index([f"r{k}" for k in range(30)], name="place")
    rows.loc["r4", "geometry"] = None
    rows.loc["r9", "geometry"] = shapely.Point()  # empty
    cols = [f"s2vec_{k}" for k in range(16)]
    with pytest.warns(UserWarning, match=r"2 of 30 rows got NaN.*2 of them have no geometry"):
        out = rows.s2vec.embed(model=model)  # features=None: the rows are their own POIs
    assert out.index.equals(rows.index) and out["name"].equals(rows["name"])
    assert out.loc[["r4", "r9"], cols].isna().all().all() and out.loc[["r4", "r9"], "s2_cell"].isna().all()
    # the other rows are exactly the embedding of the frame without the two rows
    kept = rows.drop(index=["r4", "r9"])
    want = kept.s2vec.embed(model=model)
    assert out.drop(index=["r4", "r9"])[cols].notna().all().all()
    np.testing.assert_array_equal(out.drop(index=["r4", "r9"])[cols].to_numpy(), want[cols].to_numpy())


def test_unknown_keys_of_a_features_dict_raise(tiny, sample):
    from geos2vec.errors import InvalidInputError

    _, path, _ = tiny
    pois, roads, _ = sample
    model = geos2vec.load_model(path)
    with pytest.raises(InvalidInputError, match=r"unknown key\(s\) \['road'\].*'pois' and/or 'roads'"):
        pois.iloc[:2].s2vec.embed(features={"pois": pois, "road": roads}, model=model)
    with pytest.raises(InvalidInputError, match=r"\['poi'\]"):
        pois.iloc[:2].s2vec.embed(features={"poi": pois}, model=model)


def test_outside_embed_gives_nan_outside_the_recorded_coverage(tiny, sample):
    _, path, _ = tiny
    pois, roads, _ = sample
    model = geos2vec.load_model(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boxed = count_features(pois, roads, coverage=(-118.60, 34.00, -118.17, 34.30))
    unknown = boxed.copy()
    unknown.attrs.pop("coverage")
    observed = boxed.index.to_numpy(np.uint64)[0]
    empty = C.latlng_to_cell(34.01, -118.19, 12)      # inside the box, no POI or road: known to be empty
    outside = C.latlng_to_cell(34.05, -118.15, 12)    # outside the box, in a level-8 image with features
    images = np.unique(C.cell_to_parent(boxed.index.to_numpy(np.uint64), 8))
    assert {empty, outside}.isdisjoint(boxed.index) and np.isin(C.cell_to_parent([empty, outside], 8), images).all()
    ask = np.array([observed, empty, outside], np.uint64)
    for mode in ("image", "patch", "tiled", "contextual"):  # contextual (the default) last: ref is used below
        with pytest.warns(UserWarning, match=r"1 of 3 cells .*\(1 of them lie outside the coverage"):
            got = embed_cells(ask, boxed, model=model, mode=mode, outside="embed")
        # without a recorded coverage every cell counts as covered (v0.1): the uncovered cell had a vector
        ref = embed_cells(ask, unknown, model=model, mode=mode, outside="embed")
        assert ref.notna().all().all() and got.iloc[2].isna().all()
        np.testing.assert_array_equal(got.iloc[:2].to_numpy(), ref.iloc[:2].to_numpy())
    # rows: the empty cell's row is embedded, the unknown one is NaN and counted as outside the coverage
    lat, lng = C.cell_to_latlng(ask[1:])
    rows = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lng, lat), index=["empty", "outside"], crs=4326)
    with pytest.warns(UserWarning, match=r"1 of 2 rows got NaN.*1 of them lie outside the coverage"):
        out = rows.s2vec.embed(features=boxed, model=model, outside="embed")
    cols = [f"s2vec_{k}" for k in range(16)]
    assert out.loc["outside", cols].isna().all()
    np.testing.assert_array_equal(out.loc["empty", cols].to_numpy(np.float32), ref.iloc[1].to_numpy())
    # a polygon over a covered and an uncovered cell: the mean over the covered one alone
    both = C.cell_polygons(ask[1:]).values
    poly = gpd.GeoDataFrame(geometry=[shapely.union_all(both).convex_hull], crs=4326)
    r, cc, w = row_cells(poly.geometry, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per = embed_cells(cc, boxed, model=model, outside="embed").to_numpy()
        got = poly.s2vec.embed(features=boxed, model=model, outside="embed")[cols].to_numpy()[0]
    ok = ~np.isnan(per[:, 0])
    assert 0 < ok.sum() < ok.size
    np.testing.assert_allclose(got, (w[ok] / w[ok].sum()) @ per[ok], rtol=1e-5, atol=1e-6)


def test_unknown_mode_or_context_raises_even_where_no_row_has_features(tiny, sample):
    from geos2vec.errors import InvalidInputError

    _, path, _ = tiny
    _, _, table = sample
    model = geos2vec.load_model(path)
    far = gpd.GeoDataFrame(geometry=[shapely.Point(8.69, 49.41)], crs=4326)
    for kw, name in (({"mode": "contxtual"}, "mode"), ({"context": "bogus"}, "context"), ({"mode": 42}, "mode"),
                     ({"how": "poly"}, "how"), ({"outside": "drop"}, "outside")):
        with pytest.raises(InvalidInputError, match=rf"{name} must be"):
            far.s2vec.embed(features=table, model=model, **kw)
    empty = table.iloc[:0]
    with pytest.raises(InvalidInputError, match="mode must be"):
        embed_cells(np.empty(0, np.uint64), empty, model=model, mode="x")
    with pytest.raises(InvalidInputError, match="context must be"):
        geos2vec.cell_embeddings(empty, model=model, context="y")


def test_invalid_polygons_are_repaired_and_bad_vertices_name_their_rows(tiny, sample):
    from geos2vec.errors import InvalidInputError

    _, path, _ = tiny
    _, _, table = sample
    model = geos2vec.load_model(path)
    lat, lng = C.cell_to_latlng(table.index.to_numpy(np.uint64)[[20]])
    x, y, d = float(lng[0]), float(lat[0]), 0.02
    bowtie = shapely.Polygon([(x - d, y - d), (x + d, y + d), (x + d, y - d), (x - d, y + d)])
    assert not bowtie.is_valid
    fixed = shapely.make_valid(bowtie)  # its two triangles
    r1, c1, w1 = row_cells(gpd.GeoSeries([bowtie], crs=4326), 12)
    r2, c2, w2 = row_cells(gpd.GeoSeries([fixed], crs=4326), 12)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_allclose(w1, w2, rtol=1e-12)
    cols = [f"s2vec_{k}" for k in range(16)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = gpd.GeoDataFrame(geometry=[bowtie], crs=4326).s2vec.embed(features=table, model=model)
        want = gpd.GeoDataFrame(geometry=[fixed], crs=4326).s2vec.embed(features=table, model=model)
    assert got[cols].notna().all().all()
    np.testing.assert_array_equal(got[cols].to_numpy(), want[cols].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shapely warns about NaN coordinates when building them
        bad_rows = [shapely.Polygon([(x, y), (np.nan, np.nan), (x + d, y), (x, y + d)]),
                    shapely.LineString([(x, y), (np.nan, np.nan), (x + d, y)]),
                    shapely.box(179.5, 0, 180.5, 1),
                    shapely.MultiPoint([(x, y), (x + 360.0, y)])]  # 241.74 is not a longitude: never wrapped
    for g in bad_rows:
        parcels = gpd.GeoDataFrame({"id": ["p1", "p2"]}, crs=4326, index=[10, 20],
                                   geometry=[shapely.Point(x, y), g])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(InvalidInputError, match=r"1 row\(s\) .* at index \[20\]; is the CRS right"):
                parcels.s2vec.embed(features=table, model=model)
            with pytest.raises(InvalidInputError, match=r"at index \[1\]"):
                row_cells(parcels.geometry.reset_index(drop=True), 12)


def test_embed_path_errors_are_geos2vec_errors_that_name_the_problem(tiny, sample):
    from geos2vec.errors import InvalidInputError, InvalidTypeError

    _, path, _ = tiny
    pois, _, table = sample
    model = geos2vec.load_model(path)
    rows = pois.iloc[:2]
    with pytest.raises(InvalidInputError, match="level-12 cells only"):
        rows.s2vec.embed(features=table, level=13, model=model)
    with pytest.raises(InvalidTypeError, match="features must be"):
        rows.s2vec.embed(features=[pois], model=model)
    with pytest.raises(InvalidInputError, match="lacks 1 channel"):
        rows.s2vec.embed(features=table.drop(columns=["road"]), model=model)
    with pytest.raises(InvalidInputError, match=r"duplicate columns \['road'\]"):
        rows.s2vec.embed(features=pd.concat([table, table[["road"]]], axis=1), model=model)
    broken = table.iloc[:3].set_axis(pd.Index(np.r_[table.index[:2], 0].astype(np.uint64), name="cell_id"))
    with pytest.raises(InvalidInputError, match=r"1 value\(s\) that are not S2 cell ids, e\.g\. \[0\]"):
        rows.s2vec.embed(features=broken, model=model)
    for value in (-2, -0.5):  # the model reads log(1 + count): -0.5 is as wrong as -2
        neg = table.astype({"road": "float64"})
        neg.iloc[4, neg.columns.get_loc("road")] = value
        with pytest.raises(InvalidInputError, match=r"negative counts in 1 cell\(s\).*\['road'\]") as info:
            rows.s2vec.embed(features=neg, model=model)
        assert C.cell_to_token(np.uint64(table.index[4])) in str(info.value)
    with pytest.raises(InvalidInputError, match="already has column"):
        rows.assign(s2_cell=1).s2vec.embed(features=table, model=model)
    # embed's own s2_cell column, <NA> for a row without geometry: a clear error, and fine once dropped
    users = pd.concat([rows, gpd.GeoDataFrame(geometry=[None], index=["n"], crs=4326)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = users.s2vec.embed(features=table, model=model)
    with pytest.raises(InvalidInputError, match=r"1 missing \(<NA>\) value\(s\) at index \['n'\].*dropna"):
        embed_cells(out["s2_cell"], table, model=model)
    got = embed_cells(out["s2_cell"].dropna(), table, model=model)
    np.testing.assert_array_equal(got.to_numpy(), out.filter(like="s2vec_").iloc[:2].to_numpy())


def test_patch_mode_reads_integer_channel_labels(sample):
    """Statistics fitted on integer column labels name channels "0", "1", ...; a table with those integer labels
    embeds like the same table with string labels (was a pandas KeyError)."""
    from geos2vec.model import S2VecModel

    _, _, table = sample
    n = table.shape[1]
    ints = table.set_axis(range(n), axis=1)
    strs = table.set_axis([str(k) for k in range(n)], axis=1)
    model = S2VecModel(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2, seed=3)
    model.build(rasterize(strs), stats=FeatureStats.fit(ints, log1p=True))
    assert list(model.stats.channels[:2]) == ["0", "1"]
    want = model.embed(strs.iloc[:4], mode="patch", as_frame=True)
    got = model.embed(ints.iloc[:4], mode="patch", as_frame=True)
    pd.testing.assert_frame_equal(got, want)
