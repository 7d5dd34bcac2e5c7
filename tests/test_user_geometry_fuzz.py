"""Property-based checks of geometry -> S2 cells (cell_polygons, row_cells) against s2sphere.

References are independent of geos2vec's kernels: cell ids of sample points come from ``s2sphere``'s
``CellId.from_lat_lng``, cell outlines from ``s2sphere.Cell.get_vertex`` (edges densified along the great circle).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import s2sphere
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geos2vec import cells
from geos2vec.geometry_cells import row_cells


def _s2_id(lat, lng, level):
    return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(level).id()


def _s2_outline(cell_id, near_lng, steps=32):
    """The cell's outline from s2sphere's vertices, its longitudes within 180° of ``near_lng``.

    A vertex on a pole is drawn as the stretch of latitude ±90° between its two neighbours' longitudes.
    """
    cell = s2sphere.Cell(s2sphere.CellId(int(cell_id)))
    corners = [np.array([v[0], v[1], v[2]]) for v in (cell.get_vertex(k) for k in range(4))]
    t = np.arange(steps)[:, None] / steps
    pts = np.concatenate([(1 - t) * corners[k] + t * corners[(k + 1) % 4] for k in range(4)])
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    lat = np.degrees(np.arctan2(pts[:, 2], np.hypot(pts[:, 0], pts[:, 1])))
    lng = np.degrees(np.arctan2(pts[:, 1], pts[:, 0]))
    pole = np.flatnonzero(np.abs(lat) > 90 - 1e-9)
    if pole.size:
        k = int(pole[0])
        lat = np.r_[lat[:k], lat[k], lat[k], lat[k + 1:]]
        lng = np.r_[lng[:k], lng[k - 1], lng[(k + 1) % len(lng)], lng[k + 1:]]
    lng = near_lng + (lng - near_lng + 180.0) % 360.0 - 180.0
    return shapely.Polygon(np.column_stack([lng, lat]))


def _cover(geom, level):
    row, cell, weight = row_cells(gpd.GeoSeries([geom], crs=4326), level)
    assert (row == 0).all() and abs(weight.sum() - 1.0) < 1e-9
    return dict(zip(cell.tolist(), weight.tolist()))


def _grid_inside(geom, n=40):
    x0, y0, x1, y1 = geom.bounds
    gx, gy = np.meshgrid(np.linspace(x0, x1, n + 2)[1:-1], np.linspace(y0, y1, n + 2)[1:-1])
    inside = shapely.contains_xy(geom, gx.ravel(), gy.ravel())
    return gy.ravel()[inside], gx.ravel()[inside]


def _check_against_s2sphere(geom, level, weights=True):
    """Every sample point's s2sphere cell is covered; every covered cell touches ``geom``; weights ~ samples."""
    got = _cover(geom, level)
    lat, lng = _grid_inside(geom)
    ref = [_s2_id(a, b, level) for a, b in zip(lat, lng)]
    missed = set(ref) - set(got)
    assert not missed, f"cells of points inside the polygon are missing: {[hex(c) for c in missed]}"
    centre = shapely.centroid(geom).x
    for c in got:
        assert _s2_outline(c, centre).distance(geom) < 1e-9, hex(c)
    if weights and len(ref) > 400:
        # share of (cos-latitude weighted) sample points per cell against the area weights
        w = np.cos(np.radians(lat))
        ids, inv = np.unique(np.asarray(ref, dtype=np.uint64), return_inverse=True)
        share = np.bincount(inv, weights=w) / w.sum()
        for c, s in zip(ids.tolist(), share):
            assert abs(got[c] - s) < 0.06, (hex(c), got[c], s)


# --------------------------------------------------------------------------- cell_polygons at the antimeridian
@settings(max_examples=60, deadline=None)
@given(lat=st.one_of(st.floats(-85.0, -36.0), st.floats(36.0, 85.0), st.floats(-40.0, 40.0)),
       offset=st.floats(1e-9, 0.5), east=st.booleans(), level=st.integers(1, 30))
def test_cell_polygons_next_to_the_antimeridian_hold_their_points(lat, offset, east, level):
    # south of ~45°S the antimeridian is face 5's u = 0 line, whose vertices S2 puts at lng +180: the cells west
    # of it (lng -179.97..-180 at level 12) were drawn at lng 180..180.03, away from every point they hold
    lng = 180.0 - offset if east else -180.0 + offset
    cell = cells.latlng_to_cell(lat, lng, level)
    assert int(cell) == _s2_id(lat, lng, level)
    poly = cells.cell_polygons(cell).iloc[0]
    assert poly.is_valid
    x0, _, x1, _ = poly.bounds
    assert -180.0 <= x0 and x1 <= 180.0, poly.bounds
    assert poly.distance(shapely.Point(lng, lat)) < 1e-5
    ref = _s2_outline(cell, lng)
    assert shapely.hausdorff_distance(poly, ref) < 0.01 * max(ref.length, 1e-9)


@pytest.mark.parametrize("level", [1, 3, 8, 12, 17, 24, 30])
@pytest.mark.parametrize("pole", [-90.0, 90.0])
def test_cells_at_the_poles_stay_within_180(level, pole):
    # the four cells meeting at a pole: the western quarter at the south pole was drawn at lng 180..270
    lng = np.array([-135.0, -45.0, 45.0, 135.0])
    lat = np.full(4, pole - np.copysign(1e-3 * 2.0 ** -level, pole))
    ids = cells.latlng_to_cell(lat, lng, level)
    assert [int(c) for c in ids] == [_s2_id(a, b, level) for a, b in zip(lat, lng)]
    polys = np.asarray(cells.cell_polygons(ids).values)
    bounds = shapely.bounds(polys)
    assert (bounds[:, 0] >= -180.0).all() and (bounds[:, 2] <= 180.0).all(), bounds
    assert shapely.is_valid(polys).all()
    assert (shapely.distance(polys, shapely.points(lng, lat)) < 1e-6).all()


# --------------------------------------------------------------------------- row_cells of polygons
@settings(max_examples=25, deadline=None)
@given(lat=st.floats(-80.0, 80.0), width=st.floats(0.02, 0.4), height=st.floats(0.02, 0.4),
       west=st.booleans(), level=st.integers(8, 13))
def test_polygons_touching_the_antimeridian_keep_their_cells(lat, width, height, west, level):
    geom = shapely.box(-180.0, lat, -180.0 + width, lat + height) if west else \
        shapely.box(180.0 - width, lat, 180.0, lat + height)
    _check_against_s2sphere(geom, level)


def test_polygon_west_of_the_antimeridian_at_level_12():
    # the column of cells at lng -180..-179.97 (face 5) had zero overlap with their misplaced polygons and
    # was dropped: 0.6 of this box's weight lost
    _check_against_s2sphere(shapely.box(-180.0, -58.0, -179.95, -57.9), 12)


def test_level_0_polygon_on_both_sides_of_135_west():
    # face 3 is drawn at lng 135..225 (it straddles the antimeridian): its western half (-180..-135) was
    # never intersected, so a polygon over faces 3 and 4 took face 4 alone
    _check_against_s2sphere(shapely.box(-140.0, 10.0, -130.0, 20.0), 0)


@pytest.mark.parametrize("lat", [-60.0, -17.0, 65.0])
def test_multipolygon_split_at_the_antimeridian_is_covered(lat):
    # what the antimeridian error asks for: a MultiPolygon of the parts east and west of 180. Its bounding box
    # spans the globe, so it was refused as "too large" (at 60°) or sampled on a grid round the globe
    east, west = shapely.box(179.5, lat, 180.0, lat + 1.0), shapely.box(-180.0, lat, -179.5, lat + 1.0)
    geom = shapely.MultiPolygon([east, west])
    got = _cover(geom, 12)
    for part in geom.geoms:  # each part's cells, with half the weight (the parts have equal areas)
        one = _cover(part, 12)
        for c, w in one.items():
            assert abs(got[c] - w / 2) < 0.01 * w + 1e-12
    assert len(got) == len(_cover(geom.geoms[0], 12)) + len(_cover(geom.geoms[1], 12))
    lat_s, lng_s = _grid_inside(geom, 60)
    assert {_s2_id(a, b, 12) for a, b in zip(lat_s, lng_s)} <= set(got)


def test_multipolygon_of_distant_parcels_is_not_refused():
    # two 100 m parcels in Helsinki and Vancouver: their bounding box spans a third of the globe
    a = shapely.box(24.94, 60.17, 24.942, 60.171)
    b = shapely.box(-123.12, 49.28, -123.118, 49.281)
    got = _cover(shapely.MultiPolygon([a, b]), 14)
    assert {_s2_id(60.1705, 24.941, 14), _s2_id(49.2805, -123.119, 14)} <= set(got)


@st.composite
def _polygons(draw):
    """Star-shaped polygons (with a hole, as a sliver or a box) near cube corners, face edges, poles or anywhere."""
    level = draw(st.integers(1, 24))
    edge = 108.0 / 2 ** level
    spot = draw(st.sampled_from(["any", "corner", "face_edge", "pole"]))
    d = draw(st.tuples(st.floats(-3, 3), st.floats(-3, 3)))
    if spot == "any":
        lat, lng = draw(st.floats(-70, 70)), draw(st.floats(-170, 170))
    elif spot == "corner":
        lat = draw(st.sampled_from([-1, 1])) * 35.264389682754654 + d[0] * edge
        lng = draw(st.sampled_from([-135.0, -45.0, 45.0, 135.0])) + d[1] * edge
    elif spot == "face_edge":
        lat, lng = draw(st.floats(-30, 30)), draw(st.sampled_from([-135.0, -45.0, 45.0, 135.0])) + d[1] * edge
    else:
        lat, lng = draw(st.sampled_from([-1, 1])) * (89.0 - min(abs(d[0]) * edge, 5.0)), draw(st.floats(-170, 170))
    size = edge * 10 ** draw(st.floats(-1.5, 0.7))
    n = draw(st.integers(3, 8))
    ang = np.sort(draw(st.lists(st.floats(0, 2 * np.pi), min_size=n, max_size=n, unique=True)))
    rad = np.array(draw(st.lists(st.floats(0.3, 1.0), min_size=n, max_size=n))) * size
    squash = draw(st.sampled_from([1.0, 0.3, 0.03]))
    xs = np.clip(lng + rad * np.cos(ang), -179.9, 179.9)
    ys = np.clip(lat + squash * rad * np.sin(ang), -89.9, 89.9)
    geom = shapely.make_valid(shapely.Polygon(np.column_stack([xs, ys])))
    shape = draw(st.sampled_from(["star", "hole", "box"]))
    if shape == "hole":
        geom = shapely.make_valid(geom.difference(shapely.Point(lng, lat).buffer(0.2 * size * squash)))
    elif shape == "box":
        geom = shapely.box(*geom.bounds)
    return geom, level


@settings(max_examples=30, deadline=None)
@given(_polygons())
def test_random_polygons_match_s2sphere(case):
    geom, level = case
    if shapely.get_type_id(geom) not in (3, 6) or geom.area == 0:
        return
    xy, of = shapely.get_coordinates(shapely.get_rings(shapely.get_parts(geom)), return_index=True)
    if ((np.abs(np.diff(xy[:, 0])) > 180.0) & (of[1:] == of[:-1])).any():
        return  # an edge across the antimeridian: refused by design (tests/test_user_joins.py)
    _check_against_s2sphere(geom, level, weights=False)


# --------------------------------------------------------------------------- row_cells of lines
@settings(max_examples=30, deadline=None)
@given(lat=st.floats(-80, 80), lng=st.floats(-170, 170), level=st.integers(4, 20),
       steps=st.lists(st.tuples(st.floats(-2, 2), st.floats(-2, 2), st.integers(1, 3)), min_size=1, max_size=6))
@example(lat=0.0, lng=-1.0803436390589298e-262, level=4, steps=[(0.0, 1.0803436390589298e-262, 1)])
def test_lines_with_repeated_vertices_cover_their_long_stretches(lat, lng, level, steps):
    edge = 108.0 / 2 ** level
    pts = [(lng, lat)]
    for dx, dy, rep in steps:
        x, y = pts[-1]
        nxt = (float(np.clip(x + dx * edge, -179.9, 179.9)), float(np.clip(y + dy * edge, -89.9, 89.9)))
        pts += [nxt] * rep  # repeated vertices: zero-length segments
    line = shapely.LineString(pts)
    got = _cover(line, level)
    step = edge * 1.2 / 8
    for frac in np.linspace(0, 1, 41):  # points along the line: their cell is covered unless near a corner
        p = line.interpolate(frac, normalized=True)
        c = _s2_id(p.y, p.x, level)
        if c not in got:
            stretch = shapely.intersection(_s2_outline(c, p.x), line).length
            assert stretch < 2.5 * step, (hex(c), stretch / step)
    for c in got:
        outline = _s2_outline(c, lng)
        # GEOS measures a segment of subnormal length (7e-262 degrees, found by hypothesis) as 0.158 degrees away
        # from a polygon both its ends touch: the distance to the line is also at most that to each vertex
        assert min(outline.distance(line), *(outline.distance(shapely.Point(v)) for v in line.coords)) < 1e-9


@pytest.mark.parametrize("pole", [-1.0, 1.0])
def test_polar_cap_is_not_refused_for_its_longitude_span(pole):
    # the size limit divided the box in degrees by cos(latitude): a cap within 5° of a pole (~12,000 level-10
    # cells) was "about 3,200,000 cells" and refused; Svalbard's box at level 12 (55,000 cells) "1,156,623"
    cap = shapely.box(-180.0, 85.0, 180.0, 90.0) if pole > 0 else shapely.box(-180.0, -90.0, 180.0, -85.0)
    got = _cover(cap, 10)
    expected = 2 * np.pi * (1 - np.cos(np.radians(5.0))) / (4 * np.pi / (6 * 4**10))  # cap area / mean cell area
    assert 0.7 * expected < len(got) < 1.3 * expected
    lat, lng = _grid_inside(cap, 50)
    assert {_s2_id(a, b, 10) for a, b in zip(lat, lng)} <= set(got)
    assert all(w > 0 for w in got.values())


def test_lines_too_long_for_a_fine_level_raise_naming_their_rows():
    from geos2vec.errors import InvalidInputError

    # 40° at level 30: GEOS' raw "Tolerance is too small compared to geometry length"; 1° at level 30 (10^8
    # pieces) had the process killed for memory (22 GB)
    for line in (shapely.LineString([(-120.0, 40.0), (-80.0, 40.0)]), shapely.LineString([(179.0, 0.0), (180.0, 0.0)])):
        geoms = gpd.GeoSeries([shapely.Point(0, 0), line], index=["home", "road"], crs=4326)
        with pytest.raises(InvalidInputError, match=r"too long for level 30 at index \['road'\]"):
            row_cells(geoms, 30)
    # a 100 m road at level 30 (~10,000 leaf cells) is fine, and so is the long line with how="point"
    short = shapely.LineString([(2.35, 48.85), (2.3513, 48.85)])
    got = _cover(short, 30)
    assert 5000 < len(got) < 20000
    assert _s2_id(48.85, 2.3506, 30) in got
    row, cell, _ = row_cells(gpd.GeoSeries([line], crs=4326), 30, how="point")
    assert len(cell) == 1
