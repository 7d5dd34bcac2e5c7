"""A Keras user training their own S2Vec model on CPU: images from a custom ontology, fit / evaluate / save /
load, strategies and the ``geos2vec train`` command, on inputs such a user plausibly passes.

Each test failed before its fix; the references are independent (hand counts of masked patches, the in-memory
twin of a stored input, Keras' own values).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr

import geos2vec
from geos2vec.errors import InvalidInputError, InvalidTypeError
from geos2vec.features import count_features
from geos2vec.model import S2VecConfig, S2VecModel, load_model
from geos2vec.model.data import check_images, match_channels
from geos2vec.raster import rasterize

tf = pytest.importorskip("tensorflow")

from geos2vec.model import train as T  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ONTOLOGY = {"restaurant": "food", "cafe": "food", "fast_food": "food", "bank": "money", "atm": "money"}
TINY = S2VecConfig(embedding_dim=16, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2, batch_size=4,
                   epochs=1, shuffle_buffer=0, validation_split=0.0, seed=3, mixed_precision="float32")


@pytest.fixture(scope="module")
def images():
    """Los Angeles POIs and roads in a custom three-channel ontology: 4 x 4 level-12 pixels per level-10 image."""
    pois = DATA / "pois" / "los_angeles.parquet"
    if not pois.exists():
        pytest.skip("shared data not available")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report of POIs outside the ontology
        table = count_features(gpd.read_parquet(pois), gpd.read_parquet(DATA / "roads" / "los_angeles.parquet"),
                               ontology=ONTOLOGY)
    da = rasterize(table, image_level=10)
    assert list(da["feature"].values) == ["food", "money", "road"] and da.sizes["row"] == 4
    return da.isel(image=slice(0, 9))


@pytest.fixture(scope="module")
def trained(images):
    model = S2VecModel(TINY)
    model.fit(images, verbose=0)
    return model


# --------------------------------------------------------------------------- verbose
@pytest.mark.parametrize("verbose", ["x", "silent", 3, -1, 1.5, None])
def test_fit_refuses_a_verbose_keras_does_not_know(images, verbose):
    model = S2VecModel(TINY)
    with pytest.raises(InvalidInputError, match=r"verbose must be 'auto', 0 \(silent\), 1 .* or 2 .*, got"):
        model.fit(images, verbose=verbose)
    assert not model.built  # refused before anything was built or trained


def test_verbose_takes_keras_values_bools_and_numpy_integers():
    from geos2vec import set_options

    values = ("auto", 0, 1, 2, False, True, np.int64(2))
    with set_options(progress=True):
        assert [T.check_verbose(v) for v in values] == ["auto", 0, 1, 2, 0, 1, 2]
    with set_options(progress=False):  # "auto" follows the option; explicit values win
        assert [T.check_verbose(v) for v in values] == [0, 0, 1, 2, 0, 1, 2]


# --------------------------------------------------------------------------- evaluate's arguments
@pytest.mark.parametrize("kwargs, match", [
    ({"n_masks": 1.7}, r"n_masks must be >= 1 \(an integer\), got 1.7"),     # was cut to 1 mask
    ({"n_masks": "2"}, r"n_masks must be >= 1 \(an integer\), got '2'"),     # was int()-ed
    ({"seed": -1}, r"seed must be >= 0 \(an integer\) or None, got -1"),    # was NumPy's SeedSequence error
    ({"seed": 1.5}, r"seed must be >= 0 \(an integer\) or None, got 1.5"),  # was seed 1
    ({"batch_size": 0}, r"batch_size must be >= 1 \(an integer\) or None, got 0"),    # was config.batch_size
    ({"batch_size": -1}, r"batch_size must be >= 1 \(an integer\) or None, got -1"),  # was a TensorFlow error
    ({"batch_size": 2.5}, r"batch_size must be >= 1 \(an integer\) or None, got 2.5"),
])
def test_evaluate_refuses_what_it_used_to_cut_or_fail_on_inside_numpy(trained, images, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        trained.evaluate(images, **kwargs)


def test_evaluate_takes_numpy_integers_and_counts_the_masked_patches(trained, images):
    table = trained.evaluate(images, n_masks=np.int32(2), seed=np.int64(5), batch_size=np.int64(3))
    plain = trained.evaluate(images, n_masks=2, seed=5, batch_size=3)
    assert table.attrs["n_masks"] == 2 and table.attrs["seed"] == 5
    np.testing.assert_array_equal(table.to_numpy(), plain.to_numpy())
    # 16 patches per image, round(16 * 0.25) = 4 kept: 12 masked in each of the 9 images, per mask
    assert table.attrs["masked_per_mask"] == 9 * 12


# --------------------------------------------------------------------------- a replaced config
def test_a_replaced_config_reaches_the_keras_model(images):
    model = S2VecModel(TINY.replace(dropout=0.1))
    model.fit(images, verbose=0)
    weights = model.keras_model.get_weights()
    # as docs/model.md suggests for fine-tuning: replace the config of a built model, then fit / evaluate
    model.config = model.config.replace(mask_ratio=0.5, ignore_unobserved=True, dropout=0.0)
    table = model.evaluate(images, n_masks=1)
    km = model.keras_model
    assert (km.mask_ratio, km.ignore_unobserved, km.dropout) == (0.5, True, 0.0)  # was 0.75, False, 0.1
    assert table.attrs["mask_ratio"] == 0.5 and table.attrs["masked_per_mask"] == 9 * 8  # 16 - round(16 * 0.5)
    for a, b in zip(km.get_weights(), weights):  # rebuilt with the trained weights
        np.testing.assert_array_equal(a, b)
    model.fit(images, verbose=0)
    assert model.keras_model.mask_ratio == 0.5


def test_a_replaced_architecture_is_refused_instead_of_saved_beside_other_weights(images, tmp_path):
    model = S2VecModel(TINY)
    model.fit(images, verbose=0)
    model.config = model.config.replace(embedding_dim=32)
    match = r"embedding_dim=32 \(the weights': 16\)"
    with pytest.raises(InvalidInputError, match=match):
        model.save(tmp_path / "m")  # was written, then failed at embed after load_model with a NumPy error
    with pytest.raises(InvalidInputError, match=match):
        model.fit(images, verbose=0)  # was trained on as the 16-d model
    assert not (tmp_path / "m").exists()
    model.config = model.config.replace(embedding_dim=16)
    assert load_model(model.save(tmp_path / "m")).embedding_dim == 16


# --------------------------------------------------------------------------- MirroredStrategy, two replicas
MIRRORED = textwrap.dedent("""
    import sys, warnings
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np, pandas as pd
    from geos2vec import cells as C
    from geos2vec.model import S2VecConfig, S2VecModel
    from geos2vec.raster import rasterize
    rng = np.random.default_rng(0)
    cells = np.unique(C.latlng_to_cell(rng.uniform(40.6, 40.9, 3000), rng.uniform(-74.1, -73.8, 3000), 12))
    images = np.unique(C.cell_to_parent(cells, 10))[:7]
    cells = cells[np.isin(C.cell_to_parent(cells, 10), images)]
    table = pd.DataFrame(rng.poisson(2.0, (cells.size, 3)), index=pd.Index(cells, name="cell_id"),
                         columns=["a", "b", "c"])
    da = rasterize(table, image_level=10)
    cfg = S2VecConfig(embedding_dim=16, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2,
                      batch_size=3, epochs=2, validation_split=0.3, seed=0, mixed_precision="float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    h = S2VecModel(cfg).fit(da, strategy=strategy, verbose=0)
    print(len(h.history["loss"]), len(h.history["val_loss"]), h.params["replicas"],
          bool(np.isfinite(h.history["loss"] + h.history["val_loss"]).all()))
""")


def test_mirrored_strategy_trains_batches_that_split_unevenly_over_the_replicas():
    # 3 images on 2 replicas: Keras averaged the first batch over the replicas to build the built model, and
    # failed with "Inputs to operation AddN ... must have the same size and shape"
    out = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-4:] == ["2", "2", "2", "True"]


# --------------------------------------------------------------------------- inputs and their errors
def test_validation_data_and_evaluate_take_a_stored_path_like_fit(images, trained, tmp_path):
    from geos2vec.raster import to_zarr

    to_zarr(images, tmp_path / "images.zarr")
    path = str(tmp_path / "images.zarr")
    from_path = S2VecModel(TINY).fit(images, validation_data=path, verbose=0).history
    in_memory = S2VecModel(TINY).fit(images, validation_data=images, verbose=0).history
    np.testing.assert_allclose(from_path["val_loss"], in_memory["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(trained.evaluate(path, n_masks=2).to_numpy(),
                               trained.evaluate(images, n_masks=2).to_numpy(), rtol=1e-6)
    with pytest.raises(InvalidTypeError, match="validation_data must be an image DataArray .* got ndarray"):
        S2VecModel(TINY).fit(images, validation_data=images.values, verbose=0)


def test_image_and_channel_errors_are_geos2vec_errors(images):
    with pytest.raises(InvalidTypeError, match="expected an xarray.DataArray of images"):
        check_images(images.values)
    with pytest.raises(InvalidInputError, match="needs exactly the dims"):
        check_images(images.isel(row=0))
    with pytest.raises(InvalidInputError, match=r"missing \['road'\], unexpected \[\]"):
        match_channels(images.isel(feature=[0, 1]), ["food", "money", "road"])


def test_load_model_refuses_a_string_of_channels(trained, tmp_path):
    path = trained.save(tmp_path / "m.zip")
    with pytest.raises(InvalidTypeError, match="channels must be a list of channel names .* got 'road'"):
        load_model(path, channels="road")  # was read as the channels ['r', 'o', 'a', 'd']
    with pytest.raises(InvalidTypeError, match="got 3"):
        load_model(path, channels=3)
    assert load_model(path, channels=("food", "money", "road")).channels == ["food", "money", "road"]


def test_saving_an_unbuilt_model_is_a_geos2vec_error(tmp_path):
    with pytest.raises(InvalidInputError, match="cannot save an unbuilt model"):
        S2VecModel(TINY).save(tmp_path / "m")


def test_geos2vec_train_checks_out_before_training(images, tmp_path, monkeypatch):
    from geos2vec.cli import main
    from geos2vec.raster import to_zarr

    to_zarr(images, tmp_path / "images.zarr")
    (tmp_path / "taken").write_text("a file the user keeps")
    trained = []
    monkeypatch.setattr(S2VecModel, "fit", lambda self, *a, **k: trained.append(1))
    # a file where the model folder should go: was found by save() only after the whole training run
    assert main(["train", "--data", str(tmp_path / "images.zarr"), "--out", str(tmp_path / "taken")]) == 1
    assert trained == [] and (tmp_path / "taken").read_text() == "a file the user keeps"


@pytest.mark.parametrize("change", [{"embedding_dim": 128}, {"num_heads": 4}, {"encoder_layers": 5}])
def test_embed_refuses_a_config_replaced_with_another_architecture(change, images):
    """The compact (NumPy) bundled model took ``num_heads`` from the config at every call: 4 instead of 8 embedded
    with another attention split without a word, and ``embedding_dim=128`` failed in a NumPy broadcast."""
    model = load_model("default")
    pois, roads = geos2vec.demo.load_sample()
    da = geos2vec.rasterize(geos2vec.count_features(pois, roads)).isel(image=[0])
    before = model.embed(da, verbose=False)
    model.config = model.config.replace(**change)
    (field, value), = change.items()
    with pytest.raises(InvalidInputError, match=rf"{field}={value} \(the weights': "):
        model.embed(da, verbose=False)
    model.config = model.config.replace(**{field: getattr(load_model("default").config, field)}, mask_ratio=0.5)
    xr.testing.assert_identical(model.embed(da, verbose=False), before)   # a training setting may change


def test_embed_of_a_keras_model_refuses_a_replaced_architecture(trained, images):
    model = S2VecModel(trained.config)
    model.keras_model, model.stats, model.channels, model.grid = trained.keras_model, trained.stats, \
        trained.channels, trained.grid
    model.config = trained.config.replace(num_heads=1 if trained.config.num_heads != 1 else 2)
    with pytest.raises(InvalidInputError, match="num_heads="):
        model.embed(images, verbose=False)
