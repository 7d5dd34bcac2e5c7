"""An experienced Keras 3 user reusing geos2vec's model parts: configs round trips, ``.keras`` files, layers in
their own functional models, ``summary()``, save / load of ``S2VecModel``, their own callbacks and optimizer, a
global mixed-precision policy.

References are independent of the code under test: clones built by Keras from ``get_config``, the NumPy location
encoder, MAE's sine-cosine codes, a Keras encoder given float16-rounded weights, Keras' own callbacks' records.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from geos2vec.errors import InvalidInputError  # noqa: E402
from geos2vec.features import count_features  # noqa: E402
from geos2vec.fusion import Concat, ProjectAdd, WeightedAdd  # noqa: E402
from geos2vec.location import LocationEncoder, encode_location  # noqa: E402
from geos2vec.model import S2VecConfig, S2VecModel, load_model  # noqa: E402
from geos2vec.model.layers import Attention, PositionEmbedding, RandomMasking, TransformerBlock, sincos_2d  # noqa: E402
from geos2vec.model.mae import MaskedAutoencoder, build_mae  # noqa: E402
from geos2vec.raster import rasterize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SMALL = S2VecConfig(embedding_dim=16, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2, batch_size=4,
                    epochs=1, shuffle_buffer=0, validation_split=0.0, seed=3, mixed_precision="float32")


def _np(t):
    return np.asarray(keras.ops.convert_to_numpy(t), dtype="float64")


@pytest.fixture(scope="module")
def images():
    """Los Angeles POIs and roads in three channels, 4 x 4 level-12 pixels per level-10 image (9 images)."""
    if not (DATA / "pois" / "los_angeles.parquet").exists():
        pytest.skip("shared data not available")
    ontology = {"restaurant": "food", "cafe": "food", "fast_food": "food", "bank": "money", "atm": "money"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report of POIs outside the ontology
        table = count_features(gpd.read_parquet(DATA / "pois" / "los_angeles.parquet"),
                               gpd.read_parquet(DATA / "roads" / "los_angeles.parquet"), ontology=ontology)
    return rasterize(table, image_level=10).isel(image=slice(0, 9))


class Record(keras.callbacks.Callback):
    """A user's own callback: the loss Keras reports at each epoch's end."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch, logs["loss"]))


@pytest.fixture(scope="module")
def trained(images, tmp_path_factory):
    """A small model fitted with the user's callbacks: early stopping, a ``.keras`` checkpoint, their own one."""
    ckpt = tmp_path_factory.mktemp("ckpt") / "ck.keras"
    record = Record()
    model = S2VecModel(SMALL.replace(epochs=2, validation_split=0.3))
    model.fit(images, verbose=0, callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5), record,
                                            keras.callbacks.ModelCheckpoint(str(ckpt))])
    return model, record, ckpt


# --------------------------------------------------------------------------- get_config / from_config
def _clone_same_outputs(layer, x):
    """``from_config(get_config())`` of a called layer, given the same weights: same config and outputs."""
    y = layer(x)
    clone = type(layer).from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    for a, b in zip(keras.tree.flatten(y), keras.tree.flatten(clone(x))):
        np.testing.assert_array_equal(_np(a), _np(b))


def test_every_public_layer_survives_a_config_round_trip():
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(2, 16, 8)).astype("float32")
    pair = [rng.normal(size=(3, 4)).astype("float32") for _ in range(2)]
    for layer in (PositionEmbedding(16), Attention(8, 2), TransformerBlock(8, 2, mlp_ratio=2.0, dropout=0.1, seed=3)):
        _clone_same_outputs(layer, seq)
    for layer in (Concat(heads=2), WeightedAdd(heads=2), ProjectAdd(5, heads=2, kernel_initializer="he_normal")):
        _clone_same_outputs(layer, pair)
    latlng = np.c_[rng.uniform(-60, 60, 5), rng.uniform(-170, 170, 5)]
    _clone_same_outputs(LocationEncoder("sphereM", frequency_num=3, min_radius=1e-3, max_radius=0.5), latlng)
    # a masking layer rebuilt from its config draws the same first masks (same seed, fresh generator)
    masking = RandomMasking(16, 0.5, seed=1)
    clone = RandomMasking.from_config(masking.get_config())
    np.testing.assert_array_equal(_np(masking(seq)[2]), _np(clone(seq)[2]))


def test_masked_autoencoder_config_round_trip_keeps_every_argument():
    cfg = SMALL.replace(missing_token=True, activity_weight=0.5, position_init="sincos", nonempty_weight=2.0,
                        mask_ratio=0.5, dropout=0.1, ignore_unobserved=True)
    model = build_mae(cfg, 16, 8)
    clone = MaskedAutoencoder.from_config(model.get_config())
    clone.build((None, 16, 8))
    clone.set_weights(model.get_weights())
    for field in ("missing_token", "activity_weight", "position_init", "nonempty_weight", "mask_ratio", "dropout",
                  "ignore_unobserved", "seed", "embedding_dim", "decoder_dim", "num_heads"):
        assert getattr(clone, field) == getattr(cfg, field), field
    x = np.random.default_rng(1).normal(size=(2, 16, 8)).astype("float32")
    noise = np.random.default_rng(2).random((2, 16)).astype("float32")
    np.testing.assert_array_equal(_np(clone.reconstruct(x, noise)["pred"]), _np(model.reconstruct(x, noise)["pred"]))


# --------------------------------------------------------------------------- bugs fixed
def test_masked_autoencoder_refuses_an_unknown_position_init():
    """``position_init="sin-cos"`` silently started from random position embeddings; "sincos" is MAE's codes."""
    kw = dict(embedding_dim=8, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2, seed=0)
    with pytest.raises(ValueError, match="position_init"):
        MaskedAutoencoder(16, 3, position_init="sin-cos", **kw)
    model = MaskedAutoencoder(16, 3, position_init="sincos", **kw)
    model.build((None, 16, 3))
    # MAE's 2-D sine-cosine codes, formed here independently: row part then column part, sin then cos
    omega = 1.0 / 10000 ** (np.arange(2) / 2)
    r, c = np.divmod(np.arange(16), 4)
    ref = np.concatenate([np.sin(np.outer(r, omega)), np.cos(np.outer(r, omega)),
                          np.sin(np.outer(c, omega)), np.cos(np.outer(c, omega))], axis=1)
    np.testing.assert_allclose(_np(model.pos_embed.embedding)[0], ref, atol=1e-7)
    np.testing.assert_allclose(sincos_2d(4, 4, 8), ref, atol=1e-7)


@pytest.mark.parametrize("length,ratio", [(1, 0.5), (16, 1.5), (16, 0.0), (16, -0.2)])
def test_random_masking_refuses_degenerate_masks(length, ratio):
    """Length 1 kept no token at all; a ratio of 1.5 or 0 was quietly turned into another ratio."""
    with pytest.raises(ValueError, match="mask_ratio"):
        RandomMasking(length, ratio)


def test_position_embedding_and_block_name_a_wrong_input_shape():
    """A sequence of another length (or width) failed with TensorFlow's ``InvalidArgumentError`` (AddV2)."""
    pe = PositionEmbedding(16)
    with pytest.raises(ValueError, match=r"PositionEmbedding\(16\).*\(2, 12, 8\)"):
        pe(np.zeros((2, 12, 8), "float32"))
    pe(np.zeros((2, 16, 8), "float32"))
    with pytest.raises(ValueError, match="axis -1"):  # built for width 8: width 4 is refused by Keras' input spec
        pe(np.zeros((2, 16, 4), "float32"))
    with pytest.raises(ValueError, match=r"TransformerBlock\(dim=8\).*Dense\(8\)"):
        TransformerBlock(8, 2)(np.zeros((2, 12, 16), "float32"))
    with pytest.raises(ValueError, match=r"TransformerBlock\(dim=8\)"):
        TransformerBlock(8, 2)(keras.Input((12, 16)))


def test_summary_shows_the_output_shapes():
    """``summary()`` printed '?' as the output shape of the position embeddings and transformer blocks."""
    lines = []
    build_mae(SMALL, 16, 3).summary(print_fn=lambda line, **kw: lines.append(line))
    text = "\n".join(lines)
    rows = {name: next(line for line in text.splitlines() if name in line)
            for name in ("pos_embed (Pos", "decoder_pos_embed", "decoder_block_0")}
    assert "(None, 16, 16)" in rows["pos_embed (Pos"]
    assert "(None, 16, 8)" in rows["decoder_pos_embed"] and "(None, 16, 8)" in rows["decoder_block_0"]


def test_a_fit_checkpoint_loads_after_importing_the_model_module(trained):
    """A ``ModelCheckpoint(.keras)`` of ``S2VecModel.fit`` names FusedAdamW: with only ``geos2vec.model.mae``
    imported (it registers MaskedAutoencoder), loading it raised "Could not locate class 'FusedAdamW'"."""
    model, _, ckpt = trained
    x = np.random.default_rng(0).normal(size=(2, 16, 3)).astype("float32")
    registry = keras.saving.get_custom_objects()
    fused = registry.pop("geos2vec>FusedAdamW")  # as in a process that never imported geos2vec.model.optimizer
    try:
        loaded = keras.saving.load_model(ckpt)
    finally:
        registry["geos2vec>FusedAdamW"] = fused
    assert type(loaded.optimizer) is fused and type(loaded) is MaskedAutoencoder
    np.testing.assert_array_equal(_np(loaded.encode(x)), _np(model.keras_model.encode(x)))


def test_fusion_layers_name_a_wrong_heads_axis_and_unknown_widths():
    """``(3, batch, d)`` inputs to a ``heads=2`` layer failed inside TensorFlow (Mul / Einsum); ``Concat`` of an
    input of unknown width raised ``TypeError: int + NoneType`` in a functional model."""
    per_head, shared = np.ones((3, 5, 4), "float32"), np.ones((5, 4), "float32")
    for layer in (WeightedAdd(heads=2), ProjectAdd(2, heads=2)):
        with pytest.raises(InvalidInputError, match=r"heads=2\) got an input of shape \(3, 5, 4\).*heads=3"):
            layer([per_head, shared])
    ok = WeightedAdd(heads=3)([per_head, shared])  # the same inputs with matching heads: w_i x_i per head
    np.testing.assert_allclose(_np(ok), np.full((3, 5, 4), 2 / 2))
    assert tuple(Concat()([keras.Input((None,)), keras.Input((4,))]).shape) == (None, None)


@pytest.mark.parametrize("field", ["learning_rate", "weight_decay", "mask_ratio", "dropout", "validation_split",
                                   "cosine_alpha", "mlp_ratio", "warmup_epochs", "activity_weight", "nonempty_weight"])
def test_config_refuses_none_for_a_number(field):
    """``S2VecConfig(weight_decay=None)`` (Keras' spelling of "none") raised a raw TypeError of a comparison."""
    with pytest.raises(InvalidInputError, match=f"S2VecConfig.{field} must be a finite number, got None"):
        S2VecConfig(**{field: None})
    assert S2VecConfig(clipnorm=None).clipnorm is None  # no clipping, as in Keras


@pytest.mark.parametrize("make", [lambda: keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2),
                                  lambda: keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=9)])
def test_fit_refuses_learning_rate_callbacks_before_training(images, make):
    """fit's optimizer follows the config's cosine schedule: Keras raised a bare TypeError when such a callback
    first set the rate (ReduceLROnPlateau: after the epochs before the plateau were trained)."""
    model = S2VecModel(SMALL.replace(epochs=2))
    with pytest.raises(InvalidInputError, match="set the learning rate.*make_dataset"):
        model.fit(images, verbose=0, callbacks=[make()])
    assert model.history is None  # refused before any epoch


# --------------------------------------------------------------------------- as a Keras user would use them
def test_layers_in_a_users_functional_model_train_save_and_load(tmp_path):
    rng = np.random.default_rng(0)
    emb, latlng = keras.Input((16,)), keras.Input((2,), dtype="float64")
    loc = keras.layers.Dense(16)(LocationEncoder(frequency_num=4)(latlng))
    fused = Concat()([ProjectAdd(8)([emb, loc]), WeightedAdd()([emb, loc])])
    user = keras.Model([emb, latlng], keras.layers.Dense(1)(fused))
    user.compile(keras.optimizers.Adam(1e-2), "mse")
    E = rng.normal(size=(32, 16)).astype("float32")
    L = np.c_[rng.uniform(30, 40, 32), rng.uniform(-120, -110, 32)]
    y = E[:, :1] + 0.1 * rng.normal(size=(32, 1)).astype("float32")
    hist = user.fit([E, L], y, epochs=2, batch_size=8, verbose=0).history["loss"]
    assert hist[1] < hist[0]
    user.save(tmp_path / "user.keras")
    loaded = keras.saving.load_model(tmp_path / "user.keras")
    np.testing.assert_array_equal(_np(loaded([E, L])), _np(user([E, L])))
    # the location layer in the graph is the NumPy encoder (float64 inside; called directly, no float32 cast)
    probe = keras.Model(latlng, user.layers[[type(x) for x in user.layers].index(LocationEncoder)].output)
    np.testing.assert_allclose(_np(probe(L)), encode_location(L[:, 0], L[:, 1], frequency_num=4), atol=1e-6)


def test_encoder_inside_a_users_model():
    km = build_mae(SMALL, 16, 3)
    inp = keras.Input((16, 3))
    tokens = km.encode(inp)
    user = keras.Model(inp, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(tokens)))
    x = np.random.default_rng(0).normal(size=(8, 16, 3)).astype("float32")
    np.testing.assert_array_equal(_np(keras.Model(inp, tokens)(x)), _np(km.encode(x)))
    before = _np(km.patch_embed.kernel)
    user.compile(keras.optimizers.SGD(0.05), "mse")
    user.fit(x, np.ones((8, 1), "float32"), epochs=1, verbose=0)
    assert not np.array_equal(before, _np(km.patch_embed.kernel))  # the encoder's weights are shared, trained


@pytest.mark.parametrize("dtype", ["int8", "bfloat16", "uint16"])
def test_compact_save_refuses_a_non_float_dtype(trained, tmp_path, dtype):
    """``save_model(..., compact=True, dtype="int8")`` truncated every weight to an integer (embeddings off by ~2.5);
    bfloat16 wrote a file that ``load_model`` then refused."""
    from geos2vec.model.io import save_model

    with pytest.raises(InvalidInputError, match=f"dtype='{dtype}'.*float16"):
        save_model(trained[0], tmp_path / "m", compact=True, dtype=dtype)
    assert not (tmp_path / "m").exists()


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
def test_save_load_full_and_compact_and_user_optimizer(images, trained, tmp_path):
    model, record, _ = trained
    assert [e for e, _ in record.epochs] == [0, 1]
    assert [loss for _, loss in record.epochs] == model.history.history["loss"]
    emb = model.embed(images, verbose=False)
    assert emb.dtype == np.float32
    full = load_model(model.save(tmp_path / "full.zip"))
    np.testing.assert_array_equal(full.embed(images, verbose=False).values, emb.values)
    assert full.config == model.config
    compact = load_model(model.save(tmp_path / "compact", compact=True))
    # reference: the Keras model given the float16-rounded weights that the compact file holds
    full.keras_model.set_weights([w.astype(np.float16).astype(np.float32) for w in full.keras_model.get_weights()])
    np.testing.assert_allclose(compact.embed(images, verbose=False).values, full.embed(images, verbose=False).values,
                               atol=1e-5)
    # the user's own optimizer, by Keras' own compile / fit on the model's pipeline
    from geos2vec.model.data import make_dataset

    km = model.keras_model
    km.compile(optimizer=keras.optimizers.SGD(0.05))
    km.fit(make_dataset(images, model.stats, np.arange(9), batch_size=4), epochs=1, verbose=0)
    moved = model.embed(images, verbose=False)
    assert not np.allclose(moved.values, emb.values)


def test_global_mixed_float16_policy(images):
    """A user's global ``mixed_float16``: geos2vec layers compute in float16 with float32 weights (as Keras'
    own layers), and ``S2VecModel`` (``mixed_precision="float32"``) keeps float32 weights and embeddings."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x = np.random.default_rng(0).normal(size=(2, 16, 8)).astype("float32")
        for layer in (PositionEmbedding(16), TransformerBlock(8, 2)):
            assert layer(x).dtype == "float16"
            assert {w.dtype for w in layer.weights} == {"float32"}
        assert ProjectAdd(4)([x[:, 0], x[:, 1]]).dtype == "float16"
        model = S2VecModel(SMALL).build(images)
        assert model.keras_model.dtype_policy.name == "float32"
        assert model.embed(images, verbose=False).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")
