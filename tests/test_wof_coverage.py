"""venue_coverage / isolated_venues: each state's venue hull without its mis-geocoded venues."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geos2vec.errors import CoverageError, InvalidInputError, InvalidTypeError
from geos2vec.io import isolated_venues, read_wof, venue_coverage
from geos2vec.io.wof_coverage import NEIGHBOURHOOD_LEVEL, _neighbourhood_counts

GEOD = Geod(ellps="WGS84")
# official total areas (km², land and water; US Census Bureau)
STATE_KM2 = {"de": 6446, "ky": 104656, "ri": 4001, "nd": 183108}


def _km2(geom):
    return abs(GEOD.geometry_area_perimeter(geom)[0]) / 1e6


def _s2_counts(lnglat):
    """Reference: venues in each venue's level-8 cell and its neighbours, by s2sphere (as a set of cells)."""
    cells = [s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(NEIGHBOURHOOD_LEVEL)
             for lng, lat in lnglat]
    ids = pd.Series([c.id() for c in cells]).value_counts()
    out = []
    for c in cells:
        around = {c.id()} | {n.id() for n in c.get_all_neighbors(NEIGHBOURHOOD_LEVEL)}
        out.append(int(sum(ids.get(i, 0) for i in around)))
    return np.array(out)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0)), min_size=1, max_size=40),
       st.sampled_from([(-75.5, 39.2), (45.0, 35.26439), (-135.0, 35.26439), (179.8, 0.0), (0.0, 89.5)]))
def test_neighbourhood_counts_match_s2sphere(offsets, centre):
    # near a city, a cube corner (45°E, 35.264°N), the antimeridian and the pole
    lnglat = np.array([(centre[0] + dx * 0.6, np.clip(centre[1] + dy * 0.6, -89.9, 89.9)) for dx, dy in offsets])
    lnglat[:, 0] = (lnglat[:, 0] + 180) % 360 - 180
    np.testing.assert_array_equal(_neighbourhood_counts(lnglat), _s2_counts(lnglat))


def test_outlier_left_out_of_the_hull():
    rng = np.random.default_rng(0)
    cluster = np.column_stack([rng.uniform(-75.7, -75.3, 200), rng.uniform(39.0, 39.6, 200)])
    far = np.array([[-118.2, 34.05], [-74.0, 40.7]])
    venues = pd.DataFrame(np.vstack([cluster[:100], far[:1], cluster[100:], far[1:]]), columns=["lon", "lat"])
    flags = isolated_venues(venues, by=None)
    assert flags.tolist() == [False] * 100 + [True] + [False] * 100 + [True]
    hull = venue_coverage(venues, by=None)
    assert hull.equals(shapely.convex_hull(shapely.multipoints(cluster)))
    assert venue_coverage(venues, by=None, min_neighbours=0).equals(
        shapely.convex_hull(shapely.multipoints(venues.to_numpy())))
    # row order and index: flags follow the rows
    perm = np.random.default_rng(1).permutation(len(venues))
    shuffled = venues.iloc[perm].set_axis([f"v{i}" for i in perm])
    np.testing.assert_array_equal(isolated_venues(shuffled, by=None), flags[perm])


def test_groups_are_separate_and_crs_is_read():
    rng = np.random.default_rng(1)
    a = np.column_stack([rng.uniform(-75.7, -75.3, 50), rng.uniform(39.0, 39.6, 50)])
    b = np.column_stack([rng.uniform(-72.9, -72.5, 50), rng.uniform(44.0, 44.5, 50)])
    pts = np.vstack([a, b, [[-72.7, 44.2]]])  # the last venue lies among b's but belongs to a
    state = ["de"] * 50 + ["vt"] * 50 + ["de"]
    frame = gpd.GeoDataFrame({"state": state}, geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]), crs=4326)
    assert np.flatnonzero(isolated_venues(frame)).tolist() == [100]
    assert not isolated_venues(frame, by=None).any()
    merc = isolated_venues(frame.to_crs(3857))
    assert np.flatnonzero(merc).tolist() == [100]
    cov = venue_coverage(frame)
    expected = shapely.union_all([shapely.convex_hull(shapely.multipoints(p)) for p in (a, b)])
    assert cov.equals(expected)


def test_missing_coordinates_are_not_isolated_and_not_in_the_hull():
    rng = np.random.default_rng(2)
    pts = np.column_stack([rng.uniform(-75.7, -75.3, 30), rng.uniform(39.0, 39.6, 30)])
    frame = gpd.GeoDataFrame(geometry=list(shapely.points(pts)) + [None, shapely.Point()], crs=4326)
    assert not isolated_venues(frame, by=None).any()
    assert venue_coverage(frame, by=None).equals(shapely.convex_hull(shapely.multipoints(pts)))


def test_bad_input_is_refused():
    venues = pd.DataFrame({"lon": [-75.5] * 6 + [-118.2], "lat": [39.2] * 6 + [34.0], "state": ["de"] * 7})
    for bad in (-1, 1.5, True, "5"):
        with pytest.raises(InvalidInputError, match="min_neighbours"):
            isolated_venues(venues, min_neighbours=bad)
    with pytest.raises(InvalidInputError, match="no column 'region'"):
        venue_coverage(venues, by="region")
    with pytest.raises(InvalidInputError, match="'lon' and 'lat'"):
        isolated_venues(pd.DataFrame({"x": [1.0]}), by=None)
    with pytest.raises(InvalidTypeError, match="GeoDataFrame"):
        isolated_venues(np.zeros((3, 2)))
    with pytest.raises(CoverageError, match="group 'de' has 0 venue"):
        venue_coverage(venues, min_neighbours=6)  # nobody has 6 others around
    assert isinstance(CoverageError("x"), ValueError)


@pytest.mark.parametrize("state", sorted(STATE_KM2))
def test_state_hulls_are_about_the_state(shared_data, state):
    venues = read_wof(shared_data / "wof", states=[state], min_stack=50)
    every = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(venues.geometry.values)))
    cov = venue_coverage(venues)
    # the hull of every venue spans other states (mis-geocoded venues); without the isolated ones it is about
    # the state (a convex hull of a concave state is somewhat larger)
    assert _km2(every) > 3.5 * STATE_KM2[state]
    assert 0.7 * STATE_KM2[state] < _km2(cov) < 1.5 * STATE_KM2[state]
    # each isolated venue is far from every other venue of its state (haversine, brute force)
    xy = np.radians(shapely.get_coordinates(venues.geometry.values))
    flags = isolated_venues(venues)
    assert 0 < flags.sum() < 0.001 * len(venues)
    for lng, lat in xy[flags]:
        h = (np.sin((xy[:, 1] - lat) / 2) ** 2
             + np.cos(lat) * np.cos(xy[:, 1]) * np.sin((xy[:, 0] - lng) / 2) ** 2)
        d = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
        assert np.sort(d)[5] > 20.0  # fewer than 5 others within 20 km


def test_the_evaluation_tasks_use_the_states_hulls(shared_data):
    from geos2vec.evaluate import load_features

    counts, coverage = load_features("wof:de,ri", shared_data)
    area = _km2(coverage)
    assert 0.7 * (STATE_KM2["de"] + STATE_KM2["ri"]) < area < 1.5 * (STATE_KM2["de"] + STATE_KM2["ri"])
    assert shapely.contains_xy(coverage, [-75.52, -71.41], [39.16, 41.82]).all()  # Dover, Providence
    assert not shapely.contains_xy(coverage, -118.24, 34.05)  # not Los Angeles


def test_infer_warns_when_isolated_coordinates_stretch_the_hull(shared_data):
    import warnings

    import geopandas as gpd

    import geos2vec
    from geos2vec.coverage import infer_coverage
    from geos2vec.errors import CoverageWarning

    venues = read_wof(shared_data / "wof", states=["de"], min_stack=50)
    with pytest.warns(CoverageWarning, match=r"1 isolated coordinates .* stretch the convex hull to \d+\.\d times"):
        geos2vec.count_features(pois=venues, coverage="infer")
    every = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(venues.geometry.values)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)
        assert infer_coverage(venues, check_isolated=False).equals(every)  # the same hull, without the check
        pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")
        roads = gpd.read_parquet(shared_data / "roads" / "los_angeles.parquet")
        infer_coverage(pois, roads)  # a city's POIs and roads: nothing isolated
