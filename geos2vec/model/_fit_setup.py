"""What ``fit`` sets up before its first step (:mod:`geos2vec.model.train`): the seeds, the optimizer, the compile.

:func:`set_random_seed` seeds without clearing TensorFlow's eager kernel cache, :func:`make_optimizer` makes the
fused AdamW with the cosine schedule, and :func:`compile_for_fit` compiles a model for one ``fit``, reusing the
previous compilation (and its traced steps) when the settings are the same. All three are importable from
:mod:`geos2vec.model.train`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from .config import S2VecConfig


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)``, keeping TensorFlow's eager kernel cache when it can.

    ``tf.random.set_seed`` clears that cache, so every op of the next eager step creates its kernel again: 0.34 s
    of a fresh one-step ``fit`` of the paper-size model (1.50 -> 1.15 s, same losses). When TensorFlow's
    global seed already is ``seed``, this sets what ``keras.utils.set_random_seed`` sets -- Python's and NumPy's
    generators, Keras' global seed and seed generator, TensorFlow's sequence of operation seeds -- without
    clearing the cache; otherwise (or if those internals move in another Keras or TensorFlow) it calls
    ``keras.utils.set_random_seed``. ``tests/test_model.py`` checks the two leave the same state.

    Parameters
    ----------
    seed : int
        The seed.
    """
    import random

    import keras
    import numpy as np

    try:
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
        from tensorflow.python.eager import context

        ctx = context.context()
        same = ctx._seed == seed and hasattr(ctx, "_rng")
    except (ImportError, AttributeError):
        same = False
    if not same:
        keras.utils.set_random_seed(seed)
        return
    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    ctx._rng = random.Random(seed)  # the operation-seed sequence tf.random.set_seed restarts


def make_optimizer(config: S2VecConfig, steps_per_epoch: int, epochs: int) -> keras.optimizers.AdamW:
    """AdamW (weight decay, clip-norm) with a cosine-decayed learning rate (optional linear warm-up).

    The optimizer is :class:`~geos2vec.model.optimizer.FusedAdamW`: Keras' AdamW whose TensorFlow update
    runs one fused kernel per variable (an eager step's update 0.36 s -> 0.07 s for the paper-size model).

    Parameters
    ----------
    config : S2VecConfig
        ``learning_rate``, ``cosine_alpha``, ``warmup_epochs``, ``weight_decay`` and ``clipnorm``.
    steps_per_epoch : int
        Optimizer steps (batches) per epoch.
    epochs : int
        Epochs of the run: the schedule decays over ``steps_per_epoch * epochs`` steps (after the warm-up).

    Returns
    -------
    FusedAdamW
        A ``keras.optimizers.AdamW`` subclass with a ``CosineDecay`` schedule from ``learning_rate`` down
        to ``cosine_alpha * learning_rate``; with ``warmup_epochs > 0`` it first rises linearly from 0 over
        ``round(warmup_epochs * steps_per_epoch)`` steps.
    """
    import keras

    total = max(int(steps_per_epoch) * int(epochs), 1)
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if warmup > 0:
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(total - warmup, 1), alpha=config.cosine_alpha,
            warmup_target=config.learning_rate, warmup_steps=warmup)
    else:
        lr = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=total,
                                                    alpha=config.cosine_alpha)
    from .optimizer import FusedAdamW

    # a fixed name (Keras numbers unnamed optimizers: fused_adam_w_1, _2, ...): the variables' names are then the
    # same in every fit, and TensorFlow's eager kernel cache, keyed on them, serves a new fit's 218 variables
    # (building them: 0.19 -> 0.09 s for the paper-size model)
    return FusedAdamW(learning_rate=lr, weight_decay=config.weight_decay, clipnorm=config.clipnorm,
                      name="fused_adam_w")


def _optimizer_key(config, steps_per_epoch, epochs, run_eagerly, strategy):
    fields = ("learning_rate", "cosine_alpha", "warmup_epochs", "weight_decay", "clipnorm")
    return (tuple(getattr(config, f) for f in fields), int(steps_per_epoch), int(epochs), bool(run_eagerly),
            id(strategy))


def compile_for_fit(model: keras.Model, config: S2VecConfig, steps_per_epoch: int, epochs: int,
                    strategy: tf.distribute.Strategy, *, run_eagerly: bool = False) -> bool:
    """Compile ``model`` with a fresh optimizer for one ``fit`` call, tracing its train step at most once.

    The optimizer's variables are created here (``optimizer.build``), not inside the first traced step:
    TensorFlow traces a function that creates variables twice, which doubled the set-up of every
    ``fit``. When ``model`` was last compiled here for the same optimizer settings, steps, epochs,
    eagerness and strategy, it is not compiled again: the optimizer's variables are reset to their
    initial values (step 0, zero moments), which is what a fresh optimizer holds, and the traced train and
    test functions are reused.

    Parameters
    ----------
    model : keras.Model
        The masked autoencoder (built).
    config : S2VecConfig
        Optimizer settings (see :func:`make_optimizer`).
    steps_per_epoch, epochs : int
        The run's length (the learning-rate schedule depends on it).
    strategy : tf.distribute.Strategy
        The strategy the model's variables live under.
    run_eagerly : bool
        Keras' ``run_eagerly``.

    Returns
    -------
    bool
        True when the model was compiled, False when the previous compilation was reused.
    """
    key = _optimizer_key(config, steps_per_epoch, epochs, run_eagerly, strategy)
    opt = getattr(model, "optimizer", None)
    initial = getattr(model, "_geos2vec_optimizer_initial", None)
    if (getattr(model, "_geos2vec_compiled_for", None) == key and opt is not None and initial is not None
            and opt is getattr(model, "_geos2vec_optimizer", None)):
        with strategy.scope():
            for var, value in zip(opt.variables, initial):
                var.assign(value)
        return False
    import numpy as np

    from .distribute import strategy_scope

    with strategy_scope(strategy):
        model.compile(optimizer=make_optimizer(config, steps_per_epoch, epochs), run_eagerly=run_eagerly)
        model.optimizer.build(model.trainable_variables)
    # np.asarray, not keras.ops.convert_to_numpy / np.array of the variable: those call its __array__ with copy=,
    # which Keras' and TensorFlow's lack, so NumPy 2 warned (DeprecationWarning) once per optimizer variable
    model._geos2vec_optimizer_initial = [np.array(np.asarray(v)) for v in model.optimizer.variables]
    model._geos2vec_compiled_for, model._geos2vec_optimizer = key, model.optimizer
    return True
