"""Branches of the fusion and location Keras layers the rest of the suite never ran, and their hostile inputs.

References: NumPy concatenations, sums and products of the layers' own weights, shapes worked out by hand.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from geos2vec.errors import InvalidInputError

pytest.importorskip("keras")

from geos2vec import fusion as F  # noqa: E402
from geos2vec.location_layers import LocationEncoder  # noqa: E402

rng = np.random.default_rng(3)
A = rng.standard_normal((5, 3)).astype("float32")
B = rng.standard_normal((5, 3)).astype("float32")
H = rng.standard_normal((2, 5, 4)).astype("float32")  # an input with a heads axis (2 heads)


def test_concat_of_one_or_of_head_inputs_and_its_output_shapes():
    np.testing.assert_array_equal(np.asarray(F.Concat()([A])), A)
    both = np.stack([A, 2 * A])
    np.testing.assert_allclose(np.asarray(F.Concat(heads=2)([both, H])), np.concatenate([both, H], axis=-1))
    layer = F.Concat()
    assert layer.compute_output_shape([(None, 3), (None, 4)]) == (None, 7)
    assert layer.compute_output_shape([(None, 3), (2, None, 4)]) == (2, None, 7)
    with pytest.raises(InvalidInputError, match=r"\(batch, d\) or \(heads, batch, d\) tensors, got ranks \[1, 2\]"):
        layer([A[0], A])  # a rank-1 input raised a bare StopIteration


def test_weighted_add_refuses_another_number_of_inputs_than_it_was_built_for():
    layer = F.fusion_layer("weighted")
    np.testing.assert_allclose(np.asarray(layer([A, B, A])), (2 * A + B) / 3, rtol=1e-6)
    # two inputs silently summed the first two weights (a third of each), four failed inside TensorFlow
    for inputs in ([A, B], [A, B, A, B]):
        with pytest.raises(InvalidInputError, match=rf"WeightedAdd was built for 3 inputs, got {len(inputs)}"):
            layer(inputs)
    heads = F.WeightedAdd(heads=2)
    assert heads.compute_output_shape([(None, 3), (None, 3)]) == (2, None, 3)
    with pytest.raises(InvalidInputError, match="WeightedAdd expects a non-empty list of tensors, got one tensor"):
        F.WeightedAdd()(A)  # a bare TypeError from build


def test_project_add_with_head_inputs_is_the_per_head_product():
    layer = F.ProjectAdd(2, heads=2)
    out = np.asarray(layer([A, H]))
    k0, k1, b = (np.asarray(v) for v in (layer.kernels[0], layer.kernels[1], layer.bias))
    for m in range(2):
        np.testing.assert_allclose(out[m], A @ k0[m] + H[m] @ k1[m] + b[m], rtol=1e-5, atol=1e-5)
    assert layer.compute_output_shape([(None, 3), (2, None, 4)]) == (2, None, 2)
    assert F.ProjectAdd(6).compute_output_shape([(None, 3), (None, 4)]) == (None, 6)
    assert F.ProjectAdd(6, heads=3).compute_output_shape([(None, 3)]) == (3, None, 6)
    with pytest.raises(InvalidInputError, match=r"ProjectAdd was built for 2 inputs, got 1"):
        layer([A])
    with pytest.raises(InvalidInputError, match="ProjectAdd expects a non-empty list of tensors, got one tensor"):
        F.ProjectAdd(2)(A)


@pytest.mark.parametrize("value", [0, -1, 2.5, "abc", None, float("nan"), float("inf"), True, [2]])
def test_units_and_heads_must_be_positive_integers(value):
    """'abc', None, NaN and inf raised int()'s bare ValueError / TypeError / OverflowError."""
    if value is not None:
        message = f"heads must be None or a positive integer, got {value!r}"
        with pytest.raises(InvalidInputError, match=re.escape(message)):
            F.fusion_layer("concat", heads=value)
    with pytest.raises(InvalidInputError, match=re.escape(f"units must be a positive integer, got {value!r}")):
        F.fusion_layer("project", units=value) if value is not None else F.ProjectAdd(value)
    assert F.ProjectAdd(np.int64(4), heads=2.0).get_config()["units"] == 4


def test_fusion_factory_refuses_unknown_kinds_and_project_without_units():
    for kind in ("sum", None, ["concat"]):
        with pytest.raises(InvalidInputError, match=r"unknown fusion .*choose one of \['concat', 'weighted'"):
            F.fusion_layer(kind)
    with pytest.raises(InvalidInputError, match="fusion='project' needs units"):
        F.fusion_layer("project")
    assert isinstance(F.fusion_layer("weighted", heads=2), F.WeightedAdd)


def test_location_encoder_shapes_and_its_refusal_of_other_inputs():
    layer = LocationEncoder("theory", frequency_num=3)
    assert layer.compute_output_shape((None, 7, 2)) == (None, 7, 18)  # theory: 6 per scale
    lat_lng = rng.uniform(-60, 60, (4, 3, 2))
    out = np.asarray(layer(lat_lng))
    flat = np.asarray(layer(lat_lng.reshape(-1, 2)))
    assert out.shape == (4, 3, 18)
    np.testing.assert_array_equal(out.reshape(-1, 18), flat)
    with pytest.raises(InvalidInputError, match=r"inputs of shape \(\.\.\., 2\) = \[lat, lng\], got \(4, 3\)"):
        layer(np.zeros((4, 3)))
