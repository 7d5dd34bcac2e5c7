"""geos2vec.cells as a geospatial user calls it: containers, missing values, tokens, coarse polygons.

References: s2sphere (ids, tokens, parents, neighbours), shapely (polygon containment and area), and the S2
definitions (S2CellId::FromToken accepts hex digits only).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, box

from geos2vec import cells as C
from geos2vec.errors import InvalidInputError, InvalidTypeError
from geos2vec.geometry_cells import row_cells


def ref_cell(lat, lng, level):
    return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(float(lat), float(lng))).parent(level).id()


def sphere_points(n, seed):
    rng = np.random.default_rng(seed)
    return np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n))), rng.uniform(-180.0, 180.0, n)


FACES = np.array([(2 * f + 1) << 60 for f in range(6)], dtype=np.uint64)  # the six level-0 cells


# --------------------------------------------------------------------------- containers
@pytest.mark.parametrize("empty", [[], (), np.array([]), np.empty((0, 2)), pd.Series([], dtype=float)])
def test_empty_inputs_give_empty_outputs(empty):
    shape = np.shape(empty)
    assert C.cell_to_token(empty).shape == shape
    assert C.is_valid_cell(empty).shape == shape and C.is_valid_cell(empty).dtype == bool
    assert C.get_level(empty).shape == shape
    assert C.cell_to_parent(empty, 3).shape == shape and C.cell_to_parent(empty, 3).dtype == np.uint64
    assert C.cell_to_latlng(empty)[0].shape == shape
    assert C.cell_to_boundary(empty).shape == shape + (4, 2)
    assert C.grid_disk(empty).shape == shape + (9,)
    assert C.cell_to_rowcol(empty, 0)[0].shape == shape
    assert len(C.cell_polygons(empty)) == 0


def test_nullable_and_object_ids_with_missing_values_say_so():
    ids = C.latlng_to_cell(np.array([40.7, -33.9]), np.array([-74.0, 151.2]), 12)
    for values in (pd.Series([int(ids[0]), None, int(ids[1])], dtype="UInt64", index=[10, 20, 30]),
                   pd.Series([int(ids[0].view(np.int64)), pd.NA, 1], dtype="Int64"),
                   np.array([int(ids[0]), None, int(ids[1])], dtype=object),
                   pd.array([int(ids[0]), None, int(ids[1])], dtype="UInt64")):
        with pytest.raises(InvalidInputError, match=r"missing .*positions \[1\].*dropna"):
            C.cell_to_latlng(values)
    # without missing values a nullable Series with any index gives the ids' own results
    ser = pd.Series(ids, dtype="UInt64", index=["b", "a"])
    np.testing.assert_array_equal(C.cell_to_token(ser), [s2sphere.CellId(int(c)).to_token() for c in ids])
    np.testing.assert_array_equal(C.cell_to_parent(ser, 5),
                                  [s2sphere.CellId(int(c)).parent(5).id() for c in ids])


def test_object_array_of_floats_is_refused_not_truncated():
    leaf = C.latlng_to_cell(40.748433, -73.985656, 30)
    as_float = float(leaf)  # 53-bit mantissa: another 64-bit integer
    assert int(as_float) != int(leaf)
    with pytest.raises(InvalidTypeError, match="floats"):
        C.cell_to_latlng(np.array([as_float], dtype=object))
    with pytest.raises(InvalidTypeError):
        C.get_level(np.array([int(leaf), 1.5], dtype=object))


def test_object_array_of_signed_ids_is_read_bit_for_bit_like_int64():
    lat, lng = sphere_points(50, seed=3)
    ids = C.latlng_to_cell(lat, lng, 16)
    signed = ids.view(np.int64)
    assert (signed < 0).any()  # faces 4 and 5 have the top bit set
    obj = np.array([int(v) for v in signed], dtype=object)
    expected = [s2sphere.CellId(int(c)).parent(9).id() for c in ids]
    np.testing.assert_array_equal(C.cell_to_parent(obj, 9), expected)
    np.testing.assert_array_equal(C.cell_to_parent(signed, 9), expected)
    assert C.is_valid_cell(np.array([-5], dtype=object)).tolist() == [False]
    with pytest.raises(InvalidInputError, match="64 bits"):
        C.is_valid_cell(np.array([2**70], dtype=object))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lat=st.floats(-90, 90), lng=st.floats(-180, 180), level=st.integers(0, 30))
def test_every_container_gives_the_s2sphere_result(lat, lng, level):
    expected = ref_cell(lat, lng, level)
    ids = np.array([C.latlng_to_cell(lat, lng, level)] * 3, dtype=np.uint64)
    assert int(ids[0]) == expected
    read_only = ids.view()  # read-only over writable memory, as pandas' copy-on-write values are (an array frozen
    read_only.flags.writeable = False  # at its owner compiles the kernels again, by design: see _s2.writable_view)
    containers = [ids, ids.view(np.int64), ids.astype(object), [int(v) for v in ids], read_only,
                  pd.Series(ids, index=[7, 3, 5]), pd.Series(ids, dtype="UInt64", index=list("xyz")),
                  pd.Series(ids.view(np.int64), dtype="Int64")]
    ref = s2sphere.CellId(expected)
    ref_ll = ref.to_lat_lng()
    for values in containers:
        np.testing.assert_array_equal(C.cell_to_token(values), [ref.to_token()] * 3)
        np.testing.assert_array_equal(C.get_level(values), [level] * 3)
        np.testing.assert_array_equal(C.cell_to_parent(values, level // 2), [ref.parent(level // 2).id()] * 3)
        clat, clng = C.cell_to_latlng(values)
        np.testing.assert_allclose(clat, ref_ll.lat().degrees, rtol=0, atol=1e-12)
        np.testing.assert_allclose(clng, ref_ll.lng().degrees, rtol=0, atol=1e-12)
    assert int(C.token_to_cell(ref.to_token())) == expected
    assert int(C.token_to_cell(ref.to_token().upper())) == expected
    if level <= 24:  # s2sphere is off by a cell next to cube corners at levels 25-30 (docs/cells.md)
        assert set(C.grid_disk(ids[:1], 1)[0].tolist()) == {expected} | {
            c.id() for c in ref.get_all_neighbors(level)}


# --------------------------------------------------------------------------- tokens
@pytest.mark.parametrize("token", ["0x89c259b", " 89c259b", "+89c259b", "89_c259b", "89c259b\n", "89c2 59b"])
def test_tokens_with_prefix_sign_or_spaces_are_refused(token):
    # S2CellId::FromToken accepts hex digits only; int(..., 16) shifted the digits after such a character by
    # 4 bits and decoded another cell, silently
    assert int(C.token_to_cell("89c259b")) == s2sphere.CellId.from_token("89c259b").id()
    with pytest.raises(InvalidInputError, match=r"positions \[1\].*strip"):
        C.token_to_cell(["89c259b", token])


# --------------------------------------------------------------------------- polygons
@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_coarse_cell_polygons_hold_their_points_and_tile_the_map(level):
    lat, lng = sphere_points(3000, seed=level)
    ref = np.array([ref_cell(a, b, level) for a, b in zip(lat, lng)], dtype=np.uint64)
    every = C.cell_to_children(FACES, level).ravel() if level else FACES
    polys = np.asarray(C.cell_polygons(every).values)
    assert shapely.is_valid(polys).all()
    # the cells tile the sphere: their areas in degrees add up to the whole map, 360 x 180
    assert shapely.area(polys).sum() == pytest.approx(360.0 * 180.0, rel=1e-6)
    own = polys[np.searchsorted(every, ref)]
    for shift in (0.0, 360.0):  # cells across the antimeridian reach past 180°
        hit = shapely.covers(own, shapely.points(lng + shift, lat))
        lng, lat, own = lng[~hit], lat[~hit], own[~hit]
    dist = shapely.distance(own, shapely.points(lng, lat))
    assert (dist < 1e-5).all(), f"{lat.size} points outside their cell's polygon, up to {dist.max():.4f}°"


def test_polar_faces_are_polar_caps():
    polys = C.cell_polygons(FACES)
    for f, sign in ((2, 1.0), (5, -1.0)):
        cap = polys.iloc[f]
        assert cap.is_valid and cap.bounds[0] == -180.0 and cap.bounds[2] == 180.0
        for lng in (-179.9, -90.0, 0.0, 90.0, 179.9):
            assert cap.covers(Point(lng, sign * 89.0)) and cap.covers(Point(lng, sign * 50.0))
            assert not cap.covers(Point(lng, sign * 30.0))  # below the cube corners' 35.26°


# --------------------------------------------------------------------------- row_cells and row/col
def test_row_cells_checks_level():
    geoms = gpd.GeoSeries([Point(-74, 40.7), LineString([(-74, 40.7), (-73.99, 40.71)]),
                           box(-74, 40.7, -73.99, 40.71)], crs=4326)
    with pytest.raises(InvalidTypeError, match="level"):
        row_cells(geoms, 12.0)
    with pytest.raises(InvalidInputError, match="level must be between 0 and 30"):
        row_cells(geoms, 31)
    row, cell, _ = row_cells(geoms, np.int64(12))
    assert int(cell[row == 0][0]) == ref_cell(40.7, -74, 12)


def test_rowcol_to_cell_huge_float_positions_raise_without_numpy_warnings():
    image = C.latlng_to_cell(40.7, -74.0, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InvalidInputError, match="out of range"):
            C.rowcol_to_cell(image, 1e20, 0, 12)
