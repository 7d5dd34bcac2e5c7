"""The evaluation suite's embedding cache (``run_suite(cache_dir=...)``, ``geos2vec evaluate --cache``) was keyed
by the counts' values, not by their coverage: the same counts with another ``attrs["coverage"]`` (where the
source has data; outside it the pixels are unknown, not empty) embed differently but read the other's entry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec import latlng_to_cell
from geos2vec.coverage import set_coverage
from geos2vec.evaluate import suite
from geos2vec.evaluate.methods import model_embeddings
from geos2vec.options import set_options


@pytest.fixture(scope="module")
def model():
    """A small model with a missing token: uncovered pixels enter its encoder as a learned token, so the
    coverage changes its embeddings (the bundled model has none)."""
    from geos2vec.model import S2VecModel
    from geos2vec.normalize import FeatureStats
    from geos2vec.raster import rasterize

    _, counts = _counts(list("abcde"))
    return S2VecModel(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2, epochs=1,
                      seed=5, missing_token=True).build(rasterize(counts), stats=FeatureStats.fit(counts))


def _counts(channels):
    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(5), -121.95 + 0.02 * np.arange(5), indexing="ij")
    cells = np.unique(latlng_to_cell(lat.ravel(), lng.ravel(), 12))
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(rng.poisson(0.7, (len(cells), len(channels))).astype(np.float32),
                          index=pd.Index(cells, name="cell_id"), columns=list(channels))
    return cells, counts


def test_counts_with_another_coverage_miss_the_cache(model, tmp_path, monkeypatch):
    cells, counts = _counts(model.channels)
    wide = set_coverage(counts.copy(), shapely.box(-123.0, 36.5, -121.0, 38.5))    # the whole image and more
    tight = set_coverage(counts.copy(), shapely.box(-121.96, 37.29, -121.86, 37.39))  # the grid only
    calls = []
    monkeypatch.setattr(suite, "model_embeddings", lambda *a, **k: calls.append(1) or model_embeddings(*a, **k))
    with set_options(progress=False):
        first = suite._embeddings(cells, wide, model, ["contextual"], "S2Vec", tmp_path)
        second = suite._embeddings(cells, tight, model, ["contextual"], "S2Vec", tmp_path)
        reference = model_embeddings(cells, tight, model, ["contextual"])      # no cache involved
        again = suite._embeddings(cells, tight, model, ["contextual"], "S2Vec", tmp_path)
    assert len(calls) == 2                                  # the second coverage embedded; the third call read it
    name = "S2Vec (contextual)"
    pd.testing.assert_frame_equal(second[name], reference[name], check_exact=True)
    pd.testing.assert_frame_equal(again[name], reference[name], check_exact=True)
    # the coverage does change these embeddings (else the test would prove nothing)
    assert not np.allclose(first[name].to_numpy(), reference[name].to_numpy())
