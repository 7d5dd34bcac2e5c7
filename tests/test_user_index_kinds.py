"""A pandas power user's unusual indexes and column labels through embed, cells, counts, dask, the CLI, evaluate.

MultiIndex (city, id), DatetimeIndex with a freq, CategoricalIndex, IntervalIndex, an index named like a column,
duplicate labels, a stepped RangeIndex, non-monotonic labels, int-looking strings, tuples, an empty MultiIndex;
MultiIndex and integer column labels. References: s2sphere cells, embed_cells looked up row by row, the same
frame with a default RangeIndex.
"""

from __future__ import annotations

import warnings

import dask
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely

import geos2vec
from geos2vec.cli import main
from geos2vec.errors import InvalidInputError
from geos2vec.evaluate import evaluate, polygon_pooling

geos2vec.register_dask_accessor()  # ddf.s2vec, when an earlier test module imported geos2vec before dask_geopandas
N = 8
INDEXES = {
    "multi": pd.MultiIndex.from_arrays([["la"] * 4 + ["sf"] * 4, [3, 1, 2, 1, 5, 4, 4, 0]], names=["city", "id"]),
    "datetime_freq": pd.date_range("2020-01-01", periods=N, freq="D", name="when"),
    "datetime_tz": pd.date_range("2020-01-01", periods=N, freq="h", tz="US/Pacific"),
    "categorical": pd.CategoricalIndex(list("bacbdefa"), categories=list("fedcba"), ordered=True, name="c"),
    "interval": pd.IntervalIndex.from_breaks(np.arange(N + 1), name="iv"),
    "named_like_column": pd.Index(range(N), name="name"),
    "duplicates": pd.Index([1, 1, 2, 2, 1, 3, 3, 3]),
    "range_step": pd.RangeIndex(100, 100 - 3 * N, -3, name="r"),
    "non_monotonic": pd.Index([5, 3, 9, 1, 7, 2, 8, 0]),
    "int_like_strings": pd.Index(["1", "2", "10", "3", "03", "x", "7", "8"]),
    "tuples": pd.Index([(1, 2), (3, 4), (5, 6), (7, 8), (9, 1), (2, 3), (4, 5), (6, 7)], tupleize_cols=False),
    "period": pd.period_range("2020-01", periods=N, freq="M"),
    "three_levels": pd.MultiIndex.from_arrays([["a"] * N, [1] * N, pd.date_range("2020", periods=N)],
                                              names=["x", None, "t"]),
}


def _same_index(got: pd.Index, want: pd.Index) -> None:
    assert type(got) is type(want) and got.equals(want)
    assert list(got.names) == list(want.names)
    assert list(getattr(got, "dtypes", [got.dtype])) == list(getattr(want, "dtypes", [want.dtype]))  # categories too
    assert getattr(got, "freq", None) == getattr(want, "freq", None)


def _s2(lng: float, lat: float, level: int = 12) -> int:
    return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(level).id()


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # NaN counts, categories outside the ontology
        return fn(*args, **kw)


@pytest.fixture(scope="module")
def env():
    pois, roads = geos2vec.demo.load_sample()
    table = _quiet(geos2vec.count_features, pois, roads)
    homes = pois.sample(N, random_state=0)[["name", "fclass", "geometry"]].reset_index(drop=True)
    return pois, roads, table, geos2vec.load_model("default"), homes


def _embed(obj, table, model, **kw):
    return _quiet(obj.s2vec.embed, table, model=model, progress=False, **kw)


def _emb(frame: pd.DataFrame) -> np.ndarray:
    return frame[[c for c in frame.columns if str(c[0] if isinstance(c, tuple) else c).startswith("s2vec_")]
                 ].to_numpy(np.float64)


@pytest.mark.parametrize("kind", list(INDEXES))
def test_every_index_kind_keeps_rows_index_and_cell_vectors(env, kind):
    _, _, table, model, homes = env
    ix = INDEXES[kind]
    g = homes.set_axis(ix)
    ref_cells = np.array([_s2(p.x, p.y) for p in homes.geometry], dtype=np.uint64)
    vec = _quiet(geos2vec.embed_cells, np.unique(ref_cells), table, model=model, mode="patch", progress=False)
    out = _embed(g, table, model, mode="patch")
    _same_index(out.index, ix)
    assert out[["name", "fclass"]].equals(g[["name", "fclass"]]) and out.geometry.geom_equals(g.geometry).all()
    np.testing.assert_array_equal(out["s2_cell"].to_numpy(np.uint64), ref_cells)
    for k in range(N):  # row by row: the vector of the row's own s2sphere cell
        np.testing.assert_array_equal(_emb(out.iloc[[k]])[0], vec.loc[ref_cells[k]].to_numpy(np.float64))
    for got in (g.s2vec.cell_ids(), g.geometry.s2vec.cell_ids(), g.s2vec.tokens()):
        _same_index(got.index, ix)
    np.testing.assert_array_equal(g.s2vec.cell_ids().to_numpy(), ref_cells)
    assert g.s2vec.cells()["count"].sum() == N


def test_modes_and_hows_on_a_duplicated_unsorted_multiindex_equal_the_default_index(env):
    _, roads, table, model, homes = env
    shapes = list(homes.geometry.iloc[:4]) + [shapely.box(-118.40, 34.05, -118.37, 34.08),
                                                 roads.geometry.iloc[0], roads.geometry.iloc[5], None]
    plain = gpd.GeoDataFrame({"v": range(N)}, geometry=shapes, crs=4326)
    ix = INDEXES["multi"]
    odd = plain.set_axis(ix)
    for kw in ({"mode": "contextual"}, {"mode": "tiled"}, {"mode": "image"}, {"mode": "patch", "how": "point"},
               {"mode": "patch", "how": "weighted"}):
        ref, got = _embed(plain, table, model, **kw), _embed(odd, table, model, **kw)
        _same_index(got.index, ix)
        np.testing.assert_array_equal(_emb(got), _emb(ref))
        assert got["s2_cell"].isna().tolist() == [False] * 7 + [True]
        np.testing.assert_array_equal(got["s2_cell"].to_numpy("float64", na_value=np.nan),
                                      ref["s2_cell"].to_numpy("float64", na_value=np.nan))


def test_empty_frame_with_a_multiindex(env):
    _, _, table, model, homes = env
    empty = homes.iloc[:0].set_axis(pd.MultiIndex.from_arrays([[], []], names=["city", "id"]))
    out = _embed(empty, table, model, mode="patch")
    _same_index(out.index, empty.index)
    assert out.shape == (0, 3 + 1 + 256) and str(out["s2_cell"].dtype) == "UInt64"
    ids = empty.s2vec.cell_ids()
    _same_index(ids.index, empty.index)
    assert ids.dtype == np.uint64 and empty.s2vec.tokens().dtype == "string"
    assert len(empty.s2vec.cells()) == 0 and len(_quiet(geos2vec.count_features, empty)) == 0


@pytest.mark.parametrize("levels", [2, 3])
def test_multiindex_columns_with_a_tuple_geometry_name_embed(env, levels):
    """Was NotImplementedError: eq not implemented for <class 'tuple'> (geopandas' concat of such a frame)."""
    _, _, table, model, homes = env
    pad = ("",) * (levels - 1)
    g = homes.copy()
    g.columns = pd.MultiIndex.from_tuples([("attr", "name") + pad[1:], ("attr", "fclass") + pad[1:],
                                           ("geometry",) + pad], names=[f"l{k}" for k in range(levels)])
    g = g.set_geometry(("geometry",) + pad).set_flags(allows_duplicate_labels=False)
    g.attrs["source"] = "survey"
    ref = _embed(homes, table, model, mode="patch")
    with warnings.catch_warnings():  # s2_cell was set with a partial key, deprecated by pandas 3 (Pandas4Warning)
        warnings.simplefilter("error", DeprecationWarning)
        got = _embed(g, table, model, mode="patch")
    assert got.geometry.name == ("geometry",) + pad and got.crs == g.crs
    assert not got.flags.allows_duplicate_labels and got.attrs["source"] == "survey"
    assert list(got.columns[:4]) == list(g.columns) + [("s2_cell",) + pad]
    assert got.columns[-1] == ("s2vec_255",) + pad and list(got.columns.names) == list(g.columns.names)
    np.testing.assert_array_equal(_emb(got), _emb(ref))
    np.testing.assert_array_equal(got[("s2_cell",) + pad].to_numpy(np.uint64), ref["s2_cell"].to_numpy(np.uint64))


def test_geoseries_named_by_a_tuple_and_integer_column_labels(env):
    _, _, table, model, homes = env
    ref = _embed(homes, table, model, mode="patch")
    got = _embed(homes.geometry.rename(("geo", "pt")), table, model, mode="patch")  # was NotImplementedError
    assert got.geometry.name == ("geo", "pt") and list(got.columns[:2]) == [("geo", "pt"), ("s2_cell", "")]
    np.testing.assert_array_equal(_emb(got), _emb(ref))
    ints = gpd.GeoDataFrame({0: homes["name"], 1: homes["fclass"], 2: homes.geometry}, geometry=2, crs=4326)
    out = _embed(ints, table, model, mode="patch")
    assert list(out.columns[:4]) == [0, 1, 2, "s2_cell"] and out.geometry.name == 2
    np.testing.assert_array_equal(_emb(out), _emb(ref))
    counted = _quiet(geos2vec.count_features, ints, category_column=1)
    pd.testing.assert_frame_equal(counted, _quiet(geos2vec.count_features, homes))


def test_dask_frames_keep_their_index_and_an_interval_index_counts_itself(env):
    """features=None on a dask frame with an IntervalIndex (or dask POIs/roads with one as features) raised
    dask's "Don't know how to handle index of type pandas.IntervalIndex"."""
    _, roads, table, model, homes = env
    mixed = pd.concat([homes[["fclass", "geometry"]], roads.iloc[:50][["highway", "geometry"]]], ignore_index=True)
    with dask.config.set(scheduler="synchronous"):
        for kind in ("datetime_freq", "interval"):
            g = homes.set_axis(INDEXES[kind])
            d = dask_geopandas.from_geopandas(g, npartitions=3, sort=False)
            out = _quiet(d.s2vec.embed, table, model=model, mode="patch").compute()
            _same_index(out.index, g.index)
            np.testing.assert_array_equal(_emb(out), _emb(_embed(g, table, model, mode="patch")))
            own = _quiet(d.s2vec.embed, None, model=model, mode="patch").compute()  # counts its own rows
            _same_index(own.index, g.index)
            np.testing.assert_array_equal(_emb(own), _emb(_embed(g, None, model, mode="patch")))
        spans = pd.IntervalIndex.from_breaks(np.arange(len(mixed) + 1))
        features = dask_geopandas.from_geopandas(mixed.set_axis(spans), npartitions=2, sort=False)
        got = _quiet(geos2vec.embed, homes, features, model=model, mode="patch", progress=False)
    np.testing.assert_array_equal(_emb(got), _emb(_embed(homes, mixed, model, mode="patch")))


def test_cli_gdal_output_refuses_an_index_named_like_a_column_before_the_work(env, tmp_path, capsys):
    """Was "geos2vec: error: cannot insert name, already exists", after the embedding."""
    _, _, table, _, homes = env
    table.to_parquet(tmp_path / "t.parquet")
    rows = homes.set_axis(pd.date_range("2020-01-01", periods=N, freq="D", name="name"))
    rows.to_parquet(tmp_path / "rows.parquet")
    for suffix in ("gpkg", "csv"):
        assert main(["embed", str(tmp_path / "rows.parquet"), "--features", str(tmp_path / "t.parquet"),
                     "--out", str(tmp_path / f"o.{suffix}"), "--mode", "patch", "--quiet"]) == 1
        err = capsys.readouterr().err
        assert "index level(s) ['name']" in err and ".parquet" in err and "cannot insert" not in err
        assert not (tmp_path / f"o.{suffix}").exists()
    # GeoParquet keeps the index apart; a MultiIndex with unclashing names goes to a GeoPackage as columns
    assert main(["embed", str(tmp_path / "rows.parquet"), "--features", str(tmp_path / "t.parquet"),
                 "--out", str(tmp_path / "o.parquet"), "--mode", "patch", "--quiet"]) == 0
    back = gpd.read_parquet(tmp_path / "o.parquet")
    assert back.index.equals(rows.index) and back.index.name == "name" and back["name"].equals(rows["name"])
    multi = homes.set_axis(INDEXES["multi"])
    multi.to_parquet(tmp_path / "multi.parquet")
    assert main(["embed", str(tmp_path / "multi.parquet"), "--features", str(tmp_path / "t.parquet"),
                 "--out", str(tmp_path / "m.gpkg"), "--mode", "patch", "--quiet"]) == 0
    written = gpd.read_file(tmp_path / "m.gpkg")
    assert list(written.columns[:3]) == ["city", "id", "name"]
    assert written["id"].tolist() == [3, 1, 2, 1, 5, 4, 4, 0]


def test_counts_and_missing_geometry_errors_on_odd_poi_indexes(env):
    pois, roads, _, _, _ = env
    p, r = pois.iloc[:200].reset_index(drop=True), roads.iloc[:100].reset_index(drop=True)
    ref = _quiet(geos2vec.count_features, p, r, coverage="infer")
    for ix_p, ix_r in ((pd.MultiIndex.from_arrays([np.arange(200) % 3, np.arange(200)], names=["a", "b"]),
                        pd.MultiIndex.from_arrays([np.arange(100) % 3, np.arange(100)], names=["a", "b"])),
                       (pd.IntervalIndex.from_breaks(np.arange(201)), pd.Index(np.zeros(100, int))),
                       (pd.CategoricalIndex(np.arange(200) % 7), pd.date_range("2000", periods=100, freq="min"))):
        got = _quiet(geos2vec.count_features, p.set_axis(ix_p), r.set_axis(ix_r), coverage="infer")
        pd.testing.assert_frame_equal(got, ref)
        assert geos2vec.coverage.get_coverage(got)[0].equals(geos2vec.coverage.get_coverage(ref)[0])
    bad = p.iloc[:8].set_axis(INDEXES["multi"])
    bad.loc[("la", 2), "geometry"] = None
    with pytest.raises(InvalidInputError, match=r"at index \[\('la', 2\)\]"):
        geos2vec.count_features(bad)
    with pytest.raises(InvalidInputError, match=r"at index \[\('la', 2\)\]"):
        bad.s2vec.cell_ids()
    coerced = bad.s2vec.cell_ids(errors="coerce")
    _same_index(coerced.index, bad.index)
    assert coerced.isna().tolist() == [False, False, True, False, False, False, False, False]


@pytest.mark.parametrize("kind", ["multi", "datetime_tz", "interval", "tuples"])
def test_evaluate_with_polygon_targets_indexed_any_way_scores_like_integer_ids(env, kind):
    pois, _, table, _, _ = env
    rng = np.random.default_rng(0)
    n = 40
    ids = {"multi": pd.MultiIndex.from_arrays([np.repeat(["a", "b"], n // 2), np.tile(np.arange(n // 2), 2)],
                                              names=["city", "tract"]),
           "datetime_tz": pd.date_range("2020", periods=n, freq="h", tz="US/Pacific"),
           "interval": pd.IntervalIndex.from_breaks(np.arange(n + 1)),
           "tuples": pd.Index([(k, "t") for k in range(n)], tupleize_cols=False)}[kind]
    cells = table.index.to_numpy()[rng.permutation(len(table))[:n]]
    tracts = gpd.GeoDataFrame(geometry=geos2vec.cell_polygons(cells).values, crs=4326)  # one cell each
    y = np.log1p(table.loc[cells].sum(axis=1).to_numpy(float)) + rng.normal(scale=0.1, size=n)
    kw = dict(probes="ridge", n_splits=2, progress=False)
    ref = _quiet(evaluate, pd.Series(y, name="y"), {"m": table}, pooling=polygon_pooling(tracts), **kw)
    pool = polygon_pooling(tracts.set_axis(ids))
    assert pool.groupby("sample", sort=False).size().size == n
    got = _quiet(evaluate, pd.Series(y, index=ids, name="y"), {"m": table}, pooling=pool, **kw)
    np.testing.assert_allclose(got.scores["r2"], ref.scores["r2"], rtol=1e-12)
    by_id = dict(zip(list(ids), y))
    pred = got.predictions
    assert all(by_id[s] == t for s, t in zip(pred["sample"], pred["y_true"]))  # each prediction's own target


def test_count_tables_concatenated_with_keys_are_a_clear_error(env):
    """pd.concat({"la": table}) indexes by (key, cell_id): embed raised pandas' "isna is not defined for
    MultiIndex", evaluate and the baselines an error about "an object array with other values"."""
    from geos2vec.errors import InvalidTypeError
    from geos2vec.evaluate import log1p_counts

    _, _, table, model, homes = env
    keyed = pd.concat({"la": table}, names=["city"])
    for call in (lambda: _embed(homes, keyed, model, mode="patch"),
                 lambda: geos2vec.embed_cells(table.index[:3], keyed, model=model, mode="patch", progress=False)):
        with pytest.raises(InvalidTypeError, match=r"MultiIndex \['city', 'cell_id'\].*groupby\(level='cell_id'\)"):
            call()
    keys = r"MultiIndex \['city', 'cell_id'\]"
    with pytest.raises(InvalidTypeError, match=r"counts must be indexed by S2 cell ids.*" + keys):
        log1p_counts(keyed)
    target = pd.Series(np.arange(len(table), dtype=float), index=keyed.index)
    with pytest.raises(InvalidTypeError, match=r"target needs S2 cell ids.*" + keys + ".*droplevel"):
        evaluate(target, {"m": table}, probes="ridge", n_splits=2, progress=False)
    # what the message says works: the same table, the same vectors
    ref = _embed(homes, table, model, mode="patch")
    np.testing.assert_array_equal(_emb(_embed(homes, keyed.groupby(level="cell_id").sum(), model, mode="patch")),
                                  _emb(ref))


def test_cell_ids_written_as_decimal_text_get_a_hint_that_converts_them_exactly(env):
    """An index of int-looking strings (read from CSV as str) was told to use token_to_cell, which refuses them."""
    from geos2vec.errors import InvalidTypeError
    from geos2vec.evaluate import log1p_counts

    _, _, table, _, _ = env
    cells = table.index.to_numpy()[:30]
    text = pd.Index([str(c) for c in cells], name="cell_id")
    hint = r"decimal numbers, not tokens.*astype\('uint64'\)"
    for ids in (text, np.asarray(text, dtype=str), pd.Series(text)):
        with pytest.raises(InvalidTypeError, match=hint):
            geos2vec.cell_to_token(ids)
    with pytest.raises(InvalidTypeError, match=r"counts must be indexed by S2 cell ids.*" + hint):
        log1p_counts(table.iloc[:30].set_axis(text))
    target = pd.Series(np.arange(30.0), index=text)
    with pytest.raises(InvalidTypeError, match=r"target needs S2 cell ids.*" + hint):
        evaluate(target, {"m": table}, probes="ridge", n_splits=2, progress=False)
    # what it says works, exactly (a float round trip would not)
    np.testing.assert_array_equal(text.astype("uint64").to_numpy(), cells)
    np.testing.assert_array_equal(geos2vec.cell_to_token(text.astype("uint64").to_numpy()),
                                  geos2vec.cell_to_token(cells))
    with pytest.raises(InvalidTypeError, match="use token_to_cell for tokens$"):  # short digit-only tokens: no hint
        geos2vec.cell_to_token(pd.Index(["1234", "5678"]))


class _Parcels(gpd.GeoDataFrame):
    """A GeoDataFrame subclass with its own metadata, as some libraries define."""

    _metadata = [*gpd.GeoDataFrame._metadata, "survey"]

    @property
    def _constructor(self):
        return _Parcels


def test_embed_keeps_a_subclass_its_metadata_flags_and_attrs(env):
    _, _, table, model, homes = env
    parcels = _Parcels(homes.set_axis(INDEXES["datetime_freq"])).set_flags(allows_duplicate_labels=False)
    parcels.survey, parcels.attrs["source"] = "2024", "county"
    out = _embed(parcels, table, model, mode="patch")
    assert type(out) is _Parcels and out.survey == "2024" and out.attrs["source"] == "county"
    assert not out.flags.allows_duplicate_labels
    _same_index(out.index, parcels.index)
    np.testing.assert_array_equal(_emb(out), _emb(_embed(homes, table, model, mode="patch")))


@pytest.mark.parametrize("labels", ["ints", "multiindex"])
def test_embed_of_its_own_rows_without_a_category_column_says_how_to_name_one(env, labels):
    """embed(features=None) said "pass category_column='...'", which embed does not take (a TypeError if tried)."""
    _, _, table, model, homes = env
    if labels == "ints":
        rows = gpd.GeoDataFrame({0: homes["name"], 1: homes["fclass"], 2: homes.geometry}, geometry=2, crs=4326)
        category = 1
    else:
        rows = homes.copy()
        rows.columns = pd.MultiIndex.from_tuples([("attr", "name"), ("attr", "kind"), ("geometry", "")])
        rows = rows.set_geometry(("geometry", ""))
        category = ("attr", "kind")
    with pytest.raises(InvalidInputError, match=r"count_features\(pois, category_column=\.\.\.\), and give embed "
                                                r"that table"):
        _embed(rows, None, model, mode="patch")
    own = _quiet(geos2vec.count_features, rows, category_column=category)  # what the message says
    np.testing.assert_array_equal(_emb(_embed(rows, own, model, mode="patch")),
                                  _emb(_embed(homes, None, model, mode="patch")))
