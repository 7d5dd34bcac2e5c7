"""FusedAdamW: the same updates as Keras' AdamW and as a NumPy AdamW, one fused kernel per variable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from geos2vec.model.optimizer import FusedAdamW  # noqa: E402
from geos2vec.model.train import make_optimizer  # noqa: E402


def numpy_adamw(init, grads_per_step, *, lr0, decay_steps, alpha, weight_decay, clipnorm,
                beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """AdamW written out from the papers (Kingma & Ba 2015; Loshchilov & Hutter 2019) in float64."""
    params = [np.asarray(x, np.float64).copy() for x in init]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step):
        progress = min(t, decay_steps) / decay_steps
        lr = lr0 * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * progress)) + alpha)
        for i, g in enumerate(grads):
            g = np.asarray(g, np.float64)
            norm = np.sqrt((g * g).sum())
            if norm > clipnorm:
                g = g * clipnorm / norm
            params[i] -= lr * weight_decay * params[i]
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            step_size = lr * np.sqrt(1 - beta_2 ** (t + 1)) / (1 - beta_1 ** (t + 1))
            params[i] -= step_size * m[i] / (np.sqrt(v[i]) + epsilon)
    return params, m, v


def run(cls, init, grads_per_step, **kw):
    variables = [keras.Variable(x) for x in init]
    schedule = keras.optimizers.schedules.CosineDecay(kw["lr0"], kw["decay_steps"], alpha=kw["alpha"])
    opt = cls(learning_rate=schedule, weight_decay=kw["weight_decay"], clipnorm=kw["clipnorm"])
    for grads in grads_per_step:
        opt.apply([tf.constant(g) for g in grads], variables)
    return opt, [v.numpy() for v in variables]


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), n_steps=st.integers(1, 5),
       shapes=st.lists(st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple), min_size=1, max_size=4),
       weight_decay=st.sampled_from([0.0, 1e-3, 0.05]), clipnorm=st.sampled_from([0.5, 1.0, 100.0]))
def test_fused_adamw_matches_keras_and_numpy(seed, n_steps, shapes, weight_decay, clipnorm):
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=s).astype("float32") for s in shapes]
    grads = [[rng.normal(size=s).astype("float32") for s in shapes] for _ in range(n_steps)]
    kw = dict(lr0=1e-2, decay_steps=4, alpha=0.1, weight_decay=weight_decay, clipnorm=clipnorm)
    ref, ref_m, ref_v = numpy_adamw(init, grads, **kw)
    fused_opt, fused = run(FusedAdamW, init, grads, **kw)
    _, plain = run(keras.optimizers.AdamW, init, grads, **kw)
    for f, p, r, x0 in zip(fused, plain, ref, init):
        moved = np.abs(r - x0).max()
        assert moved > 0
        # float32 arithmetic against float64: a few ulps of the parameters
        np.testing.assert_allclose(f, r, rtol=2e-6, atol=1e-6 * max(1.0, np.abs(x0).max()))
        np.testing.assert_allclose(f, p, rtol=1e-6, atol=5e-7 * max(1.0, np.abs(x0).max()))
    for i, (rm, rv) in enumerate(zip(ref_m, ref_v)):
        np.testing.assert_allclose(fused_opt._momentums[i].numpy(), rm, rtol=1e-5, atol=1e-7)
        # the kernel's 1 - beta_2 is formed in float32: 1.3e-5 relatively below 0.001 (Keras and NumPy: 0.001)
        np.testing.assert_allclose(fused_opt._velocities[i].numpy(), rv, rtol=3e-5, atol=1e-9)
    assert int(fused_opt.iterations.numpy()) == n_steps


def test_weight_decay_alone_is_keras_bit_for_bit():
    """With zero gradients Adam moves nothing: what is left is the decay, identical to Keras'."""
    rng = np.random.default_rng(3)
    init = [rng.normal(size=(17, 5)).astype("float32"), rng.normal(size=(9,)).astype("float32")]
    grads = [[np.zeros_like(x) for x in init] for _ in range(3)]
    kw = dict(lr0=3e-2, decay_steps=3, alpha=0.1, weight_decay=0.1, clipnorm=1.0)
    _, fused = run(FusedAdamW, init, grads, **kw)
    _, plain = run(keras.optimizers.AdamW, init, grads, **kw)
    for f, p, x0 in zip(fused, plain, init):
        assert not np.array_equal(f, x0)
        np.testing.assert_array_equal(f, p)


def test_excluded_variables_are_not_decayed():
    a, b = keras.Variable(np.ones(4, "float32"), name="kernel"), keras.Variable(np.ones(4, "float32"), name="bias")
    opt = FusedAdamW(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.apply([tf.zeros(4), tf.zeros(4)], [a, b])
    np.testing.assert_allclose(a.numpy(), 1 - 0.1 * 0.5)
    np.testing.assert_array_equal(b.numpy(), 1.0)


def test_sparse_gradients_take_keras_path():
    """IndexedSlices (e.g. from a gather) are updated by Keras' own update_step: the same values exactly."""
    init = np.arange(12, dtype="float32").reshape(4, 3) / 7

    def step(cls):
        var = keras.Variable(init)
        opt = cls(learning_rate=0.01, weight_decay=0.01)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(var.value, [0, 2, 2]) ** 2)
        grad = tape.gradient(loss, var.value)
        assert isinstance(grad, tf.IndexedSlices)
        opt.apply([grad], [var])
        return var.numpy()

    fused, plain = step(FusedAdamW), step(keras.optimizers.AdamW)
    assert not np.array_equal(fused, init)
    np.testing.assert_array_equal(fused, plain)


def test_traced_step_equals_eager_step():
    rng = np.random.default_rng(5)
    init = rng.normal(size=(8, 4)).astype("float32")
    grads = [rng.normal(size=(8, 4)).astype("float32") for _ in range(3)]
    out = []
    for traced in (False, True):
        var = keras.Variable(init)
        opt = FusedAdamW(learning_rate=keras.optimizers.schedules.CosineDecay(1e-2, 3), weight_decay=0.01,
                         clipnorm=1.0)
        opt.build([var])

        def apply(g):
            opt.apply([g], [var])

        fn = tf.function(apply) if traced else apply
        for g in grads:
            fn(tf.constant(g))
        out.append(var.numpy())
    np.testing.assert_array_equal(out[0], out[1])


def test_config_round_trip_and_make_optimizer():
    from geos2vec.model.config import S2VecConfig

    cfg = S2VecConfig(learning_rate=2e-3, weight_decay=0.02, clipnorm=0.5)
    opt = make_optimizer(cfg, steps_per_epoch=10, epochs=3)
    assert isinstance(opt, FusedAdamW) and isinstance(opt, keras.optimizers.AdamW)
    # one name for every fit's optimizer (not fused_adam_w_1, _2, ...), so its variables' names repeat
    assert opt.name == make_optimizer(cfg, steps_per_epoch=10, epochs=3).name == "fused_adam_w"
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(opt))
    assert type(again) is FusedAdamW
    assert again.weight_decay == pytest.approx(0.02) and again.clipnorm == pytest.approx(0.5)
    assert float(again.learning_rate) == pytest.approx(2e-3)


MIRRORED = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from geos2vec.model.optimizer import FusedAdamW
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(0)
    init = rng.normal(size=(6, 3)).astype("float32")
    per_replica = [rng.normal(size=(6, 3)).astype("float32") for _ in range(2)]
    out = []
    for cls in (FusedAdamW, keras.optimizers.AdamW):
        with strategy.scope():
            var = keras.Variable(init)
            opt = cls(learning_rate=0.01, weight_decay=0.1, clipnorm=100.0)
            opt.build([var])

        @tf.function
        def step():
            def fn():
                ctx = tf.distribute.get_replica_context()
                g = tf.gather(tf.constant(np.stack(per_replica)), ctx.replica_id_in_sync_group)
                opt.apply([g], [var])
            strategy.run(fn)

        for _ in range(3):
            step()
        values = [v.numpy() for v in var.value.values]
        assert np.array_equal(values[0], values[1]), "replicas differ"
        out.append(values[0])
    assert not np.array_equal(out[0], init)
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6, atol=5e-7)
    print("ok")
""")


def test_mirrored_strategy_over_two_devices():
    """Both replicas get the all-reduced update, as with Keras' AdamW (a fresh process: two logical CPUs)."""
    proc = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), clipnorm=st.sampled_from([1e-3, 0.5, 1.0, 1e3]),
       shapes=st.lists(st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple), min_size=1, max_size=5),
       zero=st.integers(-1, 4), none=st.integers(-1, 4))
def test_clipping_is_keras_clipping_bit_for_bit(seed, clipnorm, shapes, zero, none):
    """Each gradient clipped to norm ``clipnorm`` exactly as Keras' tf.clip_by_norm does (zeros and None too)."""
    rng = np.random.default_rng(seed)
    grads = [tf.constant((rng.normal(size=s) * rng.choice([1e-4, 1.0, 1e3])).astype("float32")) for s in shapes]
    if 0 <= zero < len(grads):
        grads[zero] = tf.zeros_like(grads[zero])
    if 0 <= none < len(grads) and len(grads) > 1:
        grads[none] = None
    fused = FusedAdamW(learning_rate=0.1, clipnorm=clipnorm)._clip_gradients(grads)
    plain = keras.optimizers.AdamW(learning_rate=0.1, clipnorm=clipnorm)._clip_gradients(grads)
    for f, p, g in zip(fused, plain, grads):
        if g is None:
            assert f is None and p is None
            continue
        np.testing.assert_array_equal(f.numpy(), p.numpy())
        norm = np.sqrt((g.numpy().astype(np.float64) ** 2).sum())
        np.testing.assert_allclose(np.sqrt((f.numpy().astype(np.float64) ** 2).sum()), min(norm, clipnorm),
                                   rtol=1e-5, atol=1e-12)


def test_other_backends_never_import_tensorflow(monkeypatch):
    """On JAX or torch (scripts/train_gpu.py runs where TensorFlow may be absent) every override defers to
    Keras before importing TensorFlow."""
    import geos2vec.model.optimizer as O

    v = keras.Variable(np.ones(3, "float32"))
    grads = [tf.constant([3.0, 0.0, 4.0])]
    opt = FusedAdamW(learning_rate=0.1, weight_decay=0.1, clipnorm=1.0)
    opt.build([v])
    monkeypatch.setattr(O, "_tf_backend", lambda: False)
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now raises ImportError
    clipped = opt._clip_gradients(grads)
    np.testing.assert_allclose(clipped[0].numpy(), [0.6, 0.0, 0.8], rtol=1e-6)
    # the weight decay and the update defer to Keras' methods (recorded here: on this TensorFlow install
    # Keras' base class is its TensorFlow optimizer, which would need the module hidden above)
    calls = []
    monkeypatch.setattr(keras.optimizers.AdamW, "_apply_weight_decay", lambda self, vs: calls.append("decay"))
    monkeypatch.setattr(keras.optimizers.AdamW, "_backend_update_step", lambda self, g, vs, lr: calls.append("step"))
    opt._apply_weight_decay([v])
    opt._backend_update_step(clipped, [v], 0.1)
    assert calls == ["decay", "step"]
