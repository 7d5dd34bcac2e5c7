"""geos2vec.cells against the S2 references (s2sphere, and s2cell as a second opinion)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import s2cell
import s2sphere
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geos2vec import cells as C

LEVELS = [0, 1, 2, 3, 7, 8, 12, 13, 16, 20, 24, 29, 30]


def ref_cell(lat, lng, level=30):
    cid = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(float(lat), float(lng)))
    return cid.parent(level).id()


def uniform_sphere(n, seed):
    rng = np.random.default_rng(seed)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    lng = rng.uniform(-180.0, 180.0, n)
    return lat, lng


def special_points():
    """Poles, the antimeridian, the equator, face edges and cube corners."""
    corner = math.degrees(math.atan(1 / math.sqrt(2)))  # latitude of the cube's corners
    lat = [90, -90, 0, 0, 0, 0, 45, -45, corner, -corner, corner, -corner, 89.999999, -89.999999,
           0, 0, 35, -35, 1e-12, -1e-12, 45, 45]
    lng = [0, 0, 180, -180, 45, -135, 45, 135, 45, -45, 135, -135, 180, -180,
           90, -90, 180, -180, 180, -180, 179.9999999999, -179.9999999999]
    return np.asarray(lat, float), np.asarray(lng, float)


# --------------------------------------------------------------------------- latlng_to_cell
@pytest.mark.slow
def test_million_random_points_match_s2sphere_leaf_ids():
    lat, lng = uniform_sphere(1_000_000, seed=1)
    ours = C.latlng_to_cell(lat, lng, 30)
    ref = np.fromiter((ref_cell(a, b) for a, b in zip(lat, lng)), dtype=np.uint64, count=lat.size)
    mismatches = np.flatnonzero(ours != ref)
    assert mismatches.size == 0, f"{mismatches.size} mismatches, first at {mismatches[:5]}"
    # every coarser level is the reference leaf's parent
    for level in LEVELS:
        ours_l = C.latlng_to_cell(lat, lng, level)
        lsb = np.uint64(1) << np.uint64(2 * (30 - level))
        expected = (ref & ~(lsb - np.uint64(1))) | lsb  # S2CellId::parent: (id & -lsb) | lsb
        np.testing.assert_array_equal(ours_l, expected)


@pytest.mark.parametrize("level", LEVELS)
def test_random_points_match_s2sphere_parent(level):
    lat, lng = uniform_sphere(4000, seed=level)
    ours = C.latlng_to_cell(lat, lng, level)
    ref = [ref_cell(a, b, level) for a, b in zip(lat, lng)]
    np.testing.assert_array_equal(ours, np.asarray(ref, dtype=np.uint64))


@pytest.mark.parametrize("level", [1, 8, 12, 20, 30])
def test_random_points_match_s2cell(level):
    lat, lng = uniform_sphere(3000, seed=100 + level)
    ours = C.latlng_to_cell(lat, lng, level)
    ref = [s2cell.lat_lon_to_cell_id(a, b, level) for a, b in zip(lat, lng)]
    np.testing.assert_array_equal(ours, np.asarray(ref, dtype=np.uint64))


@pytest.mark.parametrize("level", LEVELS)
def test_special_points(level):
    lat, lng = special_points()
    ours = C.latlng_to_cell(lat, lng, level)
    np.testing.assert_array_equal(ours, np.asarray([ref_cell(a, b, level) for a, b in zip(lat, lng)], np.uint64))


@pytest.mark.parametrize("level", [5, 12, 18])
def test_cell_corners_and_edge_midpoints(level):
    """Points exactly on cell vertices and edges are assigned like S2 assigns them."""
    lat, lng = uniform_sphere(300, seed=7)
    cells = C.latlng_to_cell(lat, lng, level)
    bnd = C.cell_to_boundary(cells).reshape(-1, 2)
    mid = ((C.cell_to_boundary(cells) + np.roll(C.cell_to_boundary(cells), 1, axis=1)) / 2).reshape(-1, 2)
    pts = np.concatenate([bnd, mid])
    ours = C.latlng_to_cell(pts[:, 0], pts[:, 1], level)
    ref = [ref_cell(a, b, level) for a, b in pts]
    np.testing.assert_array_equal(ours, np.asarray(ref, dtype=np.uint64))


@settings(max_examples=300, deadline=None)
@given(lat=st.floats(-90, 90), lng=st.floats(-180, 180), level=st.integers(0, 30))
def test_property_matches_s2sphere(lat, lng, level):
    assert C.latlng_to_cell(lat, lng, level) == ref_cell(lat, lng, level)


def test_shapes_and_scalars():
    assert isinstance(C.latlng_to_cell(40.0, -73.0), np.uint64)
    out = C.latlng_to_cell(np.zeros((2, 3)), np.ones((2, 3)), 10)
    assert out.shape == (2, 3) and out.dtype == np.uint64
    assert C.latlng_to_cell(np.array([]), np.array([]), 12).shape == (0,)
    # level 12 token of a hand-checked point (Empire State Building)
    assert C.cell_to_token(C.latlng_to_cell(40.7484, -73.9857, 12)) == \
        s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(40.7484, -73.9857)).parent(12).to_token()


@pytest.mark.parametrize(
    "lat,lng,match",
    [
        ([0.0, np.nan], [0.0, 0.0], r"NaN or infinite at positions \[1\]"),
        ([0.0, 1.0], [np.inf, 0.0], r"NaN or infinite at positions \[0\]"),
        ([91.0], [0.0], "latitude"),
        ([0.0], [-180.5], "longitude"),
        ([0.0, 1.0], [0.0], "same shape"),
    ],
)
def test_bad_coordinates_raise(lat, lng, match):
    with pytest.raises(ValueError, match=match):
        C.latlng_to_cell(np.asarray(lat), np.asarray(lng), 12)


def test_bad_types_and_levels():
    with pytest.raises(TypeError, match="numeric"):
        C.latlng_to_cell(np.array(["a"]), np.array([1.0]))
    with pytest.raises(ValueError, match="between 0 and 30"):
        C.latlng_to_cell(0.0, 0.0, 31)
    with pytest.raises(TypeError, match="integer"):
        C.latlng_to_cell(0.0, 0.0, 12.0)
    with pytest.raises(TypeError, match="integer array"):
        C.get_level(np.array([1.5]))
    with pytest.raises(ValueError, match="invalid S2 cell"):
        C.get_level(np.array([0, 3], dtype=np.uint64))


# --------------------------------------------------------------------------- hierarchy
def test_parent_children_levels_match_s2sphere():
    lat, lng = uniform_sphere(2000, seed=3)
    leaves = C.latlng_to_cell(lat, lng, 30)
    for level in (0, 4, 12, 21):
        ours = C.cell_to_parent(leaves, level)
        ref = [s2sphere.CellId(int(c)).parent(level).id() for c in leaves]
        np.testing.assert_array_equal(ours, np.asarray(ref, np.uint64))
        assert (C.get_level(ours) == level).all()
    l10 = C.cell_to_parent(leaves[:50], 10)
    kids = C.cell_to_children(l10, 12)
    assert kids.shape == (50, 16)
    for c, row in zip(l10, kids):
        ref = [k.id() for k in s2sphere.CellId(int(c)).children(12)]
        assert row.tolist() == ref
    assert (C.cell_to_parent(kids, 10) == l10[:, None]).all()
    with pytest.raises(ValueError, match="finer"):
        C.cell_to_parent(l10, 11)
    with pytest.raises(ValueError, match="one level"):
        C.cell_to_children(np.array([l10[0], leaves[0]]), 30)


def test_is_valid_and_signed_input():
    lat, lng = uniform_sphere(100, seed=4)
    cells = C.latlng_to_cell(lat, lng, 12)
    assert C.is_valid_cell(cells).all()
    ref = [s2sphere.CellId(int(v)).is_valid() for v in (0, 1, 3, 6 << 61 | 1, 2**64 - 1)]
    assert C.is_valid_cell(np.array([0, 1, 3, 6 << 61 | 1, 2**64 - 1], dtype=np.uint64)).tolist() == ref
    signed = cells.view(np.int64)  # ids as a database without uint64 stores them
    np.testing.assert_array_equal(C.get_level(signed), 12)
    np.testing.assert_array_equal(C.cell_to_parent(signed, 8), C.cell_to_parent(cells, 8))


# --------------------------------------------------------------------------- tokens
@settings(max_examples=200, deadline=None)
@given(lat=st.floats(-90, 90), lng=st.floats(-180, 180), level=st.integers(0, 30))
def test_tokens_round_trip_and_match(lat, lng, level):
    cell = C.latlng_to_cell(lat, lng, level)
    tok = C.cell_to_token(cell)
    assert tok == s2sphere.CellId(int(cell)).to_token()
    assert C.token_to_cell(tok) == cell


def test_bad_tokens():
    with pytest.raises(ValueError, match=r"positions \[1\]"):
        C.token_to_cell(["89c259", "zz"])
    with pytest.raises(ValueError, match="invalid S2 cell"):
        C.token_to_cell(["0000000000000002"])  # lowest set bit at an odd position


# --------------------------------------------------------------------------- geometry
def test_centers_match_s2sphere():
    lat, lng = uniform_sphere(3000, seed=5)
    for level in (0, 9, 12, 30):
        cells = C.latlng_to_cell(lat, lng, level)
        clat, clng = C.cell_to_latlng(cells)
        ref = [s2sphere.CellId(int(c)).to_lat_lng() for c in cells]
        np.testing.assert_allclose(clat, [r.lat().degrees for r in ref], rtol=0, atol=1e-12)
        np.testing.assert_allclose(clng, [r.lng().degrees for r in ref], rtol=0, atol=1e-12)
        # the center lies in its own cell
        np.testing.assert_array_equal(C.latlng_to_cell(clat, clng, level), cells)


def test_vertices_match_s2sphere():
    lat, lng = uniform_sphere(1500, seed=6)
    for level in (2, 12, 25):
        cells = C.latlng_to_cell(lat, lng, level)
        bnd = C.cell_to_boundary(cells)
        for c, b in zip(cells[:300], bnd[:300]):
            cell = s2sphere.Cell(s2sphere.CellId(int(c)))
            for k in range(4):
                ll = s2sphere.LatLng.from_point(cell.get_vertex(k))
                assert b[k, 0] == pytest.approx(ll.lat().degrees, abs=1e-12)
                assert b[k, 1] == pytest.approx(ll.lng().degrees, abs=1e-12)


def test_polygons_contain_their_points_and_tile():
    lat, lng = uniform_sphere(2000, seed=8)
    keep = np.abs(lat) < 80
    lat, lng = lat[keep], lng[keep]
    cells = C.latlng_to_cell(lat, lng, 12)
    polys = C.cell_polygons(cells)
    assert polys.crs.to_epsg() == 4326
    assert shapely.is_valid(polys.values).all()
    inside = shapely.contains_xy(polys.values, lng, lat) | shapely.touches(
        polys.values, shapely.points(lng, lat))
    # Edges are geodesics, polygons use straight lines in degrees: a point may fall outside by < 1 m.
    dist = shapely.distance(polys.values, shapely.points(lng, lat))
    assert (inside | (dist < 1e-5)).all()
    # the 256 level-12 children of a level-8 cell share edges exactly (no overlaps, no gaps) and cover
    # the parent up to the difference between geodesic edges and straight lines in degrees
    parent = C.cell_to_parent(cells[:1], 8)
    kids = C.cell_polygons(C.cell_to_children(parent, 12).ravel())
    union = shapely.union_all(kids.values)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0
    assert abs(shapely.area(kids.values).sum() - union.area) < 1e-12
    parent_poly = C.cell_polygons(parent).iloc[0]
    assert union.symmetric_difference(parent_poly).area < 1e-3 * parent_poly.area


def test_antimeridian_polygon_is_small_and_valid():
    cell = C.latlng_to_cell(10.0, 179.99999, 8)
    neighbour = C.latlng_to_cell(10.0, -179.99999, 8)
    polys = C.cell_polygons(np.array([cell, neighbour]))
    assert shapely.is_valid(polys.values).all()
    assert (polys.bounds.maxx - polys.bounds.minx < 1.0).all()


# --------------------------------------------------------------------------- image order
@pytest.mark.parametrize("lat,lng", [(40.75, -73.98), (10, 100), (-20, -100), (10, 170), (-30, -170),
                                     (0.1, 0.1), (52.5, 13.4), (-33.9, 151.2)])
def test_rowcol_is_north_up_east_right_on_equatorial_faces(lat, lng):
    image = C.latlng_to_cell(lat, lng, 8)
    kids = C.cell_to_children(np.array([image]), 12)[0]
    row, col = C.cell_to_rowcol(kids, 8)
    assert sorted(zip(row.tolist(), col.tolist())) == [(r, c) for r in range(16) for c in range(16)]
    clat, clng = C.cell_to_latlng(kids)
    grid_lat = np.full((16, 16), np.nan)
    grid_lng = np.full((16, 16), np.nan)
    grid_lat[row, col], grid_lng[row, col] = clat, clng
    # within every column latitude falls going down; within every row longitude grows going right
    assert (np.diff(grid_lat, axis=0) < 0).all()
    dl = np.diff(grid_lng, axis=1)
    dl = (dl + 180) % 360 - 180
    assert (dl > 0).all()


@pytest.mark.parametrize("lat,lng", [(80, 0), (-80, 60), (89.9, 120)])
def test_rowcol_covers_image_on_polar_faces(lat, lng):
    image = C.latlng_to_cell(lat, lng, 6)
    kids = C.cell_to_children(np.array([image]), 9)[0]
    row, col = C.cell_to_rowcol(kids, 6)
    assert len(set(zip(row.tolist(), col.tolist()))) == 64
    np.testing.assert_array_equal(C.rowcol_to_cell(image, row, col, 9), kids)


@settings(max_examples=200, deadline=None)
@given(lat=st.floats(-90, 90), lng=st.floats(-180, 180), image_level=st.integers(0, 26),
       gap=st.integers(0, 4))
def test_rowcol_round_trip(lat, lng, image_level, gap):
    level = image_level + gap
    cell = C.latlng_to_cell(lat, lng, level)
    image = C.cell_to_parent(cell, image_level)
    row, col = C.cell_to_rowcol(cell, image_level)
    assert 0 <= row < 2**gap and 0 <= col < 2**gap
    assert C.rowcol_to_cell(image, row, col, level) == cell


def test_rowcol_neighbours_are_adjacent():
    """Pixels next to each other in the image are cells that share an edge."""
    image = C.latlng_to_cell(37.33, -121.89, 8)
    r, c = np.meshgrid(np.arange(16), np.arange(15), indexing="ij")
    left = C.rowcol_to_cell(image, r, c, 12)
    right = C.rowcol_to_cell(image, r, c + 1, 12)
    for a, b in zip(left.ravel(), right.ravel()):
        neighbours = [n.id() for n in s2sphere.CellId(int(a)).get_edge_neighbors()]
        assert int(b) in neighbours


def test_rowcol_bad_input():
    image = C.latlng_to_cell(0.0, 0.0, 8)
    with pytest.raises(ValueError, match="row and col"):
        C.rowcol_to_cell(image, 16, 0, 12)
    with pytest.raises(ValueError, match="finer"):
        C.cell_to_rowcol(image, 9)


def test_read_only_inputs_reuse_the_kernels_compiled_for_writable_ones():
    """pandas' copy-on-write values are read-only; numba would compile each kernel again for them."""
    import numba
    import pandas as pd

    from geos2vec import _s2

    cells = C.latlng_to_cell(np.array([40.7, -33.9, 51.5]), np.array([-74.0, 151.2, -0.1]), 12)
    series = pd.Series(cells)
    values = series.to_numpy()
    values.flags.writeable = False  # as pandas' copy-on-write hands it out (pandas >= 3), also on older pandas
    np.testing.assert_array_equal(C.get_level(values), [12, 12, 12])
    np.testing.assert_array_equal(C.cell_to_parent(values, 8), C.cell_to_parent(cells.copy(), 8))
    lat = pd.Series([40.7, -33.9, 51.5]).to_numpy()
    lng = pd.Series([-74.0, 151.2, -0.1]).to_numpy()
    np.testing.assert_array_equal(C.latlng_to_cell(lat, lng, 12), cells)
    for kernel in (_s2.level_kernel, _s2.parent_kernel, _s2.is_valid_kernel, _s2.latlng_to_cell_kernel):
        arrays = [t for sig in kernel.signatures for t in sig if isinstance(t, numba.types.Array)]
        assert arrays and all(t.mutable for t in arrays), kernel
    assert not values.flags.writeable and not lat.flags.writeable  # the caller's arrays are left as they were
    assert not C._as_cells(values).flags.writeable  # only the kernels see a writable view, never the caller
    np.testing.assert_array_equal(series.to_numpy(), cells)


def test_serial_twins_of_the_parallel_kernels_agree_with_them():
    """Inputs under PARALLEL_MIN run a kernel's serial twin (cheaper to compile); both give the same bits."""
    from geos2vec import _s2

    n = _s2.PARALLEL_MIN + 1000
    rng = np.random.default_rng(9)
    lat, lng = rng.uniform(-89, 89, n), rng.uniform(-179, 179, n)
    chunks = np.array_split(np.arange(n), 40)  # each chunk below the threshold: the serial path
    assert max(map(len, chunks)) < _s2.PARALLEL_MIN
    cells = C.latlng_to_cell(lat, lng, 14)
    np.testing.assert_array_equal(np.concatenate([C.latlng_to_cell(lat[c], lng[c], 14) for c in chunks]), cells)
    for fn in (lambda x: C.cell_to_parent(x, 9), C.get_level, C.is_valid_cell, lambda x: C.cell_to_latlng(x)[0],
               C.cell_to_boundary, lambda x: C.grid_disk(x, 1), lambda x: C.cell_to_face_ij(x)[1],
               lambda x: C.cell_to_children(C.cell_to_parent(x, 13), 14)):
        np.testing.assert_array_equal(np.concatenate([fn(cells[c]) for c in chunks]), fn(cells))
    for kernel in (_s2.latlng_to_cell_kernel, _s2.parent_kernel, _s2.vertices_kernel):
        assert kernel.parallel.signatures and kernel.serial.signatures  # both paths ran
