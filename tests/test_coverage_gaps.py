"""geos2vec.coverage paths no other test ran, and hostile inputs: a .pbf header without a box, malformed boxes,
collections, invalid polygons, projected input to ``infer``, frames without coordinates, ``set_coverage``'s
channels, ``covered_mask`` of no cells, of float ids and of a table with repeated cells. References: shapely,
pyproj (through GeoPandas) and hand-checked cases."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec.cells import cell_to_latlng, latlng_to_cell
from geos2vec.coverage import as_coverage, covered_mask, infer_coverage, pbf_bounds, set_coverage
from geos2vec.errors import CoverageError, InvalidTypeError


def test_a_pbf_without_a_header_box_is_a_clear_coverage_error(tmp_path):
    osmium = pytest.importorskip("osmium")
    path = tmp_path / "nobox.osm.pbf"
    writer = osmium.SimpleWriter(str(path))
    writer.add_node(osmium.osm.mutable.Node(id=1, location=(9.5, 47.1), tags={"amenity": "cafe"}))
    writer.close()
    assert not osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING).header().box().valid()
    for call in (lambda: pbf_bounds(path), lambda: as_coverage(str(path))):
        with pytest.raises(CoverageError, match="has no bounding box in its header; pass the area it covers"):
            call()


@pytest.mark.parametrize("box, why", [
    ((np.nan, 0.0, 1.0, 1.0), "a value is not finite"),
    ((0.0, 0.0, 1.0, np.inf), "a value is not finite"),
    (("a", "b", "c", "d"), "four numbers"),     # raised float()'s "could not convert string to float: 'a'"
    ((None, 0, 1, 1), "four numbers"),          # raised "float() argument must be ... not 'NoneType'"
    (np.zeros((4, 2)), "four numbers"),         # raised "only 0-dimensional arrays can be converted"
])
def test_malformed_boxes_are_coverage_errors(box, why):
    with pytest.raises(CoverageError, match=f"coverage box is .*{why}"):
        as_coverage(box)


def test_collections_keep_their_polygons_and_invalid_polygons_are_repaired():
    a, b = shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)
    got = as_coverage(shapely.GeometryCollection([shapely.Point(5, 5), a, shapely.LineString([(0, 0), (9, 9)]), b]))
    assert got.equals(shapely.MultiPolygon([a, b])) and got.area == pytest.approx(2.0)
    none = as_coverage(shapely.GeometryCollection([shapely.Point(5, 5), shapely.LineString([(0, 0), (1, 1)])]))
    assert none.is_empty and none.geom_type == "Polygon"
    # a bow-tie: two triangles of area 0.25 meeting at (0.5, 0.5), hand-checked
    tie = as_coverage(shapely.from_wkt("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"))
    assert tie.is_valid and tie.area == pytest.approx(0.5)
    assert shapely.contains_xy(tie, [0.1, 0.9, 0.5, 0.5], [0.5, 0.5, 0.1, 0.9]).tolist() == [True, True, False, False]


def test_inferred_coverage_of_projected_input_is_the_hull_in_degrees():
    rng = np.random.default_rng(1)
    lng, lat = rng.uniform(-122.1, -121.8, 40), rng.uniform(37.2, 37.5, 40)
    points = gpd.GeoSeries(gpd.points_from_xy(lng, lat), crs=4326)
    ref = shapely.convex_hull(shapely.multipoints(np.c_[lng, lat]))  # reference: shapely's hull in degrees
    for frame in (points.to_crs(32610), gpd.GeoDataFrame(geometry=points.to_crs(3857))):
        got = infer_coverage(frame)
        assert got.equals_exact(ref, tolerance=1e-9) and got.bounds[0] > -123
    # a frame without coordinate columns adds nothing; alone it is too few coordinates
    extra = pd.DataFrame({"name": ["a", "b", "c"], "count": [1, 2, 3]})
    assert infer_coverage(points, roads=extra).equals_exact(ref, tolerance=1e-12)
    with pytest.raises(CoverageError, match="needs at least 3 input coordinates"):
        infer_coverage(extra)


def _table(cells, **columns):
    return pd.DataFrame(columns, index=pd.Index(np.asarray(cells, dtype=np.uint64), name="cell_id"))


CELLS = latlng_to_cell(np.array([37.30, 37.31, 37.32]), np.array([-121.90, -121.91, -121.92]), 12)


def test_set_coverage_missing_channels():
    table = _table(CELLS, a=[1.0, 0.0, 2.0], b=[0.0, 0.0, 0.0])
    with pytest.raises(CoverageError, match=r"missing_channels \['road'\] are not columns of the table"):
        set_coverage(table, (-122, 37, -121, 38), missing_channels=["a", "road"])
    # one string is one name, not its letters ("ab" marked columns a and b missing, silently)
    with pytest.raises(CoverageError, match=r"missing_channels \['ab'\] are not columns"):
        set_coverage(table, (-122, 37, -121, 38), missing_channels="ab")
    set_coverage(table, (-122, 37, -121, 38), missing_channels="b")
    assert table.attrs["coverage"]["channels"] == {"b": "POLYGON EMPTY"}


def test_covered_mask_of_no_cells_float_ids_and_repeated_cells():
    table = set_coverage(_table(CELLS, a=[1.0, 0.0, 2.0]), (-122, 37, -121, 38))
    for empty in (np.zeros((0, 3), np.uint64), []):
        covered, available = covered_mask(empty, table)
        assert covered.shape == np.shape(empty) and covered.dtype == bool and available is None
    # float ids were rounded to other cells silently
    with pytest.raises(InvalidTypeError, match="integer array"):
        covered_mask(np.array([1.5]), table)
    with pytest.raises(InvalidTypeError, match="integer array"):
        covered_mask(CELLS.astype(np.float64), table)
    # a table with a repeated cell and a channel of its own coverage (pandas raised "cannot reindex on an axis
    # with duplicate labels"): a cell has the channel where any of its rows counts it. Hand-checked: channel
    # "a" is missing everywhere, so only cells with a non-zero "a" have it: the first cell in its first row,
    # the second in its second row.
    twice = _table(np.r_[CELLS, CELLS[:2]], a=[3.0, 0.0, 0.0, 0.0, 2.0], b=[1.0, 1.0, 1.0, 1.0, 1.0])
    set_coverage(twice, (-122, 37, -121, 38), missing_channels=["a"])
    other = latlng_to_cell(37.5, -121.5, 12)  # covered (centre in the box), no row
    lat, lng = cell_to_latlng(np.r_[CELLS, other])
    assert shapely.contains_xy(shapely.box(-122, 37, -121, 38), lng, lat).all()
    covered, available = covered_mask(np.r_[CELLS, other], twice)
    assert covered.tolist() == [True] * 4
    assert available[:, 0].tolist() == [True, True, False, False] and available[:, 1].all()
