"""``coverage="infer"`` on input across the antimeridian (Fiji, the Aleutians): the convex hull of longitudes
179.9 and -179.9 spanned the globe's whole width, so every empty cell around the world at those latitudes
counted as known-empty. It is now the narrow area the input lies in, split at ±180."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geos2vec import latlng_to_cell
from geos2vec.coverage import covered_mask, infer_coverage
from geos2vec.features import count_features


def _reference_contains(lon, lat, qlon, qlat):
    """Containment in the hull taken in [0, 360) longitudes (shapely, independently of geos2vec)."""
    shift = lambda x: np.where(np.asarray(x) < 0, np.asarray(x) + 360.0, x)  # noqa: E731
    hull = shapely.convex_hull(shapely.multipoints(np.column_stack([shift(lon), lat])))
    return shapely.contains_xy(hull, shift(qlon), qlat) | shapely.touches(hull, shapely.points(shift(qlon), qlat))


def test_fiji_hull_is_narrow_not_the_globe():
    rng = np.random.default_rng(1)
    lon = np.concatenate([rng.uniform(177.5, 180, 60), rng.uniform(-180, -178.5, 40)])
    lat = rng.uniform(-19, -16, 100)
    hull = infer_coverage(pd.DataFrame({"lon": lon, "lat": lat}))
    assert hull.area < 4.0 * 3.0           # at most the 4 x 3 degree box the points lie in (was ~ 360 x 3)
    assert not shapely.contains_xy(hull, 0.0, -17.5) and not shapely.contains_xy(hull, 90.0, -17.5)
    q = np.column_stack([rng.uniform(-180, 180, 4000), rng.uniform(-20, -15, 4000)])
    q = np.concatenate([q, np.column_stack([rng.uniform(177, 180, 2000), rng.uniform(-20, -15, 2000)]),
                        np.column_stack([rng.uniform(-180, -178, 2000), rng.uniform(-20, -15, 2000)])])
    got = shapely.contains_xy(hull, q[:, 0], q[:, 1])
    ref = _reference_contains(lon, lat, q[:, 0], q[:, 1])
    assert int(ref.sum()) > 500
    np.testing.assert_array_equal(got, ref)


def test_count_features_infer_leaves_the_far_side_of_the_globe_unknown():
    rng = np.random.default_rng(2)
    lon = np.concatenate([rng.uniform(179.0, 179.99, 30), rng.uniform(-179.99, -179.0, 30)])
    lat = rng.uniform(51.0, 52.0, 60)  # the Aleutians
    pois = pd.DataFrame({"lon": lon, "lat": lat, "fclass": "restaurant"})
    table = count_features(pois, coverage="infer", level=12)
    far = latlng_to_cell(np.array([51.5, 51.5]), np.array([0.0, -120.0]), 12)     # Europe's and America's 51.5 N
    near = latlng_to_cell(np.array([51.5]), np.array([179.5]), 12)
    covered, _ = covered_mask(np.concatenate([far, near]), table)
    assert covered.tolist() == [False, False, True]


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.floats(177.5, 179.9), st.floats(-179.0, 179.0)), st.floats(-60, 60), st.floats(0.05, 3.0),
       st.integers(0, 2**32 - 1))
def test_hull_matches_the_reference_wherever_the_input_lies(centre, lat0, width, seed):
    """Away from the antimeridian the hull is the plain convex hull; across it, the shifted one."""
    rng = np.random.default_rng(seed)
    lon = centre + rng.uniform(-width, width, 30)
    lon = (lon + 180.0) % 360.0 - 180.0                   # wrap: some inputs now straddle ±180
    lat = lat0 + rng.uniform(-1, 1, 30)
    hull = infer_coverage(pd.DataFrame({"lon": lon, "lat": lat}), check_isolated=False)
    q = np.column_stack([(centre + rng.uniform(-2 * width, 2 * width, 300) + 180) % 360 - 180,
                         lat0 + rng.uniform(-1.5, 1.5, 300)])
    got = shapely.contains_xy(hull, q[:, 0], q[:, 1])
    if np.ptp(lon) > 180:                                  # straddles: the shifted hull is the reference
        ref = _reference_contains(lon, lat, q[:, 0], q[:, 1])
    else:
        plain = shapely.convex_hull(shapely.multipoints(np.column_stack([lon, lat])))
        ref = shapely.contains_xy(plain, q[:, 0], q[:, 1])
    # points on the hull's boundary (or the ±180 cut) may go either way; none of 300 random ones should
    assert (got != ref).sum() <= 1
    assert hull.area <= (2 * width + 1e-6) * 2.0 + 1e-9


def test_dask_infer_equals_in_memory_across_the_antimeridian():
    """Each partition sent only its plain hull's corners; the hull across ±180 has others, so the dask coverage
    came out 4.06 square degrees against 5.83 in memory."""
    dask_geopandas = pytest.importorskip("dask_geopandas")
    import geopandas as gpd

    from geos2vec.coverage import get_coverage
    from geos2vec.partitioned import count_features_dask

    rng = np.random.default_rng(0)
    lon = np.concatenate([rng.uniform(178.5, 179.99, 400), rng.uniform(-179.99, -178.5, 400)])
    points = gpd.points_from_xy(lon, rng.uniform(-18, -16, 800))
    pois = gpd.GeoDataFrame({"fclass": ["restaurant"] * 800}, geometry=points, crs=4326)
    pois = pois.iloc[rng.permutation(800)].reset_index(drop=True)
    ref = get_coverage(count_features(pois, coverage="infer"))[0]
    got = get_coverage(count_features_dask(dask_geopandas.from_geopandas(pois, npartitions=3), coverage="infer"))[0]
    assert ref.geom_type == "MultiPolygon" and ref.area > 5
    assert got.symmetric_difference(ref).area < 1e-9 * ref.area


def test_isolated_points_stretching_a_hull_across_the_antimeridian_are_warned_of():
    import warnings

    from geos2vec.errors import CoverageWarning

    rng = np.random.default_rng(1)
    lon = np.concatenate([rng.uniform(179.5, 179.99, 300), rng.uniform(-179.99, -179.5, 300), [179.7, -179.7, 179.9]])
    lat = np.concatenate([rng.uniform(-17.2, -16.8, 600), [-40, -40.5, -41]])    # three mis-geocoded far south
    for shift in (0.0, 180.0):                     # across ±180, and the same shape around longitude 0 (control)
        x = (lon + shift + 180.0) % 360.0 - 180.0
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            infer_coverage(pd.DataFrame({"lon": x, "lat": lat}))
        assert [type(m.message) for m in w if "isolated" in str(m.message)] == [CoverageWarning], shift
        with warnings.catch_warnings(record=True) as w:                    # without the three: quiet
            warnings.simplefilter("always")
            infer_coverage(pd.DataFrame({"lon": x[:600], "lat": lat[:600]}))
        assert not [m for m in w if "isolated" in str(m.message)]


def test_a_hole_far_from_its_exteriors_vertex_mean_stays_a_hole():
    """A projected polygon over 180 degrees wide, its vertices crowded at one end: its hole was moved by 360
    degrees next to the exterior's vertex mean, outside the exterior, and the hole's area counted as covered."""
    import geopandas as gpd
    import pyproj

    from geos2vec.coverage import as_coverage

    to_polar = pyproj.Transformer.from_crs(4326, 3576, always_xy=True)  # North Pole LAEA (Russia)
    lon = np.concatenate([np.linspace(0, 10, 5000), np.linspace(10, 250, 49), np.linspace(250, 0, 50)])
    lat = np.concatenate([np.full(5049, 70.0), np.full(50, 60.0)])  # a band 60-70 N from 0 to 250 E
    ext = np.column_stack(to_polar.transform(lon, lat))
    hole = np.column_stack(to_polar.transform([230, 240, 240, 230, 230.0], [63, 63, 67, 67, 63.0]))
    geom = as_coverage(gpd.GeoSeries([shapely.Polygon(ext, [hole])], crs=3576))
    inside = shapely.contains_xy(geom, [-125.0, -160.0, 5.0, 120.0, 100.0], [65.0, 65.0, 65.0, 65.0, 75.0])
    assert inside.tolist() == [False, True, True, True, False]  # the hole (235 E = -125), the band, north of it
    assert geom.area == pytest.approx(shapely.box(0, 60, 250, 70).area - 10 * 4, rel=0.02)
