"""Coverage: where a feature source has data (missing is not empty)."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geos2vec import cells as C
from geos2vec.coverage import as_coverage, covered_mask, get_coverage, has_coverage, infer_coverage
from geos2vec.errors import CoverageError, CoverageWarning, Geos2VecError
from geos2vec.features import combine_counts, count_features
from geos2vec.raster import augment, rasterize, windows

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BOX = (-74.02, 40.70, -73.96, 40.76)


def _pois(n=300, seed=0, box=BOX, category="restaurant"):
    rng = np.random.default_rng(seed)
    x = rng.uniform(box[0], box[2], n)
    y = rng.uniform(box[1], box[3], n)
    return gpd.GeoDataFrame({"fclass": [category] * n}, geometry=gpd.points_from_xy(x, y), crs=4326)


def _roads(box=BOX):
    x0, y0, x1, y1 = box
    mid = (y0 + y1) / 2
    lines = [shapely.LineString([(x0, mid), (x0 + (x1 - x0) / 3, mid)])]
    return gpd.GeoDataFrame({"highway": ["primary"]}, geometry=lines, crs=4326)


def _reference_covered(cell_ids, geom, table):
    """By hand: the cell centre (s2sphere-validated cell_to_latlng) in the polygon, or a row in the table."""
    lat, lng = C.cell_to_latlng(cell_ids.ravel())
    inside = np.array([geom.contains(shapely.Point(a, b)) for a, b in zip(lng, lat)])
    return (inside | np.isin(cell_ids.ravel(), table.index.to_numpy(np.uint64))).reshape(cell_ids.shape)


def test_box_coverage_marks_covered_empty_pixels_and_unknown_ones():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(_pois(8), _roads(), coverage=BOX)
    assert has_coverage(table) and get_coverage(table)[1] == {}
    da = rasterize(table)
    cov = da["covered"].values
    ref = _reference_covered(da["cell_id"].values, shapely.box(*BOX), table)
    np.testing.assert_array_equal(cov, ref)
    obs = da["observed"].values
    assert (cov & ~obs).any()  # known empty: inside the box without a POI
    assert (~cov).any()  # the rest of the level-8 image: unknown
    assert not (obs & ~cov).any()
    assert "available" not in da.coords  # every channel has the same coverage


def test_venue_source_without_roads_records_road_as_missing_and_combines_by_channel():
    other = (-73.90, 40.70, -73.86, 40.74)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        venues = count_features(_pois(200, 1), coverage=BOX)  # no roads: like Who's On First
        osm = count_features(_pois(50, 2, other), _roads(other), coverage=other)
    geom, channels = get_coverage(venues)
    assert set(channels) == {"road"} and channels["road"].is_empty
    both = combine_counts([venues, osm])
    geom, channels = get_coverage(both)
    assert geom.equals(shapely.union_all([shapely.box(*BOX), shapely.box(*other)]))
    # roads only where the OSM source has them: its box, and its rows whose centre lies outside the box (a POI in
    # the box, in a cell whose centre is not), where the OSM part itself records road = 0 as known
    lat, lng = C.cell_to_latlng(osm.index.to_numpy())
    known_zero = ~shapely.contains_xy(shapely.box(*other), lng, lat) & (osm["road"].to_numpy() == 0)
    expected = shapely.union_all([shapely.box(*other), *C.cell_polygons(osm.index.to_numpy()[known_zero]).values])
    assert channels["road"].symmetric_difference(expected).area < 1e-12
    da = rasterize(both)
    avail = da["available"]
    road = avail.sel(feature="road").values
    poi = avail.sel(feature="restaurant").values
    np.testing.assert_array_equal(poi, da["covered"].values)
    lat, lng = C.cell_to_latlng(da["cell_id"].values.ravel())
    in_other = shapely.contains_xy(shapely.box(*other), lng, lat).reshape(road.shape)
    osm_known = np.isin(da["cell_id"].values, osm.index.to_numpy()[known_zero])
    np.testing.assert_array_equal(road, in_other | osm_known | (da.sel(feature="road").values > 0))
    assert (da["covered"].values & ~road).any()


def test_unknown_coverage_stays_unknown_and_warns_when_mixed():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = count_features(_pois(50, 3))
        known = count_features(_pois(50, 4), coverage=BOX)
    assert not has_coverage(plain) and "covered" not in rasterize(plain).coords
    with pytest.warns(CoverageWarning, match="coverage is unknown"):
        mixed = combine_counts([plain, known])
    assert not has_coverage(mixed)
    cov, avail = covered_mask(np.array([C.latlng_to_cell(0.0, 0.0, 12)]), plain)
    assert cov.all() and avail is None


def test_infer_is_the_convex_hull_of_the_input():
    pois = _pois(100, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(pois, coverage="infer")
    hull = shapely.convex_hull(shapely.MultiPoint(shapely.get_coordinates(pois.geometry.values)))
    assert get_coverage(table)[0].equals(hull)
    with pytest.raises(CoverageError, match="at least 3"):
        infer_coverage(_pois(2, 6))


def test_projected_polygon_coverage_is_transformed():
    poly = gpd.GeoSeries([shapely.box(*BOX)], crs=4326).to_crs(32618)
    geom = as_coverage(poly)
    np.testing.assert_allclose(geom.bounds, BOX, atol=1e-6)
    assert as_coverage(shapely.box(*BOX).wkt).equals(shapely.box(*BOX))


@pytest.mark.parametrize("bad, match", [
    ((1, 2, 0, 3), "min < max"),
    ((0, 0, 1, 95), "latitudes outside"),
    ((34.0, -118.5, 34.2, -118.1), r"latitudes outside \[-90, 90\] \(latitude and longitude swapped\?\)"),
    ((-400, 0, 1, 5), "longitudes outside"),  # (-190, 0, 1, 5) is a box across ±180 since 2026-11-29
    (shapely.Point(0, 0), "polygonal"),
    (gpd.GeoSeries([shapely.box(0, 0, 1, 1)]), "no CRS"),
    ("not wkt at all", "not WKT"),
    (42, "coverage must be"),
    (shapely.box(583000, 4507000, 600000, 4520000), r"bounds \(583000.0, 4507000.0, 600000.0, 4520000.0\) are not"),
    ("POLYGON ((583000 4507000, 600000 4507000, 600000 4520000, 583000 4507000))", "not longitude/latitude"),
    (shapely.box(-74.1, 40.6, -73.8, 95.0), r"latitude in \[-90, 90\]"),  # one corner off the globe
    (shapely.box(170.0, 10.0, 550.0, 20.0), r"longitude in \[-180, 180\]"),  # box(170, .., 185, ..): across ±180
])
def test_bad_coverage_raises_a_clear_error(bad, match):
    with pytest.raises(CoverageError, match=match) as info:
        as_coverage(bad)
    assert isinstance(info.value, ValueError) and isinstance(info.value, Geos2VecError)


def test_missing_pbf_is_file_not_found():
    with pytest.raises(FileNotFoundError, match="no .osm.pbf file at /nonexistent/x.osm.pbf"):
        as_coverage("/nonexistent/x.osm.pbf")


@pytest.mark.skipif(not (DATA / "osm" / "andorra-latest.osm.pbf").exists(), reason="shared data not present")
def test_pbf_header_box_holds_every_feature():
    pytest.importorskip("osmium")
    path = DATA / "osm" / "andorra-latest.osm.pbf"
    geom = as_coverage(path)
    from geos2vec.io import read_osm

    osm = read_osm(path)
    xy = shapely.get_coordinates(np.asarray(osm.pois.geometry.values))
    assert shapely.contains_xy(geom.buffer(1e-7), xy[:, 0], xy[:, 1]).mean() > 0.999
    assert 1.3 < geom.centroid.x < 1.9 and 42.3 < geom.centroid.y < 42.8  # Andorra


def test_coverage_survives_parquet_windows_and_augment(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        venues = count_features(_pois(300, 7), coverage=BOX)
        osm = count_features(_pois(50, 8, (-73.99, 40.72, -73.97, 40.74)), _roads((-73.99, 40.72, -73.97, 40.74)),
                             coverage=(-73.99, 40.72, -73.97, 40.74))
    table = combine_counts([venues, osm])
    table.to_parquet(tmp_path / "t.parquet")
    again = pd.read_parquet(tmp_path / "t.parquet")
    assert again.attrs["coverage"] == table.attrs["coverage"]
    da = rasterize(again)
    win = windows(da, size=16, stride=8)
    ids = win["cell_id"].values
    cov, avail = covered_mask(ids, table, list(da["feature"].values))
    np.testing.assert_array_equal(win["covered"].values, cov)
    np.testing.assert_array_equal(win["available"].values, avail)
    aug = augment(win.isel(window=[0]))
    for t in range(8):  # coordinates move with the pixels
        sub = aug.isel(window=t)
        cov_t, _ = covered_mask(sub["cell_id"].values, table)
        np.testing.assert_array_equal(sub["covered"].values, cov_t)


@settings(max_examples=25, deadline=None)
@given(st.floats(-0.05, 0.0), st.floats(-0.05, 0.0), st.floats(0.005, 0.08), st.floats(0.005, 0.08),
       st.integers(0, 10_000))
def test_rasterized_coverage_is_centre_in_polygon_or_observed(dx, dy, w, h, seed):
    box = (-74.0 + dx, 40.72 + dy, -74.0 + dx + w, 40.72 + dy + h)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(_pois(20, seed, BOX), coverage=box)  # POIs partly outside the box
    da = rasterize(table)
    np.testing.assert_array_equal(da["covered"].values,
                                  _reference_covered(da["cell_id"].values, shapely.box(*box), table))


def test_empty_roads_frame_means_zero_roads_not_missing():
    """A source that has roads but none in the area (an OSM extract cut to a small area): road is 0, available."""
    import warnings

    import geopandas as gpd
    import shapely

    from geos2vec import count_features
    from geos2vec.coverage import get_coverage

    pois = gpd.GeoDataFrame({"fclass": ["cafe", "school"]}, geometry=gpd.points_from_xy([9.5, 9.55], [47.1, 47.15]),
                            crs=4326)
    roads = gpd.GeoDataFrame({"highway": []}, geometry=gpd.GeoSeries([], crs=4326))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with_roads = count_features(pois, roads, coverage=shapely.box(9.47, 47.05, 9.64, 47.27))
        without = count_features(pois, None, coverage=shapely.box(9.47, 47.05, 9.64, 47.27))
    assert get_coverage(with_roads)[1] == {} and int(with_roads["road"].sum()) == 0
    assert "road" in str(get_coverage(without)[1])      # no roads given at all: the channel is missing


def test_a_source_that_declares_its_categories_records_the_others_as_missing():
    """``pois.attrs["source_tags"]`` (read_wof sets it): POI channels no declared tag reaches are missing, not zero."""
    from geos2vec.ontology import load_ontology

    onto = load_ontology()
    pois = _pois(100, 3)
    pois.attrs["source_tags"] = ["amenity=restaurant", "amenity=cafe", "shop=bakery"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(pois, _roads(), coverage=BOX)
        plain = count_features(_pois(100, 3), _roads(), coverage=BOX)
    missing = get_coverage(table)[1]
    assert set(missing) == set(onto.channels) - {"restaurant", "cafe", "bakery"}  # roads were given
    assert all(g.is_empty for g in missing.values())
    assert get_coverage(plain)[1] == {}  # no declaration: every channel counts as recorded
    da = rasterize(table)
    np.testing.assert_array_equal(da["available"].sel(feature="cafe").values, da["covered"].values)
    assert not da["available"].sel(feature="pub").values.any()
    pd.testing.assert_frame_equal(table, plain)  # the counts themselves do not change
    pois.attrs["source_tags"] = "amenity=cafe"
    with pytest.raises(TypeError, match="source_tags"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        count_features(pois, coverage=BOX)


def test_declared_categories_survive_dask_partitions():
    dask_geopandas = pytest.importorskip("dask_geopandas")
    pois = _pois(100, 4)
    pois.attrs["source_tags"] = ["amenity=restaurant"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = count_features(pois, coverage=BOX)
        parts = count_features(dask_geopandas.from_geopandas(pois, npartitions=3), coverage=BOX)
    assert get_coverage(parts)[1].keys() == get_coverage(whole)[1].keys()
    assert "restaurant" not in get_coverage(whole)[1] and "cafe" in get_coverage(whole)[1]


def test_coverage_that_misses_most_of_the_input_warns():
    """A (lat, lon) box passes the degree check but holds none of the POIs: CoverageWarning, naming the count."""
    pois = _pois(10, 7)
    swapped = (BOX[1], BOX[0], BOX[3], BOX[2])
    with pytest.warns(CoverageWarning, match=r"10 of 10 input coordinates .* outside the coverage"):
        count_features(pois, coverage=swapped)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right box: no warning
        count_features(pois, _roads(), coverage=BOX)
    # 6 of 10 POIs + the road's 2 vertices inside: 4 of 12 outside, no warning; 7 outside of 12: a warning
    left = (BOX[0], BOX[1], (BOX[0] + BOX[2]) / 2, BOX[3])
    xs = np.r_[np.full(6, BOX[0] + 0.001), np.full(4, BOX[2] - 0.001)]
    split = gpd.GeoDataFrame({"fclass": ["cafe"] * 10}, geometry=gpd.points_from_xy(xs, np.full(10, 40.73)), crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        count_features(split, _roads(), coverage=left)
    xs[3:6] = BOX[2] - 0.001
    split = split.set_geometry(gpd.points_from_xy(xs, np.full(10, 40.73), crs=4326))
    with pytest.warns(CoverageWarning, match="7 of 12 input coordinates"):
        count_features(split, _roads(), coverage=left)


def test_infer_reads_the_coordinate_columns_count_features_reads():
    """A plain DataFrame with lng/lat (or x/y, longitude/latitude) columns: its points make the hull."""
    xy = np.array([[9.50, 47.10], [9.60, 47.10], [9.55, 47.20], [9.52, 47.15]])
    hull = shapely.convex_hull(shapely.multipoints(xy))
    for lon, lat in (("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("x", "y")):
        df = pd.DataFrame({lon: xy[:, 0], lat: xy[:, 1], "fclass": ["cafe", "bank", "cafe", "bank"]})
        assert infer_coverage(df).equals(hull)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            table = count_features(df, coverage="infer")
        assert get_coverage(table)[0].equals(hull)
    # with roads as well, the POIs still count (the hull grows to the road's far end)
    df = pd.DataFrame({"lng": xy[:, 0], "lat": xy[:, 1]})
    road = gpd.GeoSeries([shapely.LineString([(9.55, 47.15), (9.70, 47.15)])], crs=4326)
    expected = shapely.convex_hull(shapely.multipoints(np.vstack([xy, [[9.55, 47.15], [9.70, 47.15]]])))
    assert infer_coverage(df, road).equals(expected)


def test_inferred_coverage_of_collinear_input_at_the_antimeridian_stays_in_degrees():
    import pandas as pd

    from geos2vec.features import count_features

    frame = pd.DataFrame({"lon": [170.0, 175.0, 180.0], "lat": [-17.0] * 3, "fclass": "restaurant"})
    table = count_features(frame, coverage="infer")   # the buffered line used to reach lon 180.000001 and raise
    geom = shapely.from_wkt(table.attrs["coverage"]["geometry"])
    assert geom.bounds[2] <= 180.0 and geom.covers(shapely.Point(175.0, -17.0))
