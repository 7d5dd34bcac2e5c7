"""A user training with ``tf.distribute`` (MirroredStrategy), on the oldest Keras geos2vec accepts (3.7) too.

Keras 3.7 differs from the Keras of CI in three ways that broke or falsified a distributed ``S2VecModel.fit``;
``KERAS37`` makes the current Keras behave as 3.7 did in each (the tests also pass on a real Keras 3.7 +
TensorFlow 2.16, where it changes nothing):

* a ``SeedGenerator``'s ``uint32`` state was created with ``aggregation="mean"`` (3.8+: ``"none"``), which
  ``tf.distribute`` refuses: no model could be built under a ``MirroredStrategy``;
* metric variables (the ``loss`` tracker) were mirrored, not ``on_read`` (3.10+), so every replica's update
  was summed over the replicas and the logged ``loss`` was wrong from the second step on;
* the logged loss was not multiplied back by the replica count (``unscale_loss_for_distribution``, 3.8+).

Two-replica runs need two logical CPUs, set before TensorFlow starts: they run in fresh interpreters.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from geos2vec.model import S2VecModel  # noqa: E402
from geos2vec.model.train import resolve_run_eagerly  # noqa: E402
from test_model import TINY, synthetic_images  # noqa: E402

TESTS = Path(__file__).resolve().parent

# Keras 3.7's variable creation and loss logging, on the Keras in use (no change on Keras 3.7 itself)
KERAS37 = textwrap.dedent("""
    import keras
    from keras.src import backend as _backend
    from keras.src.losses import loss as _loss_module

    _init = _backend.Variable.__init__

    def _init37(self, *args, **kwargs):
        if kwargs.get("name") == "seed_generator_state" and kwargs.get("aggregation") == "none":
            kwargs["aggregation"] = "mean"
        if kwargs.get("synchronization") == "on_read":
            kwargs["synchronization"] = "auto"
        _init(self, *args, **kwargs)

    def keras37(patch):
        patch(_backend.Variable, "__init__", _init37)
        patch(_loss_module, "unscale_loss_for_distribution", lambda loss: loss)
        patch(keras, "version", lambda: "3.7.0")
""")


def _keras37(monkeypatch):
    ns: dict = {}
    exec(KERAS37, ns)
    ns["keras37"](lambda obj, name, value: monkeypatch.setattr(obj, name, value, raising=False))


@pytest.fixture(scope="module")
def synth():
    return synthetic_images()


def test_mirrored_fit_builds_and_matches_the_default_strategy_on_keras37_variables(synth, monkeypatch):
    # Keras 3.7: "creating distributed tf.Variable with aggregation=MEAN and a non-floating dtype is not
    # supported" while building the masking's (and dropout's) seed generators under any MirroredStrategy
    _keras37(monkeypatch)
    cfg = TINY.replace(shuffle_buffer=0, dropout=0.1)
    h1 = S2VecModel(cfg).fit(synth, verbose=0).history
    model = S2VecModel(cfg)
    h2 = model.fit(synth, strategy=tf.distribute.MirroredStrategy(["/cpu:0"]), verbose=0).history
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-6)
    np.testing.assert_allclose(h2["val_loss"], h1["val_loss"], rtol=1e-6)
    seeds = [v for v in model.keras_model.variables if v.name == "seed_generator_state"]
    assert len(seeds) >= 2  # the masking's and the dropout layers'
    assert all(v.value.aggregation == tf.VariableAggregation.NONE for v in seeds)


def test_auto_eagerness_is_graph_mode_for_several_replicas():
    # an eager fit under one MirroredStrategy and a traced one under another (run_eagerly="auto" chose eager for
    # short runs) failed in TensorFlow's collectives: "Shape mismatch in the collective instance 100"
    two = types.SimpleNamespace(num_replicas_in_sync=2, extended=types.SimpleNamespace(
        worker_devices=("/cpu:0", "/cpu:1")))
    one = types.SimpleNamespace(num_replicas_in_sync=1, extended=types.SimpleNamespace(worker_devices=("/cpu:0",)))
    assert resolve_run_eagerly("auto", 2, one) is True
    assert resolve_run_eagerly("auto", 2, two) is False
    assert resolve_run_eagerly(True, 2, two) is True


def test_a_fit_after_a_resumed_fit_runs_every_epoch(synth, tmp_path):
    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    cfg = TINY.replace(epochs=2, shuffle_buffer=0)
    with pytest.raises(KeyboardInterrupt):
        S2VecModel(cfg).fit(synth, checkpoint_dir=tmp_path / "ck", callbacks=[Stop()], verbose=0)
    model = S2VecModel(cfg)
    assert model.fit(synth, checkpoint_dir=tmp_path / "ck", verbose=0).epoch == [1]
    # Keras' BackupAndRestore left the resumed epoch on the Keras model: the next fit ran epoch 1 only
    assert model.fit(synth, verbose=0).epoch == [0, 1]


PRELUDE = textwrap.dedent(f"""
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    sys.path.insert(0, {str(TESTS)!r})
    from test_model import TINY, synthetic_images
    from geos2vec.model import S2VecModel
    synth = synthetic_images()
    cfg = TINY.replace(shuffle_buffer=0, epochs=1)
""")

# one strategy, eager steps (the per-replica losses are read as they are computed; an eager fit under one
# MirroredStrategy and a traced one under another clash in TensorFlow's collectives)
TWO_REPLICAS = PRELUDE + KERAS37 + textwrap.dedent("""
    import tempfile
    from pathlib import Path

    import geos2vec.model.mae as mae

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    seen, mse = [], mae.masked_mse

    def recording(x, *args, **kwargs):
        out = mse(x, *args, **kwargs)
        seen.append((float(out), int(x.shape[0])))
        return out

    def fit_recorded(**kwargs):
        seen.clear()
        mae.masked_mse = recording
        try:
            history = S2VecModel(cfg).fit(synth, strategy=strategy, verbose=0, run_eagerly=True, **kwargs).history
        finally:
            mae.masked_mse = mse
        # 10 training images: steps of 8 and 2 images, split 4 + 4 and 1 + 1 over the replicas; then validation
        assert [n for _, n in seen[:4]] == [4, 4, 1, 1], seen
        expected = sum(v * n for v, n in seen[:4]) / 10
        np.testing.assert_allclose(history["loss"], [expected], rtol=1e-6)  # the per-image mean
        return history

    history = fit_recorded()
    keras37(setattr)  # from here on, Keras 3.7's variables and loss logging
    old = fit_recorded()
    np.testing.assert_allclose(old["loss"], history["loss"], rtol=1e-6)
    np.testing.assert_allclose(old["val_loss"], history["val_loss"], rtol=1e-6)

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    cfg = cfg.replace(epochs=2)
    full = S2VecModel(cfg).fit(synth, strategy=strategy, verbose=0, run_eagerly=True).history
    ck, model = Path(tempfile.mkdtemp()) / "ck", S2VecModel(cfg)
    try:
        model.fit(synth, strategy=strategy, checkpoint_dir=ck, callbacks=[Stop()], verbose=0, run_eagerly=True)
    except KeyboardInterrupt:  # the same call again resumes
        pass
    resumed = model.fit(synth, strategy=strategy, checkpoint_dir=ck, verbose=0, run_eagerly=True)
    assert resumed.epoch == [1], resumed.epoch
    np.testing.assert_allclose(resumed.history["loss"], full["loss"][1:], rtol=1e-6)
    np.testing.assert_allclose(resumed.history["val_loss"], full["val_loss"][1:], rtol=1e-6)
    assert resumed.params["replicas"] == 2
    print("ok")
""")


def test_two_replicas_log_the_mean_loss_and_resume():
    """2 replicas: the logged loss is the per-image mean (Keras 3.7 too); a resumed fit continues the same run."""
    proc = subprocess.run([sys.executable, "-c", TWO_REPLICAS], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
