"""A model loaded in compact form (the bundled one: NumPy weights) is saved compactly without Keras.

``S2VecModel.save(path, compact=True)`` required Keras and TensorFlow even though it only writes NumPy
weights: a minimal install (no ``[model]`` extra) could load the bundled model, but not save a copy of it.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import geos2vec
from geos2vec import load_model
from geos2vec.errors import InvalidInputError


def _hide_keras(monkeypatch):
    for name in ("keras", "tensorflow"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture()
def table():
    model = load_model("default")
    rng = np.random.default_rng(0)
    cells = np.unique(geos2vec.latlng_to_cell(34.0 + 0.1 * rng.random(60), -118.3 + 0.1 * rng.random(60), 12))
    import pandas as pd

    return pd.DataFrame(rng.poisson(0.5, (len(cells), len(model.channels))).astype(np.float32),
                        index=pd.Index(cells, name="cell_id"), columns=model.channels)


@pytest.mark.parametrize("name", ["copy", "copy.zip"])
def test_compact_save_of_a_compact_model_needs_no_keras(monkeypatch, tmp_path, table, name):
    model = load_model("default")
    assert model.keras_model is None and model.numpy_weights is not None
    _hide_keras(monkeypatch)
    model.save(tmp_path / name, compact=True)
    again = load_model(tmp_path / name)
    assert again.keras_model is None
    for key, value in model.numpy_weights.items():       # float16 on disk both times: the same values
        np.testing.assert_array_equal(again.numpy_weights[key], value, err_msg=key)
    da = geos2vec.rasterize(table)
    a = model.embed(da, mode="tiled")
    b = again.embed(da, mode="tiled")
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if name == "copy":
        meta = json.loads((tmp_path / name / "metadata.json").read_text())
        assert meta["keras_version"] is None and meta["tensorflow_version"] is None  # none was there to record
        assert meta["weights_dtype"] == "float16"


def test_a_replaced_config_of_another_architecture_is_refused_not_saved(tmp_path):
    import dataclasses

    model = load_model("default")
    model.config = dataclasses.replace(model.config, embedding_dim=model.config.embedding_dim // 2)
    with pytest.raises(InvalidInputError):
        model.save(tmp_path / "bad", compact=True)
    assert not (tmp_path / "bad").exists()
