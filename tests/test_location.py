import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geos2vec import cell_to_latlng, latlng_to_cell
from geos2vec import location as L

DEG = 180.0 / math.pi


def test_scales_geometric():
    np.testing.assert_allclose(L.scales(3, 0.01, 1.0), [0.01, 0.1, 1.0])
    np.testing.assert_allclose(L.scales(1, 0.5, 2.0), [0.5])
    with pytest.raises(ValueError, match="min_radius"):
        L.scales(4, 0.0, 1.0)
    with pytest.raises(ValueError, match="min_radius"):
        L.scales(4, 2.0, 1.0)
    with pytest.raises(ValueError, match="frequency_num"):
        L.scales(0)


def test_wrap_hand_values():
    # lng 90° -> sin 1, cos 0; lat 30° -> 2*lat = 60°
    out = L.wrap(30.0, 90.0)
    np.testing.assert_allclose(out, [1.0, 0.0, math.sqrt(3) / 2, 0.5], atol=1e-12)
    assert out.shape == (4,)


def test_sinusoidal_hand_values():
    lat, lng = 10.0, 20.0
    out = L.sinusoidal(lat, lng, frequency_num=2)
    a, b = math.radians(lng), 2 * math.radians(lat)
    expect = [math.sin(a), math.cos(a), math.sin(b), math.cos(b),
              math.sin(2 * a), math.cos(2 * a), math.sin(2 * b), math.cos(2 * b)]
    np.testing.assert_allclose(out, expect, atol=1e-12)


def test_grid_hand_values():
    lam, phi = 0.3, 0.2  # radians
    out = L.space2vec_grid(phi * DEG, lam * DEG, frequency_num=2, min_radius=0.5, max_radius=1.0)
    expect = []
    for f in (2.0, 1.0):  # 1 / r_s, finest first
        expect += [math.sin(lam * f), math.cos(lam * f), math.sin(phi * f), math.cos(phi * f)]
    np.testing.assert_allclose(out, expect, atol=1e-12)


def test_theory_hand_values():
    lam, phi = -0.4, 0.7
    out = L.space2vec_theory(phi * DEG, lam * DEG, frequency_num=1, min_radius=0.25, max_radius=0.25)
    f = 4.0
    p1 = lam
    p2 = -0.5 * lam + math.sqrt(3) / 2 * phi
    p3 = -0.5 * lam - math.sqrt(3) / 2 * phi
    expect = []
    for p in (p1, p2, p3):
        expect += [math.sin(p * f), math.cos(p * f)]
    np.testing.assert_allclose(out, expect, atol=1e-12)
    assert L.output_dim("theory", 16) == 96


def test_sphere_hand_values():
    lam, phi = 1.1, -0.6
    c = L.sphere2vec_sphereC(phi * DEG, lam * DEG, frequency_num=2, min_radius=0.5, max_radius=1.0)
    expect = []
    for f in (2.0, 1.0):
        expect += [math.sin(phi * f), math.cos(phi * f) * math.cos(lam * f), math.cos(phi * f) * math.sin(lam * f)]
    np.testing.assert_allclose(c, expect, atol=1e-12)
    m = L.sphere2vec_sphereM(phi * DEG, lam * DEG, frequency_num=1, min_radius=0.5, max_radius=0.5)
    f = 2.0
    expect = [
        math.sin(phi * f),
        math.cos(phi * f) * math.cos(lam),
        math.cos(phi) * math.cos(lam * f),
        math.cos(phi * f) * math.sin(lam),
        math.cos(phi) * math.sin(lam * f),
    ]
    np.testing.assert_allclose(m, expect, atol=1e-12)


def test_sphereC_coarsest_scale_is_unit_vector():
    # r = 1 rad: sphereC is the 3-d point on the unit sphere (z, x, y)
    lat, lng = 37.3, -121.9
    v = L.sphere2vec_sphereC(lat, lng, frequency_num=1, min_radius=1.0, max_radius=1.0)
    phi, lam = math.radians(lat), math.radians(lng)
    np.testing.assert_allclose(v, [math.sin(phi), math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam)])


@settings(max_examples=30, deadline=None)
@given(
    lat=st.floats(-90, 90),
    lng=st.floats(-180, 180),
    s=st.integers(1, 6),
    rmin=st.floats(1e-4, 1e-1),
)
def test_properties(lat, lng, s, rmin):
    c = L.sphere2vec_sphereC(lat, lng, frequency_num=s, min_radius=rmin, max_radius=1.0).reshape(s, 3)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-9)
    for method in ("grid", "theory", "sinusoidal"):
        e = L.encode_location(lat, lng, method, frequency_num=s, min_radius=rmin, max_radius=1.0).reshape(-1, 2)
        np.testing.assert_allclose(np.hypot(e[:, 0], e[:, 1]), 1.0, atol=1e-9)  # (sin, cos) pairs
    assert L.encode_location(lat, lng, "sphereM", frequency_num=s, min_radius=rmin).shape == (5 * s,)


def test_vectorized_shape_and_bad_input():
    lat = np.array([[10.0, 20.0], [30.0, 40.0]])
    out = L.space2vec_theory(lat, lat, frequency_num=3)
    assert out.shape == (2, 2, 18)
    np.testing.assert_allclose(out[1, 0], L.space2vec_theory(30.0, 30.0, frequency_num=3))
    with pytest.raises(ValueError, match=r"NaN or infinite at positions \[0\]"):
        L.encode_location([np.nan], [0.0])
    with pytest.raises(ValueError, match=r"latitude\(s\) outside \[-90, 90\] at positions \[0\]"):
        L.encode_location([95.0], [0.0])
    with pytest.raises(ValueError, match="unknown location encoder"):
        L.encode_location([0.0], [0.0], "sphereX")
    assert L.encode_location(0.0, 0.0, "spherec", frequency_num=2).shape == (6,)  # case-insensitive


def test_encode_cells_table():
    cells = latlng_to_cell(np.array([37.3, 34.1]), np.array([-121.9, -118.3]), 12)
    table = L.encode_cells(cells, "grid", frequency_num=2)
    assert table.index.name == "cell_id" and table.index.dtype == np.uint64
    assert list(table.index) == list(cells)
    lat, lng = cell_to_latlng(cells)
    np.testing.assert_allclose(table.to_numpy(), L.space2vec_grid(lat, lng, frequency_num=2))
    assert list(table.columns[:2]) == ["loc_grid_0", "loc_grid_1"]


@pytest.mark.parametrize("method", L.METHODS)
def test_keras_layer_matches_numpy(method):
    rng = np.random.default_rng(0)
    latlng = np.column_stack([rng.uniform(-80, 80, 7), rng.uniform(-180, 180, 7)])
    layer = L.LocationEncoder(method, frequency_num=3, min_radius=1e-3, max_radius=1.0)
    out = np.asarray(layer(latlng))  # float64 input
    ref = L.encode_location(latlng[:, 0], latlng[:, 1], method, frequency_num=3, min_radius=1e-3, max_radius=1.0)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert out.shape == (7, L.output_dim(method, 3))
    clone = L.LocationEncoder.from_config(layer.get_config())
    assert clone.method == method and clone.min_radius == 1e-3
    batched = np.asarray(layer(latlng.reshape(7, 1, 2)))
    assert batched.shape == (7, 1, L.output_dim(method, 3))


def test_frequency_num_is_validated_alike_everywhere():
    from geos2vec.errors import InvalidInputError

    assert L.output_dim("theory", 3) == 18 and L.output_dim("sphereM", 2) == 10 and L.output_dim("wrap", 9) == 4
    for bad in (2.5, 0, -1, True, "3"):
        with pytest.raises(InvalidInputError, match=r"frequency_num must be a positive integer"):
            L.output_dim("grid", bad)
        with pytest.raises(InvalidInputError, match=r"frequency_num must be a positive integer"):
            L.encode_location(34.0, -118.0, "sinusoidal", frequency_num=bad)
    pytest.importorskip("keras")
    with pytest.raises(ValueError, match=r"got 2\.5"):  # the layer does not truncate it to 2
        L.LocationEncoder("theory", frequency_num=2.5)
    layer = L.LocationEncoder("theory", frequency_num=np.int64(2))
    assert layer.frequency_num == 2 and layer.output_features == 12


@pytest.mark.parametrize("method", ["wrap", "sinusoidal"])
@pytest.mark.parametrize("bad, match", [({"frequency_num": 0}, "frequency_num"),
                                        ({"frequency_num": 2.5}, "frequency_num"),
                                        ({"frequency_num": "4"}, "frequency_num"), ({"min_radius": -1.0}, "min_radius"),
                                        ({"min_radius": 2.0, "max_radius": 1.0}, "min_radius"),
                                        ({"max_radius": float("nan")}, "max_radius"),
                                        ({"min_radius": "fine"}, "radius")])
def test_parameters_a_method_does_not_use_are_still_checked(method, bad, match):
    """``wrap`` uses no scales and ``sinusoidal`` no radii: a bad value meant for them is still a mistake."""
    from geos2vec.errors import Geos2VecError

    with pytest.raises(Geos2VecError, match=match):
        L.encode_location(10.0, 20.0, method, **bad)
    with pytest.raises(Geos2VecError, match=match):
        L.LocationEncoder(method, **bad)
    if set(bad) == {"frequency_num"}:
        with pytest.raises(Geos2VecError, match=match):
            L.output_dim(method, bad["frequency_num"])


@pytest.mark.parametrize("method", ["wrap", "sinusoidal"])
def test_valid_unused_parameters_change_nothing(method):
    lat, lng = np.array([10.0, -33.5]), np.array([20.0, 151.2])
    base = L.encode_location(lat, lng, method, frequency_num=3)
    other = L.encode_location(lat, lng, method, frequency_num=3, min_radius=0.3, max_radius=0.9)
    np.testing.assert_array_equal(base, other)
    # wrap: sin/cos of lng and of 2 lat, whatever frequency_num says
    if method == "wrap":
        np.testing.assert_allclose(L.encode_location(lat, lng, method, frequency_num=7)[:, 0], np.sin(np.radians(lng)))
        assert L.output_dim("wrap", 7) == 4 and L.LocationEncoder("wrap", frequency_num=7).output_features == 4
