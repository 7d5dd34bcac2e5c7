import numpy as np
import pytest

from geos2vec import fusion as F

rng = np.random.default_rng(0)
X1 = rng.standard_normal((5, 3)).astype("float32")
X2 = rng.standard_normal((5, 3)).astype("float32")
X3 = rng.standard_normal((5, 4)).astype("float32")


def test_concat():
    out = np.asarray(F.Concat()([X1, X3]))
    np.testing.assert_allclose(out, np.concatenate([X1, X3], axis=1))
    # heads: shared inputs are broadcast when another input has a heads axis
    stacked = np.stack([X3, 2 * X3])
    out = np.asarray(F.Concat(heads=2)([X1, stacked]))
    assert out.shape == (2, 5, 7)
    np.testing.assert_allclose(out[1], np.concatenate([X1, 2 * X3], axis=1))


def test_weighted_add():
    layer = F.WeightedAdd()
    np.testing.assert_allclose(np.asarray(layer([X1, X2])), (X1 + X2) / 2, rtol=1e-6)
    layer.w.assign(np.array([2.0, -1.0], "float32"))
    np.testing.assert_allclose(np.asarray(layer([X1, X2])), 2 * X1 - X2, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="equal feature dims"):
        F.WeightedAdd()([X1, X3])


def test_weighted_add_heads():
    layer = F.WeightedAdd(heads=2)
    layer([X1, X2])
    layer.w.assign(np.array([[1.0, 0.0], [0.5, 3.0]], "float32"))
    out = np.asarray(layer([X1, X2]))
    assert out.shape == (2, 5, 3)
    np.testing.assert_allclose(out[0], X1, rtol=1e-6)
    np.testing.assert_allclose(out[1], 0.5 * X1 + 3 * X2, rtol=1e-5, atol=1e-6)


def test_project_add():
    layer = F.ProjectAdd(2)
    layer([X1, X3])
    w1 = rng.standard_normal((3, 2)).astype("float32")
    w2 = rng.standard_normal((4, 2)).astype("float32")
    b = np.array([0.5, -1.0], "float32")
    layer.kernels[0].assign(w1)
    layer.kernels[1].assign(w2)
    layer.bias.assign(b)
    np.testing.assert_allclose(np.asarray(layer([X1, X3])), X1 @ w1 + X3 @ w2 + b, rtol=1e-5, atol=1e-5)


def test_project_add_heads_match_single():
    heads = F.ProjectAdd(2, heads=3)
    heads([X1, X3])
    out = np.asarray(heads([X1, X3]))
    assert out.shape == (3, 5, 2)
    for m in range(3):
        single = F.ProjectAdd(2)
        single([X1, X3])
        single.kernels[0].assign(np.asarray(heads.kernels[0])[m])
        single.kernels[1].assign(np.asarray(heads.kernels[1])[m])
        single.bias.assign(np.asarray(heads.bias)[m, 0])
        np.testing.assert_allclose(out[m], np.asarray(single([X1, X3])), rtol=1e-5, atol=1e-5)


def test_fusion_layer_factory_and_errors():
    assert type(F.fusion_layer("concat")).__name__ == "Concat"
    assert F.fusion_layer("project", units=4).units == 4
    with pytest.raises(ValueError, match="units"):
        F.fusion_layer("project")
    with pytest.raises(ValueError, match="unknown fusion"):
        F.fusion_layer("sum")
    with pytest.raises(ValueError, match="non-empty list"):
        F.Concat()(X1)
    cfg = F.ProjectAdd(3, heads=2).get_config()
    assert F.ProjectAdd.from_config(cfg).units == 3


def test_weighted_add_learns_weights():
    import keras

    keras.utils.set_random_seed(0)
    a = rng.standard_normal((64, 4)).astype("float32")
    b = rng.standard_normal((64, 4)).astype("float32")
    target = 2.0 * a - 0.5 * b
    ia, ib = keras.Input((4,)), keras.Input((4,))
    layer = F.WeightedAdd()
    model = keras.Model([ia, ib], layer([ia, ib]))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.fit([a, b], target, batch_size=64, epochs=200, verbose=0)
    np.testing.assert_allclose(np.asarray(layer.w), [2.0, -0.5], atol=0.05)
