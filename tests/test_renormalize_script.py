"""scripts/renormalize_model.py: a model in other normalization units is the same function of the counts."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from geos2vec.model import S2VecModel  # noqa: E402
from geos2vec.model.data import make_dataset  # noqa: E402
from geos2vec.model.reconstruction import draw_noise  # noqa: E402
from geos2vec.normalize import FeatureStats  # noqa: E402
from test_model import TINY, synthetic_images  # noqa: E402
from conftest import load_script  # noqa: E402


@pytest.fixture(scope="module")
def script():
    return load_script("renormalize_model")


def test_renormalized_model_embeds_the_same_and_reconstructs_in_the_new_units(script):
    images = synthetic_images(n_images=4, seed=5)
    model = S2VecModel(TINY.replace(log_counts=True)).build(images)
    old = model.stats
    before = model.embed(images, mode="tiled", as_frame=False)
    x_old = next(iter(make_dataset(images, old, batch_size=100)))["x"].numpy()
    noise = draw_noise(np.random.default_rng(0), *x_old.shape[:2])
    rec_old = np.asarray(model.keras_model.reconstruct(x_old, noise)["pred"])
    k = len(model.channels)
    new = FeatureStats(list(model.channels), 7, old.mean + np.linspace(-0.5, 1.0, k),
                       old.m2 * np.linspace(0.3, 5.0, k) * 7 / max(int(np.max(old.count)), 1), log1p=True)
    script.renormalize(model, new)
    assert model.stats is new
    after = model.embed(images, mode="tiled", as_frame=False)
    np.testing.assert_allclose(after.values, before.values, rtol=1e-4, atol=1e-4)
    x_new = next(iter(make_dataset(images, new, batch_size=100)))["x"].numpy()
    np.testing.assert_allclose(x_new, (x_old * old.std + old.mean - new.mean) / new.std, rtol=1e-4, atol=1e-5)
    rec_new = np.asarray(model.keras_model.reconstruct(x_new, noise)["pred"])
    np.testing.assert_allclose(rec_new, (rec_old * old.std + old.mean - new.mean) / new.std, rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="channels"):
        script.renormalize(model, FeatureStats(["a"], 1, np.zeros(1), np.ones(1), log1p=True))
