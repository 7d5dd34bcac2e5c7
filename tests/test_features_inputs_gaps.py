"""Gaps in the input checks of count_features / combine_counts, FeatureStats, the ontology and location encoders.

Every expected value comes from an independent reference: s2sphere for cell ids, pandas / NumPy for counts and
statistics, the packaged ontology CSV read with pandas, or a hand-checked case.
"""

from __future__ import annotations

import json
import re
import warnings
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely
import xarray as xr

from geos2vec import _geo, location
from geos2vec._feature_inputs import _input_errors, _point_coords
from geos2vec.coverage import get_coverage
from geos2vec.errors import Geos2VecError, InvalidInputError, InvalidTypeError
from geos2vec.features import combine_counts, count_features
from geos2vec.normalize import FeatureStats
from geos2vec.ontology import Ontology, load_ontology

LEVEL = 10
# four far-apart places: each its own level-10 cell
PLACES = [(40.75, -73.98), (34.05, -118.24), (41.88, -87.63), (37.77, -122.42), (47.61, -122.33)]


def _s2(lat, lng, level=LEVEL) -> int:
    return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(level).id()


def _pois(**extra) -> pd.DataFrame:
    lat, lng = zip(*PLACES)
    df = pd.DataFrame({"lon": lng, "lat": lat, "fclass": ["restaurant", "cafe", "bank", "cafe", "school"]},
                      index=pd.Index([7, 7, 3, 11, 3], name="poi"))  # duplicate, unsorted labels
    return df.assign(**extra)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- count_features inputs
def test_library_errors_become_geos2vec_errors_with_the_same_message():
    with pytest.raises(InvalidInputError, match="^boom$") as info:
        with _input_errors():
            raise ValueError("boom")
    assert type(info.value.__cause__) is ValueError
    with pytest.raises(InvalidTypeError, match="^bad type$"):
        with _input_errors():
            raise TypeError("bad type")
    original = InvalidInputError("own")
    with pytest.raises(InvalidInputError) as info:
        with _input_errors():
            raise original
    assert info.value is original


def test_nan_or_text_coordinates_name_their_index_labels():
    df = _pois()
    df["lon"] = df["lon"].astype(object)
    df.iloc[1, df.columns.get_loc("lon")] = "n/a"
    df.iloc[3, df.columns.get_loc("lat")] = np.nan
    bad = pd.to_numeric(df["lon"], errors="coerce").isna() | df["lat"].isna()
    labels = list(df.index[bad.to_numpy()])  # pandas reference: [7, 11]
    with pytest.raises(InvalidInputError, match=re.escape(f"pois has 2 rows with missing or non-numeric lat/lon "
                                                          f"at index {labels}")):
        count_features(df, level=LEVEL)


def test_point_coords_refuses_a_list():
    with pytest.raises(InvalidTypeError, match="pois must be a GeoDataFrame, GeoSeries or a DataFrame .* got list"):
        _point_coords([(0.0, 0.0)], "raise")


def test_key_column_of_coerced_rows_stays_aligned_with_the_values():
    """With errors='coerce' and a key column, the keys of the dropped rows are dropped too."""
    onto = Ontology.from_mapping({"amenity=bar": "drink", "shop=*": "store", "cafe": "drink"})
    lat, lng = zip(*PLACES)
    df = pd.DataFrame({"lon": [np.nan, *lng[1:]], "lat": lat,
                       "fclass": ["bar", "bar", "bar", "cafe", "books"],
                       "osm_key": ["shop", "amenity", "shop", None, "shop"]}, index=[4, 4, 2, 9, 1])
    # hand-checked: amenity=bar -> drink, shop=bar -> store (shop=*), bare cafe -> drink, shop=books -> store
    expected_channel = [None, "drink", "store", "drink", "store"]
    with pytest.warns(UserWarning, match="1 POIs without geometry skipped"):
        got = count_features(df, level=LEVEL, ontology=onto, errors="coerce")
    ref = pd.DataFrame({"cell": [_s2(la, ln) for la, ln in zip(lat[1:], lng[1:])], "ch": expected_channel[1:]})
    ref = ref.groupby(["cell", "ch"]).size().unstack(fill_value=0)
    for ch in ("drink", "store"):
        expected = ref[ch].reindex([int(c) for c in got.index], fill_value=0).to_numpy()
        np.testing.assert_array_equal(got[ch].to_numpy(), expected)
    assert got.attrs["report"]["coerced_pois"] == 1


def test_duplicate_and_unsorted_index_labels_count_every_row():
    df = _pois()
    got = count_features(df, level=LEVEL)
    ref = pd.crosstab([_s2(la, ln) for la, ln in zip(df.lat, df.lon)], df["fclass"].to_numpy())
    assert sorted(got.index.tolist()) == got.index.tolist() == sorted(ref.index.tolist())
    for ch in ref.columns:
        np.testing.assert_array_equal(got[ch].to_numpy(), ref[ch].to_numpy())


def test_extra_as_one_string_is_one_category_column():
    df = _pois(kind=["a", "b", "a", "a", "c"])
    got = count_features(df, level=LEVEL, extra="kind")
    ref = pd.crosstab([_s2(la, ln) for la, ln in zip(df.lat, df.lon)], df["kind"].to_numpy())
    assert list(got.columns[-3:]) == ["kind=a", "kind=b", "kind=c"]
    for v in ("a", "b", "c"):
        np.testing.assert_array_equal(got[f"kind={v}"].to_numpy(), ref[v].reindex(got.index.tolist()).to_numpy())


@pytest.mark.parametrize("extra, what", [
    (3, "extra must be a column name, a list of category columns or a dict"),
    ({"fclass"}, "extra must be a column name, a list of category columns or a dict"),
    ({"v": ["sum"]}, r"extra takes column names and aggregation names \(strings\), got 'v': \['sum'\]"),
    ([["fclass"]], r"extra takes column names and aggregation names \(strings\), got \['fclass'\]"),
    ({"v": None}, "extra takes column names and aggregation names"),
])
def test_extra_of_wrong_types_is_a_clear_type_error(extra, what):
    """A list as a column or an aggregation raised pandas' bare 'unhashable type: list'."""
    with pytest.raises(InvalidTypeError, match=what):
        count_features(_pois(v=1.0), level=LEVEL, extra=extra)


def test_key_column_that_is_not_a_column():
    with pytest.raises(InvalidInputError, match="key_column 'osm_tag' is not a column of pois"):
        count_features(_pois(), level=LEVEL, key_column="osm_tag")


def test_geodataframe_without_active_geometry_and_plain_frame_roads():
    pois = gpd.GeoDataFrame(_pois(), geometry=gpd.points_from_xy(_pois().lon, _pois().lat), crs=4326)
    no_active = gpd.GeoDataFrame(pd.DataFrame(pois).rename(columns={"geometry": "geom"}))
    with pytest.raises(InvalidTypeError, match=r"pois has no active geometry column; call set_geometry"):
        count_features(no_active, level=LEVEL)
    with pytest.raises(InvalidTypeError, match="roads must be a GeoDataFrame or GeoSeries, got DataFrame"):
        count_features(roads=_pois(), level=LEVEL)


def test_projected_roads_that_are_all_empty_are_coerced_not_transformed():
    roads = gpd.GeoSeries([shapely.LineString(), None], crs=3857)
    with pytest.warns(UserWarning, match="2 roads without geometry skipped"):
        got = count_features(roads=roads, level=LEVEL, errors="coerce")
    assert got.shape == (0, len(load_ontology().all_channels))
    assert got.attrs["report"]["coerced_roads"] == 2
    assert _geo.to_wgs84(roads, "roads").crs.equals("EPSG:4326")


def test_check_missing_refuses_other_errors_modes():
    with pytest.raises(InvalidInputError, match="errors must be 'raise' or 'coerce', got 'ignore'"):
        _geo.check_missing(gpd.GeoSeries([shapely.Point(0, 0)], crs=4326), "ignore")


def test_source_that_records_nothing_lacks_every_poi_channel():
    df = _pois()
    df.attrs["source_tags"] = []
    got = count_features(df, level=LEVEL, coverage="infer")
    geom, missing = get_coverage(got)
    lacking = {c for c, g in missing.items() if g.is_empty}
    assert lacking == set(load_ontology().all_channels)  # no roads given, no tag recordable
    assert geom.covers(shapely.MultiPoint(list(zip(df.lon, df.lat))))


# --------------------------------------------------------------------------- combine_counts
def _tables():
    df = _pois()
    return count_features(df, level=LEVEL), count_features(df.iloc[:2], level=LEVEL)


def test_combine_counts_sums_like_pandas_and_refuses_other_columns():
    a, b = _tables()
    ref = pd.concat([a, b]).groupby(level=0).sum()
    got = combine_counts([a, b])
    pd.testing.assert_frame_equal(got, ref, check_names=False, check_index_type=False)
    with pytest.raises(InvalidInputError, match="all tables must have the same columns in the same order"):
        combine_counts([a, b[b.columns[::-1]]])


@pytest.mark.parametrize("make, err, what", [
    (lambda a: a, InvalidTypeError, "tables must be a list of DataFrames, got one DataFrame; pass"),
    (lambda a: "abc", InvalidTypeError, "tables must be a list of DataFrames, got one str"),
    (lambda a: [a.to_numpy()], InvalidTypeError, r"tables\[0\] is a ndarray, not a count_features DataFrame"),
    (lambda a: [a, a.assign(cafe="x")], InvalidTypeError,
     r"tables\[1\] has non-numeric channel column\(s\) \['cafe'\]"),
    (lambda a: [a.set_axis([f"c{k}" for k in range(len(a))])], InvalidInputError,
     r"tables\[0\] is not indexed by S2 cell ids"),
])
def test_combine_counts_refuses_what_is_not_a_list_of_count_tables(make, err, what):
    """These raised AttributeError ('str' has no 'columns'), int()'s ValueError or a bare TypeError."""
    a, _ = _tables()
    with pytest.raises(err, match=what):
        combine_counts(make(a))


# --------------------------------------------------------------------------- FeatureStats
def test_fit_refuses_inputs_it_cannot_read():
    with pytest.raises(InvalidInputError, match=r"a DataArray needs a 'feature' dimension .* \('y', 'x'\)"):
        FeatureStats.fit(xr.DataArray(np.ones((2, 2)), dims=("y", "x")))
    with pytest.raises(InvalidTypeError, match="channels must be a list of column names, got the string 'a'"):
        FeatureStats.fit(pd.DataFrame({"a": [1.0]}), channels="a")
    with pytest.raises(InvalidInputError, match=r"channels \['b'\] are not columns of the table"):
        FeatureStats.fit(pd.DataFrame({"a": [1.0]}), channels=["b"])
    with pytest.raises(InvalidTypeError, match=r"features must be real numbers \(or booleans\), got dtype <U1"):
        FeatureStats.fit(np.array([["x"]]))
    with pytest.raises(InvalidInputError, match="got a scalar"):
        FeatureStats.fit(np.float64(3.0))


def test_fit_refuses_complex_values_instead_of_dropping_the_imaginary_part():
    """Complex input was fitted on its real part (mean of [1+5j] was 1.0), with a ComplexWarning at most."""
    with pytest.raises(InvalidTypeError, match="complex128"):
        FeatureStats.fit(np.array([[1 + 5j], [2 + 0j]]))
    with pytest.raises(InvalidTypeError, match=r"not numeric: \['z'\]"):
        FeatureStats.fit(pd.DataFrame({"z": [1 + 5j, 2 + 0j], "a": [1.0, 2.0]}))
    with pytest.raises(InvalidTypeError, match="features must be real numbers, got dtype complex128"):
        FeatureStats.fit(xr.DataArray(np.array([[1 + 5j]]), dims=("y", "feature")))


def test_dataarray_channels_as_a_string_is_named_as_such():
    """channels='ab' was reported as "channels=['a', 'b'] differ from ... ['a', 'b']"."""
    da = xr.DataArray(np.ones((2, 2)), dims=("y", "feature"), coords={"feature": ["a", "b"]})
    with pytest.raises(InvalidTypeError, match="channels must be a list of names, got the string 'ab'"):
        FeatureStats.fit(da, channels="ab")
    assert FeatureStats.fit(da, channels=["a", "b"]).channels == ["a", "b"]


def test_transform_keeps_a_duplicate_unsorted_index_and_matches_pandas():
    train = pd.DataFrame({"a": [1.0, 3.0, 8.0], "b": [2, 2, 5]})
    stats = FeatureStats.fit(train)
    x = pd.DataFrame({"b": [4, 1, 0], "extra": ["u", "v", "w"], "a": [0.5, 2.0, np.nan]}, index=[9, 9, 1])
    ref = (x[["a", "b"]] - train.mean()) / train.std(ddof=0)
    pd.testing.assert_frame_equal(stats.transform(x), ref.astype(np.float64))


def test_transform_refuses_duplicate_text_and_scalar_inputs():
    stats = FeatureStats.fit(pd.DataFrame({"a": [1.0, 3.0], "b": [2.0, 4.0]}))
    with pytest.raises(InvalidInputError, match=r"duplicate columns \['a'\] \(fitted channels\)"):
        stats.transform(pd.DataFrame([[1.0, 2.0, 3.0]], columns=["a", "b", "a"]))
    with pytest.raises(InvalidTypeError, match=r"channel columns must be numeric; not numeric: \['a'\]"):
        stats.transform(pd.DataFrame({"a": ["x"], "b": [1.0]}))
    with pytest.raises(InvalidTypeError, match="feature values must be numeric, got dtype <U1"):
        stats.inverse_transform(np.array([["x", "y"]]))
    with pytest.raises(InvalidInputError, match="holds the 2 channels, got a scalar"):
        stats.transform(3.0)


def test_merge_and_combine_refuse_what_is_not_statistics():
    stats = FeatureStats.fit(np.array([[1.0], [3.0]]))
    for other in (None, 3, {"channels": ["f0"]}):
        with pytest.raises(InvalidTypeError, match=f"can only merge FeatureStats, got {type(other).__name__}"):
            stats.merge(other)
    with pytest.raises(InvalidInputError, match="no partial statistics to combine"):
        FeatureStats.combine(iter([]))
    both = FeatureStats.combine([stats, FeatureStats.fit(np.array([[8.0]]))])
    np.testing.assert_allclose([both.mean[0], both.var[0]], [np.mean([1, 3, 8]), np.var([1, 3, 8])])


def test_from_dict_and_load_refuse_a_json_list(tmp_path):
    with pytest.raises(InvalidInputError, match="expected a JSON object, got list"):
        FeatureStats.from_dict([1, 2])
    path = tmp_path / "stats.json"
    path.write_text(json.dumps([{"channels": ["a"]}]))
    with pytest.raises(InvalidInputError, match=re.escape(f"{path} does not hold a JSON object")):
        FeatureStats.load(path)


# --------------------------------------------------------------------------- ontology
def _packaged_csv() -> pd.DataFrame:
    with resources.as_file(resources.files("geos2vec") / "data" / "ontology_v1.csv") as p:
        return pd.read_csv(p, comment="#", dtype=str, keep_default_na=False)


def test_groups_repr_and_to_frame_of_the_packaged_ontology():
    csv = _packaged_csv()
    onto = load_ontology("v1")
    assert load_ontology(onto) is onto
    pois = csv[csv.channel != "road"]
    ref_groups = pois.drop_duplicates("channel").set_index("channel")["group"]
    assert onto.groups.to_dict() == ref_groups.to_dict()
    assert list(onto.groups.index) == list(pois.channel.drop_duplicates())
    n_roads = csv.loc[csv.channel == "road", "osm_value"].nunique()
    n_pois = pois.channel.nunique()
    assert repr(onto) == f"Ontology('v1', {n_pois} POI channels + 'road', roads: {n_roads} highway values)"
    frame = onto.to_frame()
    pd.testing.assert_frame_equal(frame.astype(str), csv)
    frame.loc[:, "channel"] = "changed"
    assert onto.to_frame()["channel"].tolist() == csv["channel"].tolist()
    custom = Ontology.from_channels(["x", "y"])
    assert load_ontology(custom) is custom
    assert repr(custom) == "Ontology('custom', 2 POI channels + 'road', roads: all lines)"
    # a channel in two groups: its first row's group, channels in their own order (hand-checked)
    table = pd.DataFrame([("b", "g1", None, "v1"), ("a", "g2", None, "v2"), ("b", "g3", None, "v3")],
                         columns=["channel", "group", "osm_key", "osm_value"], dtype=object)
    assert Ontology(table=table, channels=["a", "b"]).groups.to_dict() == {"a": "g2", "b": "g1"}


@pytest.mark.parametrize("channels, what", [
    ("food", "channels must be a list of channel names, got str 'food'; for one channel pass"),
    ("abc", "got str 'abc'"),
    (None, "channels must be a list of channel names, got NoneType"),
    ([], "channels must be a non-empty list of non-empty strings"),
    (["a", ""], "channels must be a non-empty list of non-empty strings"),
    (["a", np.nan], "channels must be a non-empty list of non-empty strings"),
])
def test_from_channels_refuses_a_string_and_other_non_lists(channels, what):
    """'abc' became three channels a, b, c; 'food' a bogus 'duplicate channels: ['o']'; None a bare TypeError."""
    with pytest.raises(InvalidTypeError, match=re.escape(what)):
        Ontology.from_channels(channels)
    assert Ontology.from_channels(pd.Index(["x", "y"])).channels == ["x", "y"]


# --------------------------------------------------------------------------- location encoders
@pytest.mark.parametrize("method", [None, "theroy", ["wrap"], 3])
def test_unknown_location_method_is_a_geos2vec_error(method):
    for call in (lambda: location.encode_location(0.0, 0.0, method), lambda: location.output_dim(method)):
        with pytest.raises(InvalidInputError, match=re.escape(f"unknown location encoder {method!r}")):
            call()


@pytest.mark.parametrize("bad", ["abc", None, [1e-3]])
def test_radii_that_are_not_numbers_are_a_clear_type_error(bad):
    """float('abc') / float(None) raised their own bare ValueError / TypeError."""
    with pytest.raises(InvalidTypeError, match="min_radius and max_radius must be numbers"):
        location.scales(3, min_radius=bad)
    with pytest.raises(InvalidTypeError, match="min_radius and max_radius must be numbers"):
        location.encode_location(0.0, 0.0, "sphereC", max_radius=bad)


def test_radii_out_of_order_raise_a_geos2vec_error_and_scales_are_geometric():
    with pytest.raises(InvalidInputError, match="need 0 < min_radius <= max_radius"):
        location.scales(3, min_radius=2.0, max_radius=1.0)
    with pytest.raises(Geos2VecError):
        location.encode_location(0.0, 0.0, "grid", min_radius=-1.0)
    np.testing.assert_allclose(location.scales(5, 1e-3, 2.0), np.geomspace(1e-3, 2.0, 5), rtol=1e-12)
