"""Every Keras layer of geos2vec is a module-level class that round-trips through ``get_config``."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from geos2vec import fusion, location  # noqa: E402
from geos2vec.evaluate.mlp_layers import ParallelMLP  # noqa: E402
from geos2vec.fusion_layers import Concat, ProjectAdd, WeightedAdd  # noqa: E402
from geos2vec.location_layers import LocationEncoder  # noqa: E402

X = [np.arange(6, dtype="float32").reshape(3, 2), np.ones((3, 2), "float32")]


@pytest.mark.parametrize("layer", [Concat(), WeightedAdd(), ProjectAdd(4, heads=2),
                                   ParallelMLP([2, 2], heads=3, hidden=5, dropouts=[0.0, 0.1, 0.2],
                                               fusion="concat", fusion_units=4, seed=1)],
                         ids=lambda layer: type(layer).__name__)
def test_layer_is_module_level_and_round_trips(layer):
    cls = type(layer)
    assert cls.__qualname__ == cls.__name__                      # not defined inside a function
    out = np.asarray(layer(X))
    clone = cls.from_config(layer.get_config())
    clone(X)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(X)), out, rtol=1e-6)
    # the registered name resolves to the same class
    assert keras.saving.get_registered_object(f"geos2vec>{cls.__name__}") is cls


def test_lazy_names_are_the_module_level_classes():
    assert fusion.Concat is Concat and fusion.ProjectAdd is ProjectAdd
    assert location.LocationEncoder is LocationEncoder
    enc = LocationEncoder(method="theory", frequency_num=4)
    again = LocationEncoder.from_config(enc.get_config())
    ll = np.array([[40.7, -74.0], [0.0, 0.0]])
    np.testing.assert_allclose(np.asarray(again(ll)), np.asarray(enc(ll)))
    ref = location.encode_location(ll[:, 0], ll[:, 1], method="theory", frequency_num=4)
    np.testing.assert_allclose(np.asarray(enc(ll)), ref, rtol=1e-5, atol=1e-6)
