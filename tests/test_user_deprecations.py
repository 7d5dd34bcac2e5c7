"""A user on the newest stack who runs with deprecation warnings as errors (``-W error::DeprecationWarning``).

geos2vec's own calls into NumPy, pandas, xarray, shapely and Keras must not raise a DeprecationWarning,
FutureWarning or RuntimeWarning of those libraries: with warnings as errors each one stops the user's run.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest

import geos2vec
from geos2vec import raster

pytest.importorskip("tensorflow")

from geos2vec.model import S2VecConfig, S2VecModel  # noqa: E402

TINY = S2VecConfig(embedding_dim=8, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2, dropout=0.0,
                   batch_size=4, epochs=2, shuffle_buffer=0, validation_split=0.25, seed=3)
STRICT = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, RuntimeWarning)


@pytest.fixture(scope="module")
def images(shared_data):
    """Eight level-10 images (4 x 4 level-12 pixels) of three POI channels of Los Angeles."""
    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", geos2vec.errors.Geos2VecWarning)  # categories outside the ontology
        table = geos2vec.count_features(pois)
    table = table[["restaurant", "cafe", "bank"]]
    return raster.rasterize(table[table.sum(axis=1) > 0], image_level=10).isel(image=slice(0, 8))


def _strict(call):
    with warnings.catch_warnings():
        for category in STRICT:
            warnings.simplefilter("error", category)
        return call()


def test_fit_runs_with_deprecation_warnings_as_errors_and_trains_as_without(images, tmp_path):
    # compile_for_fit kept the optimizer's first state with keras.ops.convert_to_numpy(variable), i.e.
    # np.array(variable): Keras' (and TensorFlow's) __array__ take no copy=, so NumPy 2 warned
    # "__array__ implementation doesn't accept a copy keyword" once per optimizer variable, and fit raised
    assert images.sizes["image"] == 8
    strict = S2VecModel(TINY)
    history = _strict(lambda: strict.fit(images, verbose=0)).history
    again = _strict(lambda: strict.fit(images, verbose=0)).history  # same settings: the kept state is put back
    reference = S2VecModel(TINY).fit(images, verbose=0).history  # default warning filters
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    assert history["loss"] == reference["loss"] and history["val_loss"] == reference["val_loss"]
    assert again["loss"] != history["loss"]  # trained on from the first fit's weights, with a fresh optimizer
    # the kept first state: copies (not views of the live variables), the step counter at 0
    opt = strict.keras_model.optimizer
    kept = strict.keras_model._geos2vec_optimizer_initial
    assert len(kept) == len(opt.variables) and all(isinstance(k, np.ndarray) for k in kept)
    assert int(np.asarray(opt.iterations)) > 0
    step = [k for k, v in zip(kept, opt.variables) if v is opt.iterations]
    assert len(step) == 1 and int(step[0]) == 0
    # what docs/model.md says runs under the same filters: a compact save, its loading and embedding
    _strict(lambda: strict.save(tmp_path / "m", compact=True))
    loaded = _strict(lambda: geos2vec.load_model(tmp_path / "m"))
    got = _strict(lambda: loaded.embed(images))
    want = strict.embed(images)
    assert got.shape == want.shape == (int(images["observed"].sum()), TINY.embedding_dim)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=2e-2)  # float16 weights
