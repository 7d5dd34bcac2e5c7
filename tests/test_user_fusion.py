"""A researcher reproducing S2Vec-Loc: location encoders and fusion layers against NumPy references."""

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

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
