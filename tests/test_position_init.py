"""``position_init="sincos"``: MAE's fixed 2-D sine-cosine codes as the start of the position embeddings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geos2vec.model.config import S2VecConfig

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from geos2vec.model.layers import sincos_2d  # noqa: E402
from geos2vec.model.mae import build_mae  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 20), cols=st.integers(1, 20), q=st.integers(1, 16))
def test_sincos_2d_matches_the_formula(rows, cols, q):
    dim = 4 * q
    codes = sincos_2d(rows, cols, dim)
    assert codes.shape == (rows * cols, dim) and codes.dtype == np.float32
    r, c = rows - 1, cols - 1                       # the last token, row-major
    tok = codes[r * cols + c]
    for k in range(q):
        w = 1.0 / 10000 ** (k / q)
        assert tok[k] == pytest.approx(math.sin(r * w), abs=1e-6)
        assert tok[q + k] == pytest.approx(math.cos(r * w), abs=1e-6)
        assert tok[2 * q + k] == pytest.approx(math.sin(c * w), abs=1e-6)
        assert tok[3 * q + k] == pytest.approx(math.cos(c * w), abs=1e-6)


def test_sincos_2d_needs_dim_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(4, 4, 6)


def test_config_validates_position_init():
    assert S2VecConfig().position_init == "normal"
    with pytest.raises(ValueError, match="position_init"):
        S2VecConfig(position_init="fourier")


def test_sincos_model_starts_from_the_codes_and_keeps_the_weight_layout():
    kw = dict(encoder_layers=1, embedding_dim=16, decoder_dim=8, decoder_layers=1, num_heads=2, seed=0)
    plain = build_mae(S2VecConfig(**kw), 16, 3)
    sincos = build_mae(S2VecConfig(position_init="sincos", **kw), 16, 3)
    np.testing.assert_allclose(np.asarray(sincos.pos_embed.embedding)[0], sincos_2d(4, 4, 16))
    np.testing.assert_allclose(np.asarray(sincos.decoder_pos_embed.embedding)[0], sincos_2d(4, 4, 8))
    # the normal start is small noise, not the codes
    assert np.abs(np.asarray(plain.pos_embed.embedding)).max() < 0.1
    # same weights, same shapes: saved models and the NumPy encoder do not depend on the option
    assert [w.shape for w in plain.get_weights()] == [w.shape for w in sincos.get_weights()]
    assert sincos.get_config()["position_init"] == "sincos"
    # loading weights overrides the start
    sincos.set_weights(plain.get_weights())
    np.testing.assert_array_equal(np.asarray(sincos.pos_embed.embedding), np.asarray(plain.pos_embed.embedding))


def test_sincos_needs_a_square_grid():
    with pytest.raises(ValueError, match="square grid"):
        build_mae(S2VecConfig(position_init="sincos", encoder_layers=1, embedding_dim=8, decoder_dim=8,
                              decoder_layers=1, num_heads=2), 12, 3)
