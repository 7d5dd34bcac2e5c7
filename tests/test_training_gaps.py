"""Error branches and hostile inputs of S2VecConfig, S2VecModel.fit/build/evaluate, the training machinery
(strategies, precision, warm-up, callbacks, seeding) and the resume files.

Each test checks a branch the rest of the suite never ran, against an independent reference (hand-computed
values, a twin model trained the plain way, NumPy / Python's own seeded generators, or the files as written).
"""

from __future__ import annotations

import json
import math
import random
import warnings

import numpy as np
import pandas as pd
import pytest

from geos2vec import cells as C
from geos2vec.errors import InvalidInputError, InvalidTypeError
from geos2vec.model import S2VecConfig, S2VecModel, load_model
from geos2vec.model import resume as R
from geos2vec.raster import rasterize

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from geos2vec.model import train as T  # noqa: E402

TINY = S2VecConfig(embedding_dim=16, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2, dropout=0.0,
                   batch_size=4, epochs=1, shuffle_buffer=0, validation_split=0.0, seed=2,
                   mixed_precision="float32")  # float32 on a GPU too: the strategy twins compare losses


@pytest.fixture(scope="module")
def images():
    """Eight level-10 images (4x4 level-12 pixels) of random counts near NYC."""
    rng = np.random.default_rng(0)
    cells = np.unique(C.latlng_to_cell(rng.uniform(40.6, 40.9, 3000), rng.uniform(-74.1, -73.8, 3000), 12))
    images = np.unique(C.cell_to_parent(cells, 10))[:8]
    cells = cells[np.isin(C.cell_to_parent(cells, 10), images)]
    table = pd.DataFrame(rng.poisson(2.0, (cells.size, 4)), index=pd.Index(cells, name="cell_id"),
                         columns=[f"c{k}" for k in range(4)])
    return rasterize(table, image_level=10)


# --------------------------------------------------------------------------- S2VecConfig
@pytest.mark.parametrize("field, value, match", [
    ("seed", -1, "seed must be a non-negative integer"),
    ("seed", True, "seed must be a non-negative integer"),
    ("batch_size", 0, "batch_size must be a positive integer"),
    ("decoder_dim", 10, r"decoder_dim=10 is not divisible by num_heads=8"),
    ("mask_ratio", 0.0, r"mask_ratio must be in \(0, 1\)"),
    ("dropout", 1.0, r"dropout must be in \[0, 1\)"),
    ("validation_split", 1.0, r"validation_split must be in \[0, 1\)"),
    ("cosine_alpha", 1.5, r"cosine_alpha must be in \[0, 1\]"),
    ("learning_rate", 0.0, "learning_rate must be > 0"),
    ("weight_decay", -1e-3, "weight_decay >= 0"),
    ("clipnorm", 0.0, "clipnorm > 0"),
    ("mlp_ratio", 0.0, "mlp_ratio must be > 0"),
    ("warmup_epochs", -1.0, "warmup_epochs >= 0"),
    ("activity_weight", -0.5, "activity_weight must be >= 0"),
    ("nonempty_weight", 0.0, "nonempty_weight > 0"),
    ("position_init", "sine", "position_init must be 'normal' or 'sincos'"),
    ("mixed_precision", "float64", "mixed_precision must be one of"),
    ("learning_rate", float("nan"), "learning_rate must be a finite number"),
    # taken as they were before: 1.5 shuffled with a buffer of 1.5, "a" failed inside Keras, "no" meant True
    ("shuffle_buffer", 1.5, r"shuffle_buffer must be an integer >= 0, got 1.5"),
    ("shuffle_buffer", -1, r"shuffle_buffer must be an integer >= 0, got -1"),
    ("shuffle_buffer", None, r"shuffle_buffer must be an integer >= 0, got None"),
    ("early_stopping_patience", -1, r"early_stopping_patience must be an integer >= 0 or None, got -1"),
    ("early_stopping_patience", "3", r"early_stopping_patience must be an integer >= 0 or None, got '3'"),
    ("ignore_unobserved", "no", r"ignore_unobserved must be True or False, got 'no'"),
    ("log_counts", "false", r"log_counts must be True or False, got 'false'"),
    ("missing_token", None, r"missing_token must be True or False, got None"),
])
def test_config_refuses_each_bad_value_by_name(field, value, match):
    with pytest.raises(InvalidInputError, match=match):
        S2VecConfig(**{field: value})
    with pytest.raises(InvalidInputError, match=match):
        TINY.replace(num_heads=8, decoder_dim=8, embedding_dim=16).replace(**{field: value})


def test_config_takes_numpy_scalars_as_python_numbers_and_saves_them(tmp_path):
    """np.int64 / np.float32 values passed validation, then save() (and model.save, run.json) raised TypeError."""
    cfg = S2VecConfig(seed=np.int64(3), dropout=np.float32(0.25), embedding_dim=np.int64(16), num_heads=np.int32(2),
                      decoder_dim=8, log_counts=np.bool_(True), early_stopping_patience=np.int64(4))
    want = S2VecConfig(seed=3, dropout=0.25, embedding_dim=16, num_heads=2, decoder_dim=8, log_counts=True,
                       early_stopping_patience=4)
    assert cfg == want
    assert [type(getattr(cfg, k)) for k in ("seed", "dropout", "embedding_dim", "log_counts")] == [int, float, int,
                                                                                                   bool]
    written = json.loads(cfg.save(tmp_path / "c.json").read_text())
    assert written == want.to_dict() and S2VecConfig.load(tmp_path / "c.json") == want


def test_config_from_dict_and_strict_load_name_what_is_wrong(tmp_path):
    for bad in (None, [("epochs", 2)], "epochs=2"):
        with pytest.raises(InvalidTypeError, match=r"from_dict takes a dict of field values"):
            S2VecConfig.from_dict(bad)
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 3, "embedding_dim": 16}))
    with pytest.raises(InvalidInputError, match=r"lacks the architecture field\(s\) \['encoder_layers', 'decoder_dim'"):
        S2VecConfig.load(tmp_path / "c.json", strict=True)
    assert S2VecConfig.load(tmp_path / "c.json") == S2VecConfig(epochs=3, embedding_dim=16)


# --------------------------------------------------------------------------- S2VecModel
def test_model_arguments_of_the_wrong_type_are_geos2vec_type_errors(images):
    with pytest.raises(InvalidTypeError, match=r"config must be an S2VecConfig, got dict.*S2VecModel\(epochs=5\)"):
        S2VecModel({"epochs": 1})
    with pytest.raises(InvalidTypeError, match="stats must be a FeatureStats, got str"):
        S2VecModel(TINY).build(images, stats="log1p")
    model = S2VecModel(TINY)
    with pytest.raises(InvalidInputError, match="not built or trained yet: call fit"):
        model.evaluate(images)
    with pytest.raises(InvalidInputError, match="n_masks must be >= 1"):
        model.evaluate(images, n_masks=0)
    assert (model.built, model.count_params(), repr(model)) == (False, 0, "S2VecModel(unbuilt, embedding_dim=16)")


def test_a_compact_model_is_built_and_counts_the_keras_models_weights(images, tmp_path):
    model = S2VecModel(TINY).build(images)
    model.save(tmp_path / "m", compact=True)
    compact = load_model(tmp_path / "m")
    assert compact.keras_model is None and compact.built
    n = model.keras_model.count_params()
    assert compact.count_params() == n
    # it said "unbuilt" for a loaded compact model
    assert repr(compact) == f"S2VecModel(4 channels, 4x4 images, {n:,} params, embedding_dim=16)" == repr(model)


@pytest.mark.parametrize("epochs, match", [(0, "got 0"), (-2, "got -2"), (1.5, "got 1.5"), ("2", "got '2'"),
                                           (True, "got True"), (float("nan"), "got nan")])
def test_fit_refuses_epochs_that_are_not_positive_integers(images, epochs, match):
    """fit(epochs=1.5) trained one epoch (int(1.5)); NaN raised a bare int() error."""
    model = S2VecModel(TINY)
    with pytest.raises(InvalidInputError, match=rf"epochs must be a positive integer, {match}"):
        model.fit(images, epochs=epochs, verbose=0)
    assert model.keras_model is None  # refused before anything was built


def test_fit_refuses_data_of_another_type_and_tensorboard_without_log_dir(images, tmp_path):
    with pytest.raises(InvalidTypeError, match=r"data must be an image DataArray .* or the path .*got int"):
        S2VecModel(TINY).fit(3, verbose=0)
    with pytest.raises(InvalidTypeError, match="data must be an image DataArray"):
        S2VecModel(TINY).fit(images.values, verbose=0)
    with pytest.raises(InvalidInputError, match=r"tensorboard=True writes its logs to log_dir.*pass log_dir"):
        S2VecModel(TINY).fit(images, tensorboard=True, verbose=0)  # wrote nothing, silently
    pytest.importorskip("tensorboard")
    S2VecModel(TINY).fit(images, tensorboard=True, log_dir=tmp_path / "logs", verbose=0)
    events = list((tmp_path / "logs" / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and len(pd.read_csv(tmp_path / "logs" / "training.csv")) == 1


def test_tensorboard_without_the_package_is_refused_before_training(images, tmp_path, monkeypatch):
    """Keras' callback raised TBNotInstalledError after the first step."""
    steps = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append(batch)

    monkeypatch.setattr(T, "_tensorboard_installed", lambda: False)
    with pytest.raises(ImportError, match="tensorboard=True needs the tensorboard package: pip install tensorboard"):
        S2VecModel(TINY).fit(images, tensorboard=True, log_dir=tmp_path / "logs", callbacks=[Count()], verbose=0)
    assert steps == []


def test_fit_from_a_stored_path_trains_like_the_images_in_memory(images, tmp_path):
    from geos2vec.raster import to_zarr

    to_zarr(images, tmp_path / "images.zarr")
    from_path = S2VecModel(TINY.replace(epochs=2)).fit(str(tmp_path / "images.zarr"), verbose=0).history
    in_memory = S2VecModel(TINY.replace(epochs=2)).fit(images, verbose=0).history
    assert len(from_path["loss"]) == 2 and np.isfinite(from_path["loss"]).all()
    np.testing.assert_allclose(from_path["loss"], in_memory["loss"], rtol=1e-4)  # (a GPU may reduce in any order)


def test_fit_under_another_strategy_rebuilds_the_model_with_its_weights(images):
    """A model built under the default strategy, fitted under a one-device one, keeps the weights it had."""
    a = S2VecModel(TINY.replace(epochs=2)).build(images)
    rng = np.random.default_rng(7)
    start = [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in a.keras_model.get_weights()]
    a.keras_model.set_weights(start)
    b = S2VecModel(TINY.replace(epochs=2)).build(images)  # its twin, fitted under the default strategy
    b.keras_model.set_weights(start)
    before = a.keras_model
    ha = a.fit(images, strategy="cpu", verbose=0).history
    hb = b.fit(images, verbose=0).history
    assert a.keras_model is not before
    assert isinstance(a.keras_model.distribute_strategy, tf.distribute.OneDeviceStrategy)
    # equal on a CPU; loose enough for a GPU twin (TF32 matmuls): fresh weights give losses 30 % apart
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-3)
    for wa, wb in zip(a.keras_model.get_weights(), b.keras_model.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-3, atol=1e-4)


# --------------------------------------------------------------------------- train.py
def test_resolve_strategy_names_and_refusals():
    default = tf.distribute.get_strategy()
    assert T.resolve_strategy(None) is default and T.resolve_strategy("default") is default
    cpu = T.resolve_strategy("cpu")
    assert isinstance(cpu, tf.distribute.OneDeviceStrategy) and "CPU:0" in str(cpu.extended.worker_devices[0])
    assert T.resolve_strategy(cpu) is cpu
    mirrored = T.resolve_strategy("mirrored")
    n_gpu = len(tf.config.list_logical_devices("GPU"))
    assert isinstance(mirrored, tf.distribute.MirroredStrategy) and mirrored.num_replicas_in_sync == max(n_gpu, 1)
    with pytest.raises(InvalidInputError, match=r"unknown strategy 'tpu': pass a tf.distribute.Strategy"):
        T.resolve_strategy("tpu")
    with pytest.raises(InvalidTypeError, match=r"strategy must be a tf.distribute.Strategy.*got int"):
        T.resolve_strategy(3)


def test_precision_follows_the_strategys_devices():
    class FakeGPUStrategy:
        class extended:  # noqa: N801 - the attribute name of tf.distribute.Strategy
            worker_devices = ("/job:localhost/replica:0/task:0/device:GPU:0",)

    auto = S2VecConfig()
    assert T.strategy_uses_gpu(FakeGPUStrategy()) is True
    assert T.resolve_precision(auto, FakeGPUStrategy()) == "mixed_bfloat16"
    assert T.resolve_precision(auto, tf.distribute.OneDeviceStrategy("/cpu:0")) == "float32"
    for name in ("float32", "mixed_float16"):  # an explicit policy whatever the devices
        assert T.resolve_precision(S2VecConfig(mixed_precision=name), FakeGPUStrategy()) == name


def test_warmup_rises_linearly_then_decays_by_cosine():
    cfg = S2VecConfig(learning_rate=1e-3, cosine_alpha=0.1, warmup_epochs=1.0)
    sched = T.make_optimizer(cfg, steps_per_epoch=4, epochs=3)._learning_rate  # 4 warm-up + 8 decay steps
    for step in (0, 1, 2, 3, 4, 6, 8, 10, 12, 30):
        if step <= 4:
            want = 1e-3 * step / 4
        else:
            t = min(step - 4, 8) / 8
            want = 1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))
        assert float(sched(step)) == pytest.approx(want, rel=1e-5, abs=1e-9), step
    plain = T.make_optimizer(cfg.replace(warmup_epochs=0.0), steps_per_epoch=4, epochs=3)._learning_rate
    assert float(plain(0)) == pytest.approx(1e-3, rel=1e-6)


def test_make_callbacks_checks_the_users_callbacks_and_adds_tensorboard(tmp_path, monkeypatch):
    cb = keras.callbacks.History()
    for bad, got in ((cb, "got History"), (3, "got int"), ([cb, "csv"], r"got \['History', 'str'\]")):
        with pytest.raises(InvalidTypeError, match=rf"callbacks must be a list of keras.callbacks.Callback.*{got}"):
            T.make_callbacks(TINY, has_validation=False, callbacks=bad)
    with pytest.raises(InvalidInputError, match="pass log_dir"):
        T.make_callbacks(TINY, has_validation=False, tensorboard=True)
    monkeypatch.setattr(T, "_tensorboard_installed", lambda: True)  # the callback is made without the package
    out = T.make_callbacks(TINY, has_validation=False, callbacks=(cb,), log_dir=tmp_path / "l", tensorboard=True)
    assert out[0] is cb
    assert [type(c).__name__ for c in out[1:]] == ["TerminateOnNaN", "CSVLogger", "TensorBoard"]
    assert out[-1].log_dir == str(tmp_path / "l" / "tensorboard")


def test_set_random_seed_falls_back_to_keras_when_tensorflows_internals_move(monkeypatch):
    import tensorflow.python.eager as eager

    calls = []
    original = keras.utils.set_random_seed
    monkeypatch.setattr(keras.utils, "set_random_seed", lambda s: (calls.append(s), original(s)))
    original(11)
    T.set_random_seed(11)  # TensorFlow's seed is 11 already: the fast path, without Keras' call
    assert calls == []
    monkeypatch.setattr(eager, "context", object())  # the internals moved: no context.context() there
    T.set_random_seed(11)
    assert calls == [11]
    assert np.random.random() == np.random.RandomState(11).random_sample()
    assert random.random() == random.Random(11).random()


# --------------------------------------------------------------------------- resume.py
def _backup(folder, epoch=2):
    (folder / "backup").mkdir(parents=True, exist_ok=True)
    (folder / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": epoch, "batch": 0}))


FINGERPRINT = {"config": {"seed": 1}, "channels": ["a"], "grid": [4, 4], "stats_sha256": "s", "images_sha256": "i"}


@pytest.mark.parametrize("text", ["[1, 2]", "null", "{not json", '"run"'])
def test_a_run_json_that_holds_no_object_refuses_the_resume_by_name(tmp_path, text):
    """A list or null run.json raised a bare AttributeError / TypeError."""
    _backup(tmp_path)
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(InvalidInputError, match=r"another run .*'channels'.*delete .*backup"):
        R.guard_resume(tmp_path, FINGERPRINT)
    (tmp_path / "run.json").write_text(json.dumps(FINGERPRINT))  # the same run resumes
    assert R.guard_resume(tmp_path, FINGERPRINT) is True
    assert json.loads((tmp_path / "run.json").read_text()) == FINGERPRINT


@pytest.mark.parametrize("text, want", [(None, None), ("{not json", None), ("[0.5]", None), ('{"best": "x"}', None),
                                        ('{"best": NaN}', None), ('{"epoch": 2}', None), ('{"best": true}', None),
                                        ('{"best": 0.25}', 0.25)])
def test_best_so_far_reads_only_a_finite_best(tmp_path, text, want):
    if text is not None:
        (tmp_path / "best.json").write_text(text)
    assert R.best_so_far(tmp_path) == want


@pytest.mark.parametrize("text, want", [(None, 0), ("{not json", 0), ("[3]", 0), ('{"epoch": "3"}', 0),
                                        ('{"epoch": -1}', 0), ('{"epoch": true}', 0), ('{"epoch": 3}', 3)])
def test_resume_epoch_is_zero_without_a_readable_backup(tmp_path, text, want):
    assert R.resume_epoch(None) == 0
    if text is not None:
        (tmp_path / "backup").mkdir()
        (tmp_path / "backup" / "training_metadata.json").write_text(text)
    assert R.resume_epoch(tmp_path) == want


@pytest.mark.parametrize("text, want", [("{not json", False), ("[1]", False), ('{"records": 3}', False),
                                        ('{"records": [{"epoch": 2, "stopped": "yes"}]}', False),
                                        ('{"records": [{"epoch": 1, "stopped": true}]}', False),
                                        ('{"records": [7, {"epoch": 2, "stopped": true}]}', True)])
def test_stopped_at_reads_the_record_of_its_epoch_only(tmp_path, text, want):
    (tmp_path / "state.json").write_text(text)
    assert R.stopped_at(tmp_path, 2) is want
    assert R.stopped_at(tmp_path, 0) is False  # a fresh fit


def test_the_seal_moves_the_metadata_on_only_when_it_is_readable_and_names_other_weights(tmp_path):
    backup = tmp_path / "backup"
    _backup(tmp_path, epoch=2)
    (backup / "latest.weights.h5").write_bytes(b"weights of epoch 3")
    meta = backup / "training_metadata.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        R._reconcile_seal(backup)  # no seal (a backup of an older version): nothing to compare
        for text in ("{not json", "[2]"):
            (backup / "seal.json").write_text(text)
            R._reconcile_seal(backup)
    assert json.loads(meta.read_text()) == {"epoch": 2, "batch": 0}
    (backup / "seal.json").write_text(json.dumps({"epoch": 2, "sha256": "0" * 64}))  # sealed other weights
    with pytest.warns(UserWarning, match="newer than its metadata"):
        R._reconcile_seal(backup)
    assert json.loads(meta.read_text()) == {"epoch": 3, "batch": 0}


@pytest.mark.parametrize("epoch, damaged", [(True, True), (False, True), ("2", True), (2.0, True), (2, False)])
def test_a_backup_whose_epoch_is_not_an_integer_is_named_damaged(tmp_path, epoch, damaged):
    """JSON true is an int in Python (1): a backup whose metadata says {"epoch": true} resumed at epoch 1."""
    _backup(tmp_path, epoch=epoch)
    if damaged:
        with pytest.raises(InvalidInputError, match="training_metadata.json: an interrupted write"):
            R._check_backup(tmp_path / "backup")
    else:
        R._check_backup(tmp_path / "backup")
        assert R.resume_epoch(tmp_path) == 2
