"""count_features: POI/road histograms, extras, reports and bad input."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

import geos2vec
from geos2vec.cells import cell_polygons, latlng_to_cell
from geos2vec.features import combine_counts, count_features
from geos2vec.ontology import load_ontology
from tests.conftest import CITIES
from tests.test_cover import _geodesic_sample_cells


def _pois(lng, lat, cats, **cols):
    return gpd.GeoDataFrame({"fclass": cats, **cols}, geometry=gpd.points_from_xy(lng, lat), crs="EPSG:4326")


def _quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return count_features(*args, **kwargs)


def _geodesic_road_cells(geoms, level=12, spacing_m=1.0):
    """Distinct (road, cell) pairs of points sampled every ``spacing_m`` metres along each segment's great circle.

    The ground truth of tests/test_cover.py's ``_geodesic_sample_cells`` (chord points pushed onto the sphere),
    vectorised over every segment of every part of every road; ``road`` is the position in ``geoms``.
    """
    parts, road_of_part = shapely.get_parts(np.asarray(geoms), return_index=True)
    co, part = shapely.get_coordinates(parts, return_index=True)
    same = part[1:] == part[:-1]
    lng, lat = np.radians(co[:, 0]), np.radians(co[:, 1])
    xyz = np.stack([np.cos(lng) * np.cos(lat), np.sin(lng) * np.cos(lat), np.sin(lat)], axis=1)
    a, b, road = xyz[:-1][same], xyz[1:][same], road_of_part[part[:-1][same]]
    metres = np.arccos(np.clip((a * b).sum(axis=1), -1, 1)) * 6_371_008.8
    n = np.ceil(metres / spacing_m).astype(np.int64) + 2  # both ends and a sample at least every spacing_m
    seg = np.repeat(np.arange(len(a)), n)
    t = ((np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n - 1, n))[:, None]
    p = (1 - t) * a[seg] + t * b[seg]
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    cells = latlng_to_cell(np.degrees(np.arcsin(np.clip(p[:, 2], -1, 1))), np.degrees(np.arctan2(p[:, 1], p[:, 0])),
                           level)
    return pd.DataFrame({"road": road[seg], "cell": cells}).drop_duplicates()


def _assert_road_channel(out, geoms):
    """``out["road"]`` is the number of distinct roads whose geodesic crosses each cell (reference: dense samples).

    The one tolerance is the one tests/test_cover.py documents for the covering kernel: the kernel may add a
    (road, cell) pair that the road only clips by less than the sample spacing, i.e. a road passing within
    1e-5 degrees (about 1 m) of the cell, at most 5 such pairs in a city. Nothing crossed may be missed.
    """
    geoms = np.asarray(geoms)
    pairs = _geodesic_road_cells(geoms)
    ref = pairs.groupby("cell").size()
    ref.index = ref.index.to_numpy(np.uint64)
    assert ref.index.isin(out.index).all()  # every crossed cell is a row
    extra = out["road"] - ref.reindex(out.index, fill_value=0)
    assert (extra >= 0).all(), extra[extra < 0]  # no road missed in a cell its arc passes through
    clips = extra[extra > 0]
    assert clips.sum() <= 5, clips
    for cell, k in clips.items():
        poly = cell_polygons(np.array([cell], dtype=np.uint64)).iloc[0]
        unsampled = ~np.isin(np.arange(len(geoms)), pairs.loc[pairs["cell"] == cell, "road"].to_numpy())
        assert k <= np.count_nonzero(unsampled & (shapely.distance(geoms, poly) < 1e-5)), (cell, k)
    return ref


@pytest.mark.parametrize("city", CITIES)
def test_city_totals_equal_pandas(shared_data, city):
    pois = gpd.read_parquet(shared_data / "pois" / f"{city}.parquet")
    out = _quiet(pois)
    onto = load_ontology()
    # independent computation: python dict of the ontology table, pandas value_counts / crosstab
    table = onto.table[onto.table["channel"] != "road"]
    value_to_channel = dict(zip(table["osm_value"], table["channel"]))
    channel = pois["fclass"].map(value_to_channel)
    expected = channel.value_counts().reindex(onto.channels, fill_value=0)
    pd.testing.assert_series_equal(out[onto.channels].sum(), expected, check_names=False)
    # and per cell
    cell = latlng_to_cell(pois.geometry.y.to_numpy(), pois.geometry.x.to_numpy(), 12)
    ref = pd.crosstab(cell[channel.notna().to_numpy()], channel.dropna().to_numpy())
    got = out.loc[out[onto.channels].sum(axis=1) > 0, ref.columns]
    np.testing.assert_array_equal(got.index.to_numpy(), ref.index.to_numpy().astype(np.uint64))
    np.testing.assert_array_equal(got.to_numpy(), ref.to_numpy())
    rep = out.attrs["report"]
    assert rep["n_pois_counted"] + sum(rep["dropped_categories"].values()) + rep["n_missing_category"] == len(pois)
    assert rep["n_missing_category"] == int((pois["fclass"].str.strip() == "").sum())


def test_contract_and_roads(shared_data):
    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")
    roads = gpd.read_parquet(shared_data / "roads" / "los_angeles.parquet")
    with pytest.warns(UserWarning, match="counted these in no channel"):
        out = count_features(pois, roads)
    onto = load_ontology()
    assert out.index.name == "cell_id" and out.index.dtype == np.uint64
    assert out.index.is_monotonic_increasing and out.index.is_unique
    assert list(out.columns) == onto.channels + ["road"]
    assert all(dt == np.int64 for dt in out.dtypes)
    # road column: distinct roads per cell, from an independent shapely covering of each road's vertices
    counted = roads[roads["highway"].isin(onto.road_values)]
    assert out.attrs["report"]["dropped_roads"] == roads.loc[~roads["highway"].isin(onto.road_values),
                                                             "highway"].value_counts().to_dict()
    assert out.attrs["report"]["n_roads_counted"] == len(counted)
    # exact per cell: distinct counted roads whose geodesic (sampled every metre) crosses the cell
    ref = _assert_road_channel(out, counted.geometry.values)
    co, idx = shapely.get_coordinates(counted.geometry.values, return_index=True)
    vertex_cells = pd.DataFrame({"road": idx, "cell": latlng_to_cell(co[:, 1], co[:, 0], 12)}).drop_duplicates()
    assert ref.sum() > len(vertex_cells)  # roads cross cells between their vertices: the check can tell
    # cells = union of POI cells and road cells
    poi_cells = set(latlng_to_cell(pois.geometry.y.to_numpy(), pois.geometry.x.to_numpy(), 12).tolist())
    assert set(out.index.tolist()) == poi_cells | set(out.index[out["road"] > 0].tolist())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(40.5, 40.9), st.floats(-74.2, -73.7),
                          st.sampled_from(["restaurant", "cafe", "bench", "zzz", None])), min_size=1, max_size=60))
def test_counts_match_groupby_property(rows):
    lat, lng, cat = map(list, zip(*rows))
    out = _quiet(_pois(lng, lat, cat))
    cell = latlng_to_cell(np.array(lat), np.array(lng), 12)
    ref = pd.DataFrame({"cell": cell, "cat": cat}).dropna().query("cat != 'zzz'")
    ref = ref.groupby(["cell", "cat"]).size().unstack(fill_value=0)
    assert set(out.index.tolist()) == set(cell.tolist())  # every input cell, also ones with dropped POIs
    for c in ref.columns:
        np.testing.assert_array_equal(out.loc[ref.index.to_numpy(np.uint64), c].to_numpy(), ref[c].to_numpy())
    assert out.to_numpy().sum() == ref.to_numpy().sum()


def test_extra_channels():
    lng = [2.35, 2.35, 2.351, 13.4]
    lat = [48.85, 48.85, 48.851, 52.5]
    pois = _pois(lng, lat, ["cafe", "bar", "cafe", "cafe"], pop=[1.0, 2.0, np.nan, 4.0],
                 kind=["a", "b", "a", None], rating=[3, 5, 4, 1])
    out = _quiet(pois, extra={"pop": "sum", "kind": "categories", "rating": "mean"})
    onto = load_ontology()
    assert list(out.columns) == onto.all_channels + ["pop", "kind=a", "kind=b", "rating"]
    paris = latlng_to_cell(48.85, 2.35, 12)
    berlin = latlng_to_cell(52.5, 13.4, 12)
    assert latlng_to_cell(48.851, 2.351, 12) == paris
    assert out.loc[paris, "pop"] == 3.0 and out.loc[berlin, "pop"] == 4.0
    assert out.loc[paris, "rating"] == 4.0 and out.loc[paris, "cafe"] == 2 and out.loc[paris, "bar"] == 1
    assert out.loc[paris, "kind=a"] == 2 and out.loc[berlin, "kind=a"] == 0
    assert out.attrs["report"]["extra_missing"] == {"kind": 1}
    listed = _quiet(pois, extra=["kind"])
    assert list(listed.columns[-2:]) == ["kind=a", "kind=b"]
    with pytest.raises(ValueError, match="not a column"):
        count_features(pois, extra=["nope"])
    with pytest.raises(TypeError, match="must be numeric"):
        count_features(pois, extra={"kind": "sum"})
    with pytest.raises(ValueError, match="unknown aggregation"):
        count_features(pois, extra={"pop": "median"})
    with pytest.raises(ValueError, match="clash"):
        count_features(pois.rename(columns={"pop": "cafe"}), extra={"cafe": "sum"})


def test_custom_ontologies_and_columns():
    pois = _pois([2.35, 2.35], [48.85, 48.85], ["x", "y"])
    out = count_features(pois, ontology=["x", "y"])
    assert list(out.columns) == ["x", "y", "road"] and out.iloc[0].tolist() == [1, 1, 0]
    pois["key"] = ["amenity", "shop"]
    out = _quiet(pois, ontology={"amenity=x": "A", "shop=*": "S"}, category_column="fclass", key_column="key")
    assert out.iloc[0].tolist() == [1, 1, 0]
    plain = pd.DataFrame({"lon": [2.35], "lat": [48.85], "category": ["cafe"]})
    assert count_features(plain).loc[latlng_to_cell(48.85, 2.35, 12), "cafe"] == 1


def test_reports_unknown_and_missing_categories():
    pois = _pois([2.35] * 4, [48.85] * 4, ["cafe", "nonsense", None, " "])
    with pytest.warns(UserWarning, match="1 POIs with 1 categories outside.*2 POIs with a missing"):
        out = count_features(pois)
    rep = out.attrs["report"]
    assert rep["dropped_categories"] == {"nonsense": 1} and rep["n_missing_category"] == 2
    assert out.to_numpy().sum() == 1


def test_non_string_categories_raise_type_error():
    # integer codes are not OSM values: a TypeError, not a report of "missing/blank" categories
    pois = _pois([2.35, 2.36], [48.85, 48.86], [3, 7])
    with pytest.raises(TypeError, match=r"'fclass' must hold strings.*\[3, 7\] \(int\)"):
        count_features(pois)
    mixed = _pois([2.35, 2.36, 2.37], [48.85, 48.86, 48.87], ["cafe", None, 1.5])
    with pytest.raises(TypeError, match="1 non-string value"):
        count_features(mixed)


def test_projected_and_non_point_input():
    pois = _pois([2.35, 2.36], [48.85, 48.86], ["cafe", "bar"])
    ref = count_features(pois)
    pd.testing.assert_frame_equal(count_features(pois.to_crs(3857)), ref)
    poly = pois.copy()
    poly.geometry = pois.to_crs(3857).buffer(5).to_crs(4326)
    out = count_features(poly)
    assert out.attrs["report"]["non_point_pois"] == 2
    np.testing.assert_array_equal(out.to_numpy(), ref.to_numpy())


def test_bad_input():
    pois = _pois([2.35, 2.36], [48.85, 48.86], ["cafe", "bar"])
    with pytest.raises(ValueError, match="no CRS"):
        count_features(pois.set_crs(None, allow_override=True))
    missing = pois.copy()
    missing.loc[1, "geometry"] = None
    with pytest.raises(ValueError, match=r"missing or empty geometries at index \[1\]"):
        count_features(missing)
    with pytest.warns(UserWarning, match="without geometry skipped"):
        out = count_features(missing, errors="coerce")
    assert out.attrs["report"]["coerced_pois"] == 1 and out.to_numpy().sum() == 1
    swapped = _pois([48.85], [120.0], ["cafe"])
    with pytest.raises(ValueError, match="outside lat"):
        count_features(swapped)
    with pytest.raises(ValueError, match="no category column"):
        count_features(pois.rename(columns={"fclass": "foo"}))
    with pytest.raises(ValueError, match="needs pois and/or roads"):
        count_features()
    with pytest.raises(TypeError, match="GeoDataFrame"):
        count_features(pois.geometry)
    with pytest.raises(ValueError, match="LineStrings or MultiLineStrings"):
        count_features(roads=pois)
    with pytest.raises(ValueError, match="longitude/latitude columns"):
        count_features(pd.DataFrame({"fclass": ["cafe"]}))
    with pytest.raises(ValueError, match="between 0 and 30"):
        count_features(pois, level=31)


def test_empty_inputs():
    empty = _pois([], [], pd.Series([], dtype=object))
    out = count_features(empty)
    assert out.shape == (0, 116) and out.index.dtype == np.uint64 and out.index.name == "cell_id"
    roads_only = gpd.GeoDataFrame(geometry=[shapely.LineString([(2.35, 48.85), (2.45, 48.85)])], crs=4326)
    out = count_features(roads=roads_only)
    assert out.drop(columns="road").to_numpy().sum() == 0
    # one road: 1 in exactly the cells of its geodesic, more than the two cells holding its vertices
    expected = _geodesic_sample_cells(48.85, 2.35, 48.85, 2.45, 12)
    assert {int(latlng_to_cell(48.85, 2.35, 12)), int(latlng_to_cell(48.85, 2.45, 12))} < expected
    assert set(out.index.tolist()) == expected and (out["road"] == 1).all()


def test_road_counts_distinct_roads_not_parts():
    """A MultiLineString is one road: its parts crossing one cell count 1 there; two roads there count 2."""
    east = [(2.35, 48.85), (2.45, 48.85)]
    north = [(2.40, 48.80), (2.40, 48.90)]
    a = _geodesic_sample_cells(48.85, 2.35, 48.85, 2.45, 12)
    b = _geodesic_sample_cells(48.80, 2.40, 48.90, 2.40, 12)
    assert a & b  # the two parts cross a common cell
    multi = gpd.GeoDataFrame(geometry=[shapely.MultiLineString([east, north])], crs=4326)
    out = count_features(roads=multi)
    assert set(out.index.tolist()) == a | b and (out["road"] == 1).all()
    assert out.attrs["report"]["n_roads_counted"] == 1
    two = gpd.GeoDataFrame(geometry=[shapely.MultiLineString([east, north]), shapely.LineString(east)], crs=4326)
    out = count_features(roads=two)
    assert out["road"].to_dict() == {c: 1 + (c in a) for c in a | b}  # the plain line adds 1 along its cells
    _assert_road_channel(out, two.geometry.values)


def test_accessor_and_combine():
    pois = _pois([2.35, 2.36, 13.4], [48.85, 48.86, 52.5], ["cafe", "bar", "cafe"])
    pd.testing.assert_frame_equal(pois.s2vec.count_features(), count_features(pois))
    assert geos2vec.count_features is count_features
    parts = [count_features(pois.iloc[:2]), count_features(pois.iloc[1:])]
    both = combine_counts(parts)
    whole = count_features(pd.concat([pois.iloc[:2], pois.iloc[1:]]))
    pd.testing.assert_frame_equal(both, whole, check_like=False)


def test_blank_categories_with_a_key_column_are_reported_not_fatal():
    """A blank value next to a key is a missing category (reported), not a malformed tag that aborts the count."""
    lng, lat = [2.35, 2.36, 2.37, 2.38, 2.39, 2.40], [48.85] * 6
    pois = _pois(lng, lat, ["restaurant", "", "  ", None, "cafe", "amenity="],
                 osm_key=["amenity", "amenity", "amenity", "amenity", "amenity", None])
    with pytest.warns(UserWarning, match="4 POIs with a missing/blank category"):
        out = count_features(pois)
    rep = out.attrs["report"]
    assert rep["n_missing_category"] == 4 and rep["n_pois_counted"] == 2 and rep["dropped_categories"] == {}
    assert out["restaurant"].sum() == 1 and out["cafe"].sum() == 1 and out.to_numpy().sum() == 2
    # a POI without a category still marks its cell as observed
    assert out.index.tolist() == sorted(set(latlng_to_cell(np.array(lat), np.array(lng), 12).tolist()))
    # a blank key is no key: the bare value counts (as with a missing key)
    keys = _pois(lng[:3], lat[:3], ["cafe", "bank", "restaurant"], osm_key=["", " ", "amenity"])
    out = count_features(keys)
    assert out[["cafe", "bank", "restaurant"]].sum().tolist() == [1, 1, 1]
    assert out.attrs["report"]["n_missing_category"] == 0


def test_bad_input_raises_geos2vec_errors():
    from geos2vec.errors import InvalidInputError, InvalidTypeError

    pois = _pois([2.35, 2.36], [48.85, 48.86], ["cafe", "bar"])
    cases = [
        (lambda: count_features(), InvalidInputError, "needs pois and/or roads"),
        (lambda: count_features(pois, errors="ignore"), InvalidInputError, "errors must be"),
        (lambda: count_features(pois.set_crs(None, allow_override=True)), InvalidInputError, "no CRS"),
        (lambda: count_features(_pois([48.85], [120.0], ["cafe"])), InvalidInputError, "outside lat"),
        (lambda: count_features(pois.geometry), InvalidTypeError, "GeoDataFrame"),
        (lambda: count_features(roads=pois), InvalidInputError, "LineStrings"),
        (lambda: count_features(pois, category_column="nope"), InvalidInputError, "not a column"),
        (lambda: count_features(pois, extra={"fclass": "mean"}), InvalidTypeError, "must be numeric"),
        (lambda: count_features(pd.DataFrame({"fclass": ["cafe"]})), InvalidInputError, "longitude/latitude"),
        (lambda: count_features(pois, ontology="v9"), InvalidInputError, "unknown ontology"),
        (lambda: combine_counts([]), InvalidInputError, "at least one table"),
    ]
    for call, cls, match in cases:
        with pytest.raises(cls, match=match):
            call()


def test_duplicate_columns_are_named():
    from geos2vec.errors import InvalidInputError

    pois = _pois([2.35, 2.36], [48.85, 48.86], ["cafe", "bar"], k=[1, 2])
    dup = pois.copy()
    dup.columns = ["fclass", "geometry", "fclass"]
    with pytest.raises(InvalidInputError, match=r"pois has duplicate column names \['fclass'\]"):
        count_features(dup)
    roads = gpd.GeoDataFrame({"highway": ["primary"], "h2": ["primary"]}, crs=4326,
                             geometry=[shapely.LineString([(2.35, 48.85), (2.4, 48.85)])])
    roads.columns = ["highway", "highway", "geometry"]
    with pytest.raises(InvalidInputError, match=r"roads has duplicate column names \['highway'\]"):
        count_features(pois, roads)
    table = count_features(pois)
    twice = pd.concat([table, table[["cafe"]]], axis=1)
    with pytest.raises(InvalidInputError, match=r"tables\[0\] has duplicate column names \['cafe'\]"):
        combine_counts([twice, twice])


def test_nan_points_are_missing_geometries_like_nan_lon_lat():
    """POINT (NaN NaN), as points_from_xy makes of a missing lon/lat: raise, or skipped with errors='coerce'."""
    from geos2vec.errors import InvalidInputError

    lng, lat = [2.35, np.nan, 2.37], [48.85, np.nan, 48.87]
    pois = _pois(lng, lat, ["cafe", "bar", "bank"])
    assert pois.geometry.iloc[1].wkt in ("POINT (NaN NaN)", "POINT EMPTY")  # GEOS < 3.12 writes it empty
    with pytest.raises(InvalidInputError, match=r"1 missing or empty geometries at index \[1\]"):
        count_features(pois)
    with pytest.warns(UserWarning, match="1 POIs without geometry skipped"):
        out = count_features(pois, errors="coerce")
    plain = pd.DataFrame({"lon": lng, "lat": lat, "fclass": ["cafe", "bar", "bank"]})
    with pytest.warns(UserWarning, match="1 POIs without geometry skipped"):
        ref = count_features(plain, errors="coerce")
    pd.testing.assert_frame_equal(out, ref)
    assert out.attrs["report"]["coerced_pois"] == 1 and out["bar"].sum() == 0
    assert out.loc[latlng_to_cell(48.85, 2.35, 12), "cafe"] == 1
    assert out.loc[latlng_to_cell(48.87, 2.37, 12), "bank"] == 1


def test_explicit_road_column_filters_by_the_ontology_road_classes():
    """road_column="kind": only lines whose kind is a road class of the ontology count (per cell: distinct lines
    crossing it, against a pandas reference over the cells of each line), the others are reported; a column that
    is not there, or an ontology without road classes, is a clear error."""
    from geos2vec.errors import InvalidInputError
    from geos2vec.ontology import Ontology

    onto = load_ontology()
    kinds = ["residential", "footway", "proposed", "primary", None, "corridor", "residential"]
    lines = [shapely.LineString([(-118.30 + 0.01 * k, 34.05), (-118.30 + 0.01 * k, 34.06)]) for k in range(7)]
    roads = gpd.GeoDataFrame({"kind": kinds, "highway": ["primary"] * 7}, geometry=lines, crs=4326)
    pois = gpd.GeoDataFrame({"fclass": ["cafe"]}, geometry=[shapely.Point(-118.3, 34.05)], crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = count_features(pois, roads, road_column="kind")
        every = count_features(pois, roads, road_column=None)
    keep = [k in onto.road_values for k in kinds]
    assert keep == [True, True, False, True, False, False, True]
    report = out.attrs["report"]
    assert report["n_roads_counted"] == sum(keep) and report["road_column"] == "kind"
    assert report["dropped_roads"] == {"proposed": 1, "<missing>": 1, "corridor": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = count_features(roads=roads[keep], road_column=None)["road"]
    pd.testing.assert_series_equal(out["road"][out["road"] > 0], ref[ref > 0], check_names=False)
    assert every["road"].sum() > out["road"].sum()  # None counts every line
    with pytest.raises(InvalidInputError, match="road_column 'nope' is not a column of roads"):
        count_features(pois, roads, road_column="nope")
    custom = Ontology.from_channels(["cafe"])
    with pytest.raises(InvalidInputError, match="needs an ontology with road classes"):
        count_features(pois, roads, ontology=custom, road_column="kind")
