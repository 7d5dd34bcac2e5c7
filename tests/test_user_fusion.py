"""A researcher reproducing S2Vec-Loc: location encoders and fusion layers against NumPy references."""

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from geos2vec import cell_to_latlng  # noqa: E402
from geos2vec import location as L  # noqa: E402
from geos2vec.errors import InvalidInputError  # noqa: E402
from geos2vec.fusion import fusion_layer  # noqa: E402


def _build(layer, dims, batch=3):
    layer([np.zeros((batch, d), "float32") for d in dims])
    return [np.asarray(k) for k in layer.kernels]


def test_project_heads_kernels_are_drawn_at_the_single_layer_scale():
    # glorot_uniform on (heads, d, units) counted heads * (d + units) fans: every head sqrt(heads) too small
    d, units, heads = 96, 64, 16
    limit = math.sqrt(6.0 / (d + units))  # the Dense / single-layer glorot limit
    single = _build(fusion_layer("project", units=units), [d, 8])[0]
    multi = _build(fusion_layer("project", units=units, heads=heads), [d, 8])[0]
    assert multi.shape == (heads, d, units)
    for w in (single, *multi):  # uniform(-limit, limit): max near the limit, std limit / sqrt(3)
        assert 0.95 * limit < np.abs(w).max() <= limit
        assert abs(w.std() - limit / math.sqrt(3)) < 0.05 * limit
    assert not np.array_equal(multi[0], multi[1])  # heads independent


def test_project_kernels_of_equal_inputs_are_drawn_apart():
    # one initializer object with one seed gave kernel_0 == kernel_1 for inputs of the same width
    a = _build(fusion_layer("project", units=8), [4, 4])
    assert not np.array_equal(a[0], a[1])
    h = _build(fusion_layer("project", units=8, heads=2), [4, 4])
    assert not np.array_equal(h[0], h[1])


def test_project_seed_repeats_its_kernels():
    s1 = _build(fusion_layer("project", units=8, seed=7), [4, 4])
    s2 = _build(fusion_layer("project", units=8, seed=7), [4, 4])
    s3 = _build(fusion_layer("project", units=8, seed=8), [4, 4])
    assert not np.array_equal(s1[0], s1[1])
    np.testing.assert_array_equal(s1[0], s2[0])
    np.testing.assert_array_equal(s1[1], s2[1])
    np.testing.assert_array_equal(s1[1], s3[0])  # kernel i is seeded seed + i
    seeded = keras.initializers.GlorotUniform(seed=3)  # an initializer seeded by the user: seed + i as well
    u = _build(fusion_layer("project", units=8, kernel_initializer=seeded), [4, 4])
    assert not np.array_equal(u[0], u[1])
    np.testing.assert_array_equal(u[0], _build(fusion_layer("project", units=8, seed=3), [4, 4])[0])
    with pytest.raises(InvalidInputError, match="seed"):
        fusion_layer("project", units=8, seed=1.5)


def test_project_seed_survives_get_config():
    layer = fusion_layer("project", units=5, seed=11)
    clone = type(layer).from_config(layer.get_config())
    np.testing.assert_array_equal(_build(layer, [3, 2])[1], _build(clone, [3, 2])[1])


def test_concat_refuses_inputs_of_other_head_counts():
    three = np.ones((3, 5, 2), "float32")
    four = np.ones((4, 5, 2), "float32")
    with pytest.raises(InvalidInputError, match=r"Concat\(heads=3\).*4 heads"):
        fusion_layer("concat", heads=3)([four, np.ones((5, 3), "float32")])  # gave 4 heads silently
    with pytest.raises(InvalidInputError, match=r"different numbers of heads \[3, 4\]"):
        fusion_layer("concat")([three, four])
    out = np.asarray(fusion_layer("concat", heads=3)([three, np.full((5, 1), 2.0, "float32")]))
    assert out.shape == (3, 5, 3)
    np.testing.assert_array_equal(out[..., 2], 2.0)


# ----------------------------------------------------------------------------------------------- location encoders
def _reference(lat_deg, lng_deg, method, S=16, rmin=1e-4, rmax=1.0):
    """An independent loop over scales of the documented formulas (radians, scale-major, finest first)."""
    lam, phi = math.radians(lng_deg), math.radians(lat_deg)
    if method == "wrap":
        return [math.sin(lam), math.cos(lam), math.sin(2 * phi), math.cos(2 * phi)]
    out = []
    for s in range(S):
        if method == "sinusoidal":
            f = 2.0 ** s
            out += [math.sin(f * lam), math.cos(f * lam), math.sin(f * 2 * phi), math.cos(f * 2 * phi)]
            continue
        f = 1.0 / (rmin * (rmax / rmin) ** (s / (S - 1)))
        if method in ("grid", "theory"):
            dirs = [(1, 0), (0, 1)] if method == "grid" else [(1, 0), (-0.5, math.sqrt(3) / 2),
                                                                  (-0.5, -math.sqrt(3) / 2)]
            for ax, ay in dirs:
                out += [math.sin((ax * lam + ay * phi) * f), math.cos((ax * lam + ay * phi) * f)]
        elif method == "sphereC":
            out += [math.sin(phi * f), math.cos(phi * f) * math.cos(lam * f), math.cos(phi * f) * math.sin(lam * f)]
        else:
            out += [math.sin(phi * f), math.cos(phi * f) * math.cos(lam), math.cos(phi) * math.cos(lam * f),
                    math.cos(phi * f) * math.sin(lam), math.cos(phi) * math.sin(lam * f)]
    return out


@pytest.mark.parametrize("method", L.METHODS)
def test_default_encoders_match_a_loop_over_the_documented_formulas(method):
    # NYC, Sydney, near the antimeridian and the south pole; lat first, then lng
    points = [(40.7128, -74.0060), (-33.8688, 151.2093), (64.0, 179.999), (-89.5, -45.0)]
    lat, lng = np.array(points).T
    out = L.encode_location(lat, lng, method)
    assert out.shape == (4, L.output_dim(method, 16)) and out.dtype == np.float64
    for row, (a, b) in zip(out, points):
        np.testing.assert_allclose(row, _reference(a, b, method), atol=1e-9)
    table = L.encode_cells(np.array([0x89C2590000000000], dtype=np.uint64), method)  # a level-10 cell in Manhattan
    clat, clng = cell_to_latlng(table.index.to_numpy())
    np.testing.assert_allclose(table.to_numpy()[0], _reference(clat[0], clng[0], method), atol=1e-9)


def test_location_encoder_refuses_a_symbolic_input_of_another_width():
    # keras.Input((3,)) was accepted and the model only failed when fed
    with pytest.raises(InvalidInputError, match=r"shape \(\.\.\., 2\) = \[lat, lng\], got \(None, 3\)"):
        L.LocationEncoder("theory")(keras.Input((3,)))
    assert L.LocationEncoder("theory", frequency_num=2)(keras.Input((5, 2))).shape == (None, 5, 12)


def test_location_encoder_keeps_float64_degrees_at_level_12_scale():
    # two level-12 cell centres ~2 km apart: the layer (float64 inside) matches NumPy to float32 output rounding
    lat = np.array([40.7128, 40.7128 + 1e-5])
    lng = np.array([-74.0060, -74.0060])
    layer = L.LocationEncoder("theory")
    out = np.asarray(layer(np.c_[lat, lng]))
    np.testing.assert_allclose(out, L.encode_location(lat, lng), atol=1e-6)
    assert np.abs(out[0] - out[1]).max() > 1e-3  # 1e-5 degrees moves the finest scale visibly


def test_fused_blocks_fed_in_another_order_or_width_are_named():
    emb, loc = np.ones((3, 256), "float32"), np.ones((3, 96), "float32")
    project = fusion_layer("project", units=8)
    project([emb, loc])
    with pytest.raises(InvalidInputError, match=r"built for inputs of widths \[256, 96\], got widths \[96, 256\]"):
        project([loc, emb])  # a raw MatMul error
    weighted = fusion_layer("weighted")
    np.testing.assert_allclose(np.asarray(weighted([emb, 3 * emb])), 2.0)  # w = 1/2 each: (1 + 3) / 2
    with pytest.raises(InvalidInputError, match=r"equal feature dims, got \[256, 96\]"):
        weighted([emb, loc])  # a raw broadcast error


def test_the_named_encoders_of_the_docs_table_are_public_and_documented():
    # docs/evaluate.md lists wrap, sinusoidal, space2vec_*, sphere2vec_* as functions; they were missing from
    # __all__ (so from the API reference and `import *`) and had a one-line docstring without parameters
    names = ["wrap", "sinusoidal", "space2vec_grid", "space2vec_theory", "sphere2vec_sphereC", "sphere2vec_sphereM"]
    assert set(names) <= set(L.__all__)
    for name, method in zip(names, L.METHODS):
        fn = getattr(L, name)
        assert "Parameters" in (fn.__doc__ or "") and repr(method) in fn.__doc__
        assert fn.__annotations__["return"] in ("np.ndarray", np.ndarray)
        np.testing.assert_array_equal(fn(12.5, -60.25, frequency_num=3), L.encode_location(12.5, -60.25, method,
                                                                                           frequency_num=3))


_JAX_SCRIPT = """
import warnings
import jax
import numpy as np
from geos2vec import location as L
x = np.array([[40.7128, -74.0060], [37.3, -121.9], [-33.86, 151.2093]])
ref = L.encode_location(x[:, 0], x[:, 1])
for x64 in (False, True):
    jax.config.update("jax_enable_x64", x64)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = np.asarray(L.LocationEncoder("theory")(x))
    print(np.abs(out - ref).max(), any(str(w.message).startswith("LocationEncoder") for w in seen))
"""


def test_location_encoder_is_exact_under_jax_too():
    # Keras' JAX backend computes ops.sin/cos of float64 in float32: the finest scale's ~1e4 rad angles lost
    # ~1e-3 rad even with jax_enable_x64 (TensorFlow kept float64); without x64 the layer now says so
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-c", _JAX_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    (diff32, warned32), (diff64, warned64) = [line.split() for line in run.stdout.strip().splitlines()]
    assert float(diff32) > 1e-5 and warned32 == "True"  # float32 degrees: not exact, and the warning names the fix
    assert float(diff64) < 1e-6 and warned64 == "False"  # was 6.7e-4


def test_the_evaluation_mlp_fusion_layer_is_seeded():
    """``evaluate(..., fusion="project")`` built its fusion layer without a seed: its starting kernels changed in
    every fresh process, against docs/evaluate.md's "identical in a fresh process". Checked in two processes."""
    import subprocess
    import sys

    code = ("import numpy as np; from geos2vec.evaluate.mlp_layers import ParallelMLP; "
            "m = ParallelMLP([4, 5], 2, 8, [0, 0], 'project', 6, seed=1); "
            "m([np.ones((3, 4), 'float32'), np.ones((3, 5), 'float32')]); "
            "print(repr(float(np.asarray(m.fuse.kernels[0]).sum())), repr(float(np.asarray(m.w1).sum())))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    assert runs[0] == runs[1]
