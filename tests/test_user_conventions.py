"""A pandas / GeoPandas purist's checks: geos2vec behaves like its neighbours.

Stray spaces around categories, MultiIndex columns, empty results' dtypes and column metadata, each against
what pandas / GeoPandas do themselves.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec.errors import InvalidInputError
from geos2vec.features import combine_counts, count_features


@pytest.fixture(scope="module")
def la(shared_data):
    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet").iloc[:300]
    roads = gpd.read_parquet(shared_data / "roads" / "los_angeles.parquet").iloc[:200]
    return pois, roads


@pytest.fixture(scope="module")
def model_table(shared_data):
    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(pois)
    return geos2vec.load_model("default"), table, pois


def _quiet(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kw)


# ------------------------------------------------------------------ categories with stray spaces
def test_stray_spaces_around_categories_are_stripped(la):
    """' restaurant ' counts as restaurant: bare values as keys and key=value tags already were."""
    pois, roads = la
    padded = pois.assign(fclass=" " + pois["fclass"].astype(str) + "  ")
    padded_roads = roads.assign(highway=roads["highway"].astype(str) + " ")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = count_features(padded, padded_roads)
    assert not [w for w in caught if "no channel" in str(w.message)]
    ref = _quiet(count_features, pois.assign(fclass=pois["fclass"].str.strip()), roads)
    pd.testing.assert_frame_equal(got, ref)
    # independent of count_features: every LA value is an ontology value, so every POI counts once
    known = pois["fclass"].str.strip().isin(geos2vec.load_ontology().table["osm_value"])
    assert int(got.drop(columns="road").to_numpy().sum()) == int(known.sum()) == got.attrs["report"]["n_pois_counted"]
    # a key=value tag in a key column was already stripped: the bare value now counts the same
    keyed = _quiet(count_features, padded.assign(osm_key="amenity"))
    assert int(keyed.drop(columns="road").to_numpy().sum()) == int(known.sum())


def test_stray_space_variants_of_an_unknown_value_are_reported_once(la):
    pois, _ = la
    odd = pois.iloc[:4].assign(fclass=["not_a_tag", " not_a_tag", "not_a_tag ", "Restaurant"])
    with pytest.warns(UserWarning, match="outside the ontology"):
        t = count_features(odd)
    assert t.attrs["report"]["dropped_categories"] == {"not_a_tag": 3, "Restaurant": 1}  # case is kept


# ------------------------------------------------------------------ MultiIndex columns (mixed label types)
def _mi(pois):
    df = pd.DataFrame({("fclass", "en"): pois["fclass"].to_numpy(), ("fclass", 2): pois["fclass"].to_numpy(),
                       ("n", ""): np.arange(len(pois)), ("lon", ""): pois.geometry.x.to_numpy(),
                       ("lat", ""): pois.geometry.y.to_numpy()})
    return df


def test_multiindex_column_label_that_selects_several_columns_is_a_clear_error(la):
    pois, roads = la
    df = _mi(pois)
    assert isinstance(df["fclass"], pd.DataFrame)  # pandas: a first-level label selects both columns
    with pytest.raises(InvalidInputError, match=r"category_column 'fclass'.*\('fclass', 'en'\)"):
        count_features(df)
    with pytest.raises(InvalidInputError, match=r"extra column 'fclass'.*\('fclass', 2\)"):
        count_features(df, category_column=("fclass", "en"), extra=["fclass"])
    hw = pd.DataFrame({("highway", "a"): roads["highway"].to_numpy(), ("highway", "b"): roads["highway"].to_numpy()})
    mi_roads = gpd.GeoDataFrame(hw, geometry=roads.geometry.to_numpy(), crs=roads.crs)
    with pytest.raises(InvalidInputError, match=r"road_column 'highway'.*\('highway', 'a'\)"):
        count_features(None, mi_roads, road_column="highway")
    deg = pd.DataFrame({("lon", "deg"): pois.geometry.x.to_numpy(), ("lat", "deg"): pois.geometry.y.to_numpy(),
                        ("fclass", ""): pois["fclass"].to_numpy()})
    with pytest.raises(InvalidInputError, match=r"\('lat', 'deg'\).*flatten"):
        count_features(deg)


def test_multiindex_columns_named_in_full_count_like_flat_columns(la):
    pois, _ = la
    flat = pd.DataFrame({"fclass": pois["fclass"].to_numpy(), "n": np.arange(len(pois)),
                         "lon": pois.geometry.x.to_numpy(), "lat": pois.geometry.y.to_numpy()})
    ref = _quiet(count_features, flat, extra={"n": "sum"})
    got = _quiet(count_features, _mi(pois), category_column=("fclass", "en"), extra={("n", ""): "sum"})
    np.testing.assert_array_equal(got.to_numpy(), ref.to_numpy())
    # the extra sum against a pandas groupby of the cells
    cells = geos2vec.latlng_to_cell(flat["lat"].to_numpy(), flat["lon"].to_numpy(), 12)
    by_cell = flat["n"].groupby(cells).sum()
    np.testing.assert_array_equal(got[("n", "")].to_numpy(), by_cell.reindex(got.index).to_numpy(float))


def test_embed_of_a_frame_with_multiindex_columns_keeps_its_geometry(model_table):
    """New columns are labelled (name, '') as pandas' gdf['s2_cell'] = ... labels them: the geometry stays active."""
    model, table, pois = model_table
    homes = pois.iloc[::60]
    mi = gpd.GeoDataFrame(pd.DataFrame({("id", "osm"): homes["osm_id"].to_numpy(), ("id", 2): 1}, index=homes.index),
                          geometry=homes.geometry.to_numpy(), crs=homes.crs)
    got = _quiet(mi.s2vec.embed, table, model=model, mode="patch")
    ref = _quiet(homes[["osm_id", "geometry"]].s2vec.embed, table, model=model, mode="patch")
    assert isinstance(got.columns, pd.MultiIndex) and got.columns.nlevels == 2
    assert got.geometry.geom_equals(mi.geometry).all() and got.crs == mi.crs  # was an AttributeError
    assert got.columns[-1] == ("s2vec_255", "")
    np.testing.assert_array_equal(got["s2_cell"].to_numpy(), ref["s2_cell"].to_numpy())
    np.testing.assert_array_equal(got[[f"s2vec_{k}" for k in range(256)]].to_numpy(),
                                  ref[[f"s2vec_{k}" for k in range(256)]].to_numpy())


def test_embed_keeps_the_columns_name(model_table):
    model, table, pois = model_table
    homes = pois.iloc[::120][["osm_id", "geometry"]].copy()
    homes.columns.name = "attribute"
    expected = homes.copy()
    expected["s2_cell"] = 0  # pandas keeps columns.name when a column is added
    got = _quiet(homes.s2vec.embed, table, model=model, mode="patch")
    assert got.columns.name == expected.columns.name == "attribute"


# ------------------------------------------------------------------ empty frames: the non-empty dtypes
def test_empty_results_have_the_dtypes_of_non_empty_ones(model_table):
    model, table, pois = model_table
    full, empty = pois.iloc[:20].s2vec.cells(), pois.iloc[:0].s2vec.cells()
    assert list(empty.columns) == list(full.columns)
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()
    assert full["token"].dtype == pd.Series(["80c2c"]).dtype  # pandas' default string dtype
    some = _quiet(geos2vec.cell_embeddings, table.iloc[:2], model=model, mode="patch")
    none = _quiet(geos2vec.cell_embeddings, table.iloc[:0], model=model, mode="patch")
    assert none.dtypes.to_dict() == some.dtypes.to_dict()


def test_a_plain_dataframe_of_pois_as_features_says_how_to_count_it(model_table):
    model, table, pois = model_table
    df = pd.DataFrame({"lon": pois.geometry.x, "lat": pois.geometry.y, "fclass": pois["fclass"]})
    with pytest.raises(InvalidInputError, match=r"\{'pois': features\}"):
        pois.iloc[:3].s2vec.embed(df, model=model, mode="patch")
    got = _quiet(pois.iloc[:3].s2vec.embed, {"pois": df}, model=model, mode="patch")
    ref = _quiet(pois.iloc[:3].s2vec.embed, table, model=model, mode="patch")
    pd.testing.assert_frame_equal(got.drop(columns=list(pois.columns)), ref.drop(columns=list(pois.columns)))


# ------------------------------------------------------------------ column options as pandas takes them
def test_extra_takes_pandas_list_likes_and_column_options_take_one_label(la):
    pois, _ = la
    pois = pois.assign(n=np.arange(len(pois)) % 4)
    by_list = _quiet(count_features, pois, extra=["n"])
    pd.testing.assert_frame_equal(_quiet(count_features, pois, extra=pd.Index(["n"])), by_list)  # e.g. df.columns[k:]
    pd.testing.assert_frame_equal(_quiet(count_features, pois, extra=np.array(["n"])), by_list)
    by_dict = _quiet(count_features, pois, extra={"n": "sum", "osm_id": "count"})
    pd.testing.assert_frame_equal(_quiet(count_features, pois, extra=pd.Series({"n": "sum", "osm_id": "count"})),
                                  by_dict)
    cells = geos2vec.latlng_to_cell(pois.geometry.y.to_numpy(), pois.geometry.x.to_numpy(), 12)
    ref = pd.crosstab(cells, pois["n"].to_numpy())  # pandas' own count of each value per cell
    np.testing.assert_array_equal(by_list[[f"n={v}" for v in ref.columns]].loc[ref.index].to_numpy(), ref.to_numpy())
    with pytest.raises(geos2vec.errors.InvalidTypeError, match="category_column must be one column label"):
        count_features(pois, category_column=["fclass"])  # was a bare "unhashable type: 'list'"


def test_combine_counts_of_a_nullable_index_with_missing_cells_is_a_clear_error(la):
    pois, _ = la
    t = _quiet(count_features, pois)
    u = t.copy()
    u.index = pd.array([*t.index[:-1], pd.NA], dtype="UInt64")
    with pytest.raises(InvalidInputError, match=r"tables\[0\]'s cell_id index has 1 missing"):
        combine_counts([u, t])  # was pandas' "cannot convert to 'uint64'-dtype NumPy array"
    u.index = pd.array(t.index, dtype="UInt64")  # without <NA>: the same sums as the uint64 index
    pd.testing.assert_frame_equal(combine_counts([u, t]), combine_counts([t, t]))
    np.testing.assert_array_equal(combine_counts([u, t]).to_numpy(), 2 * t.to_numpy())
