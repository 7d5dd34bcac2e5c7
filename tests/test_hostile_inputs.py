"""Inputs that used to give silently wrong results (issue: nothing silently wrong)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geos2vec import cells as C
from geos2vec._cover import cover_lines
from geos2vec._geo import to_wgs84
from geos2vec.embedding import row_cells


def test_antimeridian_line_takes_the_short_way_like_count_features():
    line = shapely.LineString([(179.99, 10), (-179.99, 10)])
    r, c, w = row_cells(gpd.GeoSeries([line], crs=4326), 12)
    _, covered = cover_lines(np.array([line], dtype=object), 12)
    assert sorted(c.tolist()) == sorted(np.unique(covered).tolist())  # 2 cells, not 17,532 round the world
    assert w.sum() == pytest.approx(1.0) and (w > 0.3).all()  # about half each (pieces of 1/8 cell edge)
    lat, lng = C.cell_to_latlng(c)
    assert (np.abs(lng) > 179.9).all()


@settings(max_examples=40, deadline=None)
@given(st.floats(-60, 60), st.floats(0.001, 0.05), st.floats(0.001, 0.05), st.floats(-0.02, 0.02))
def test_lines_across_the_antimeridian_cover_what_count_features_covers(lat, west, east, dlat):
    line = shapely.LineString([(180 - west, lat), (-180 + east, lat + dlat)])
    _, c, w = row_cells(gpd.GeoSeries([line], crs=4326), 12)
    _, covered = cover_lines(np.array([line], dtype=object), 12)
    # every weighted cell is one the geodesic covering crosses (sampling may skip a corner-clipped cell)
    assert set(c.tolist()) <= set(np.unique(covered).tolist())
    assert w.sum() == pytest.approx(1.0)


def test_projected_coordinates_outside_the_crs_domain_raise_instead_of_a_polar_cell():
    g = gpd.GeoSeries([shapely.Point(1000, 1000), shapely.Point(0, 1e12), shapely.Point(5, 5)],
                      index=["ok", "bad", "fine"], crs=3857)
    with pytest.raises(ValueError, match=r"outside the domain of its CRS.*\['bad'\]"):
        to_wgs84(g, "gdf")
    ok = to_wgs84(g.drop("bad"), "gdf")
    np.testing.assert_allclose(shapely.get_coordinates(ok.values)[0], [0.0089831528, 0.0089831528], rtol=1e-8)


def _table(cells, values, dtype):
    import pandas as pd

    return pd.DataFrame({"a": np.asarray(values, dtype=dtype)}, index=pd.Index(np.asarray(cells, np.uint64),
                                                                               name="cell_id"))


def test_combine_counts_keeps_fractions_and_refuses_mixed_levels():
    from geos2vec.features import combine_counts

    c12 = C.latlng_to_cell(np.array([10.0, 10.1]), np.array([10.0, 10.1]), 12)
    parts = [_table(c12, [1, 2], np.int64), _table(c12[:1], [0.5], np.float64)]
    with pytest.raises(ValueError, match="cannot tell whether the float channel"):  # no report: a mean?
        combine_counts(parts)
    out = combine_counts(parts, assume_additive=True)
    assert out["a"].dtype == np.float64 and out.loc[c12[0], "a"] == 1.5 and out.loc[c12[1], "a"] == 2.0
    again = combine_counts([out, out])  # a combined table combines again
    assert again.loc[c12[0], "a"] == 3.0 and again.loc[c12[1], "a"] == 4.0
    c10 = C.cell_to_parent(c12, 10)
    with pytest.raises(ValueError, match=r"one level, got levels \[10, 12\]"):
        combine_counts([_table(c12, [1, 2], np.int64), _table(c10, [1, 2], np.int64)])


def test_osm_key_without_values_keeps_the_bare_category():
    import warnings

    from geos2vec.features import count_features

    pois = gpd.GeoDataFrame({"fclass": ["restaurant", "cafe", "school"], "osm_key": [None, None, "amenity"]},
                            geometry=gpd.points_from_xy([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]), crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may be dropped
        table = count_features(pois)
    assert table.attrs["report"]["n_pois_counted"] == 3
    assert table[["restaurant", "cafe", "school"]].to_numpy().sum() == 3


def test_identifier_or_geometry_as_extra_categories_is_refused():
    from geos2vec.features import MAX_EXTRA_CATEGORIES, count_features

    n = MAX_EXTRA_CATEGORIES + 1
    rng = np.random.default_rng(0)
    pois = gpd.GeoDataFrame({"fclass": ["cafe"] * n, "osm_id": np.arange(n)},
                            geometry=gpd.points_from_xy(rng.uniform(0, 1, n), rng.uniform(0, 1, n)), crs=4326)
    with pytest.raises(ValueError, match="is it an identifier"):
        count_features(pois, extra=["osm_id"])
    with pytest.raises(ValueError, match="geometry column"):
        count_features(pois, extra=["geometry"])


@pytest.mark.parametrize("level, lat0", [(4, 81.9), (8, 89.0), (2, 60.0)])
@pytest.mark.parametrize("sign", [1, -1])
def test_cell_polygons_hold_their_points_near_the_poles(level, lat0, sign):
    rng = np.random.default_rng(level)
    lat = sign * rng.uniform(lat0, 89.999, 2000)
    lng = rng.uniform(-180, 180, 2000)
    cells = C.latlng_to_cell(lat, lng, level)
    polys = C.cell_polygons(cells).values
    inside = np.zeros(lat.size, bool)
    for shift in (-360.0, 0.0, 360.0):  # polygons across the antimeridian use longitudes past +-180
        inside |= shapely.contains_xy(polys, lng + shift, lat)
    assert inside.mean() > 0.999  # was 0.55-0.75: straight lon/lat edges, pole corners cut off
    assert shapely.is_valid(polys).all()


def test_small_cells_keep_their_four_vertices():
    cells = C.latlng_to_cell(np.array([40.7, -33.9, 0.0]), np.array([-74.0, 151.2, 179.9999]), 12)
    assert (shapely.get_num_coordinates(C.cell_polygons(cells).values) == 5).all()


def test_concurrent_embed_calls_match_serial_ones():
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    import geos2vec
    from geos2vec.demo import load_sample
    from geos2vec.features import count_features

    pois, roads = load_sample()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(pois, roads)
    model = geos2vec.load_model("default")
    ids = np.asarray(table.index, np.uint64)
    parts = [ids[k::4] for k in range(4)]
    with geos2vec.set_options(progress=False):
        serial = [geos2vec.embed_cells(p, table, model=model) for p in parts]
        with ThreadPoolExecutor(4) as pool:
            threaded = list(pool.map(lambda p: geos2vec.embed_cells(p, table, model=model), parts))
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_polygons_are_covered_by_cells_with_area_weights_and_a_size_limit():
    from geos2vec.embedding import MAX_POLYGON_CELLS
    from geos2vec.errors import InvalidInputError

    big = shapely.box(-100, 35, -94, 41)  # 6 x 6 degrees: was 17 s and 0.6 GiB on a 1/8-edge grid
    r, c, w = row_cells(gpd.GeoSeries([big], crs=4326), 12)
    assert w.sum() == pytest.approx(1.0) and np.unique(c).size == c.size
    # every cell whose centre is in the box is covered (reference: cell centres of a dense sample)
    rng = np.random.default_rng(0)
    lat, lng = rng.uniform(35.05, 40.95, 20000), rng.uniform(-99.95, -94.05, 20000)
    assert np.isin(C.latlng_to_cell(lat, lng, 12), c).all()
    # weights are the overlapping areas: a box over exactly four cells' worth of one cell's quarter each
    cell = C.latlng_to_cell(np.array([40.7]), np.array([-74.0]), 12)
    poly = C.cell_polygons(cell).values[0]
    half = shapely.box(*poly.bounds).intersection(poly)
    x0, y0, x1, y1 = half.bounds
    left = shapely.box(x0, y0, (x0 + x1) / 2, y1).intersection(poly)
    r, c2, w2 = row_cells(gpd.GeoSeries([left], crs=4326), 12)
    assert c2.tolist() == cell.tolist() and w2.tolist() == [1.0]  # inside one cell: all of it
    wide = shapely.box(x0 - (x1 - x0) / 2, (y0 + y1) / 2 - 1e-4, (x0 + x1) / 2, (y0 + y1) / 2 + 1e-4)
    r, c3, w3 = row_cells(gpd.GeoSeries([wide], crs=4326), 12)
    inside = w3[c3 == cell[0]][0]
    assert inside == pytest.approx(shapely.intersection(wide, poly).area / wide.area, rel=0.01)
    with pytest.raises(InvalidInputError, match=f"limit {MAX_POLYGON_CELLS:,}"):
        row_cells(gpd.GeoSeries([shapely.box(-120, 30, -80, 49)], crs=4326), 12)


def test_antipodal_road_segment_is_a_clear_error():
    from geos2vec.features import count_features

    roads = gpd.GeoDataFrame({"highway": ["primary", "primary"]}, crs=4326,
                             geometry=[shapely.LineString([(1, 1), (2, 2)]),
                                                                    shapely.LineString([(10, 20), (-170, -20)])])
    with pytest.raises(ValueError, match=r"antipodal points, e.g. \(10.0, 20.0\) -> \(-170.0, -20.0\)"):
        count_features(roads=roads)
    # two parts whose junction is antipodal are not one segment
    ok = gpd.GeoDataFrame({"highway": ["primary"]}, crs=4326, geometry=[shapely.MultiLineString(
        [[(0.01, 0), (0, 0)], [(180, 0), (179.99, 0)]])])  # junction (0, 0) | (180, 0)
    assert count_features(roads=ok)["road"].sum() >= 2


def test_means_whose_report_was_lost_are_not_summed():
    from geos2vec.features import combine_counts, count_features

    pois = gpd.GeoDataFrame({"fclass": ["cafe", "cafe"], "price": [84.0, 105.0]}, crs=4326,
                            geometry=gpd.points_from_xy([0.001, 0.002], [0.001, 0.002]))
    a = count_features(pois.iloc[:1], extra={"price": "mean"})
    b = count_features(pois.iloc[1:], extra={"price": "mean"})
    with pytest.raises(ValueError, match="not additive"):
        combine_counts([a, b])
    a.attrs.clear(), b.attrs.clear()  # e.g. after an operation that drops attrs
    with pytest.raises(ValueError, match=r"cannot tell whether the float channel\(s\) \['price'\]"):
        combine_counts([a, b])  # was: 84 + 105 = 189


@settings(max_examples=30, deadline=None)
@given(st.floats(-80, 80), st.floats(-179, 179), st.integers(2, 4))
def test_zero_length_lines_take_their_point_cell(lat, lng, repeat):
    """A line of one repeated point (a GPS fix logged twice, a way with a single node twice) failed with a raw
    GEOSException from shapely.segmentize; it now takes its point's cell (s2sphere reference), like a point.
    Repeated vertices inside a real line add no cell of weight 0."""
    s2sphere = pytest.importorskip("s2sphere")
    ref = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(12).id()
    zero = shapely.LineString([(lng, lat)] * repeat)
    multi = shapely.MultiLineString([[(lng, lat)] * 2, [(lng, lat)] * 3])
    row, cells, weight = row_cells(gpd.GeoSeries([zero, multi], crs=4326), 12)
    assert row.tolist() == [0, 1] and cells.tolist() == [ref, ref] and weight.tolist() == [1.0, 1.0]
    line = shapely.LineString([(lng, lat), (lng, lat), (lng + 0.05, lat), (lng + 0.05, lat)])
    ra, ca, wa = row_cells(gpd.GeoSeries([line], crs=4326), 12)
    rb, cb, wb = row_cells(gpd.GeoSeries([shapely.LineString([(lng, lat), (lng + 0.05, lat)])], crs=4326), 12)
    assert (wa > 0).all() and wa.sum() == pytest.approx(1.0)
    got = {c: wa[ca == c].sum() for c in set(ca.tolist())}
    want = {c: wb[cb == c].sum() for c in set(cb.tolist())}
    assert got.keys() == want.keys() and all(got[c] == pytest.approx(want[c]) for c in got)


def test_image_cells_of_a_projected_area_with_degenerate_parts():
    """A projected area holding a zero-length line or a collapsed polygon (all vertices equal) raised a raw
    GEOSException when its edges were densified; those parts are now taken as they are, and the cells are
    those of the same area given in EPSG:4326."""
    from geos2vec.raster._common import image_cells

    x, y = 1.3e6, 5.9e6  # EPSG:3857 metres (about 11.7 E, 46.8 N)
    square = shapely.box(x, y, x + 4e4, y + 3e4)
    for odd in (shapely.LineString([(x - 5e4, y)] * 2), shapely.Polygon([(x + 9e4, y + 9e4)] * 4)):
        area = gpd.GeoSeries([square, odd], crs=3857)
        got = image_cells(area, 8)
        want = image_cells(area.to_crs(4326), 8)
        np.testing.assert_array_equal(got, want)
        assert len(got) >= len(image_cells(gpd.GeoSeries([square], crs=3857), 8))
