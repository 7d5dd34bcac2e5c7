"""The .s2vec accessor: CRS handling, bad input, index and order preserved."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely

import geos2vec  # noqa: F401  (registers the accessor)
from geos2vec import cells as C


def ref(lat, lng, level):
    return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(level).id()


@pytest.fixture
def points():
    lng = [-73.9857, -87.6359, -121.8863, -0.1246]
    lat = [40.7484, 41.8789, 37.3382, 51.5007]
    return gpd.GeoDataFrame({"name": list("abcd")}, geometry=gpd.points_from_xy(lng, lat),
                            index=pd.Index([10, 3, 7, 1], name="house"), crs="EPSG:4326")


def test_cell_ids_points_keep_index_and_order(points):
    ids = points.s2vec.cell_ids(12)
    assert ids.dtype == np.uint64 and ids.name == "s2_cell"
    assert ids.index.equals(points.index)
    expected = [ref(p.y, p.x, 12) for p in points.geometry]
    assert ids.tolist() == expected
    assert points.geometry.s2vec.cell_ids(12).tolist() == expected  # GeoSeries too


def test_projected_input_is_transformed(points):
    projected = points.to_crs("EPSG:3857")
    np.testing.assert_array_equal(projected.s2vec.cell_ids(16), points.s2vec.cell_ids(16))
    utm = points.iloc[:1].to_crs("EPSG:32618")
    assert utm.s2vec.cell_ids(20).iloc[0] == points.s2vec.cell_ids(20).iloc[0]


def test_missing_crs_is_an_error(points):
    with pytest.raises(ValueError, match="set_crs"):
        points.set_crs(None, allow_override=True).s2vec.cell_ids()


def test_missing_and_empty_geometries(points):
    bad = points.copy()
    bad.loc[3, "geometry"] = None
    bad.loc[1, "geometry"] = shapely.Point()
    with pytest.raises(ValueError, match=r"2 missing or empty geometries at index \[3, 1\]"):
        bad.s2vec.cell_ids()
    coerced = bad.s2vec.cell_ids(errors="coerce")
    assert str(coerced.dtype) == "UInt64"
    assert coerced.isna().tolist() == [False, True, False, True]
    assert coerced[10] == ref(40.7484, -73.9857, 12)
    tokens = bad.s2vec.tokens(errors="coerce")
    assert pd.isna(tokens[3]) and tokens[10] == C.cell_to_token(coerced[10])
    # missing as in cell_ids (<NA>, not NaN), one dtype whether or not the frame has rows
    assert tokens[3] is pd.NA and str(tokens.dtype) == "string"
    assert str(bad.iloc[:0].s2vec.tokens().dtype) == "string"
    assert tokens.index.equals(bad.index) and tokens.name == "s2_token"


def test_non_point_geometries_use_representative_point():
    poly = shapely.box(-74.0, 40.70, -73.99, 40.71)
    line = shapely.LineString([(-87.7, 41.9), (-87.6, 41.9)])
    gdf = gpd.GeoDataFrame(geometry=[poly, line], crs=4326)
    ids = gdf.s2vec.cell_ids(14)
    p = shapely.point_on_surface(poly)  # polygons: a point inside
    assert ids[0] == ref(p.y, p.x, 14)
    assert ids[1] == ref(41.9, -87.65, 14)  # lines: halfway along, by hand (not the vertex point_on_surface gives)


def test_out_of_range_coordinates_are_reported(points):
    bad = points.copy()
    bad.loc[7, "geometry"] = shapely.Point(10.0, 95.0)
    with pytest.raises(ValueError, match="latitude"):
        bad.s2vec.cell_ids()


def test_plain_dataframe_is_an_attribute_error_with_the_fix():
    with pytest.raises(AttributeError, match="GeoDataFrame"):
        pd.DataFrame({"a": [1]}).s2vec.cell_ids()


def test_empty_frame():
    empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=4326))
    ids = empty.s2vec.cell_ids()
    assert len(ids) == 0 and ids.dtype == np.uint64
    assert len(empty.s2vec.cells()) == 0


def test_cells_frame(points):
    dup = pd.concat([points, points.iloc[:1]])
    cells = dup.s2vec.cells(10)
    assert list(cells.columns) == ["cell_id", "token", "count", "geometry"]
    assert cells["count"].sum() == 5 and cells["cell_id"].is_monotonic_increasing
    assert cells.crs.to_epsg() == 4326
    for cid, geom in zip(cells.cell_id, cells.geometry):
        lat, lng = C.cell_to_latlng(cid)
        assert geom.contains(shapely.Point(lng, lat))


def test_accessor_is_absent_on_plain_frames_and_present_on_geo_ones():
    import geopandas as gpd
    import pandas as pd
    import shapely

    plain = pd.DataFrame({"a": [1]})
    assert not hasattr(plain, "s2vec") and not hasattr(plain["a"], "s2vec")
    with pytest.raises(AttributeError, match="GeoDataFrames and GeoSeries, not on a plain DataFrame"):
        plain.s2vec
    geo = gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)], crs=4326)
    assert hasattr(geo, "s2vec") and hasattr(geo.geometry, "s2vec")
