"""The paper's 2-layer MLP probe: one head as a Keras model, many heads trained at once, its options checked.

:func:`build_mlp` is the reference model of one configuration; :func:`_train_group` trains many such heads
(splits x learning rates x dropouts) as one batched model (:mod:`~geos2vec.evaluate.mlp_layers`), with AdamW and
early stopping per head. :func:`~geos2vec.evaluate.protocol.evaluate` uses it for ``probes=["mlp"]``.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np

from .._fork import check_tf_usable
from .._optional import needs, require
from ..errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import keras

__all__ = ["build_mlp"]


def _require_mlp() -> None:
    """Keras and TensorFlow imported, or an ImportError naming the extra that brings them (ridge needs neither)."""
    require("keras", "tensorflow", what="evaluate's MLP probe (probes=['ridge'] runs without it)")
    check_tf_usable("evaluate's MLP probe (probes=['ridge'] runs here)")  # a fork after TensorFlow ran: it hangs


@needs("keras", what="geos2vec.evaluate.build_mlp")
def build_mlp(input_dims: Sequence[int], hidden: int = 64, dropout: float = 0.0, fusion: str = "concat",
              fusion_units: int = 64) -> keras.Model:
    """The downstream 2-layer MLP as a plain Keras model (one configuration).

    ``inputs (one per block) -> fusion -> Dense(hidden, relu) -> Dropout(dropout) -> Dense(1)``.
    The harness trains many of these at once (see the module docstring); this
    model is the reference for one of them.

    Parameters
    ----------
    input_dims : sequence of int
        Width of each input block.
    hidden : int
        Units of the hidden layer.
    dropout : float
        Dropout rate after the hidden layer.
    fusion : {"concat", "weighted", "project"}
        How several blocks are fused (:func:`geos2vec.fusion.fusion_layer`); unused for one block.
    fusion_units : int
        Output width of ``"project"`` fusion.

    Returns
    -------
    keras.Model
        Untrained and uncompiled; inputs ``block0, block1, ...`` of shape ``(None, d)``, output
        ``(None, 1)``.
    """
    import keras
    from ..fusion import fusion_layer

    inputs = [keras.Input((int(d),), name=f"block{i}") for i, d in enumerate(input_dims)]
    x = inputs[0] if len(inputs) == 1 else fusion_layer(fusion, units=fusion_units)(inputs)
    x = keras.layers.Dense(hidden, activation="relu", name="hidden")(x)
    x = keras.layers.Dropout(dropout)(x)
    out = keras.layers.Dense(1, name="out")(x)
    return keras.Model(inputs, out)


def _parallel_mlp_class():
    from .mlp_layers import ParallelMLP
    return ParallelMLP


def _adamw_step(variables, grads, moments, velocities, step, lr_heads, weight_decay, beta_1=0.9, beta_2=0.999,
                epsilon=1e-7):
    """One Keras-``AdamW`` update with a learning rate per head (leading axis of every variable)."""
    import tensorflow as tf

    t = tf.cast(step, tf.float32)
    corr = tf.sqrt(1.0 - tf.pow(beta_2, t)) / (1.0 - tf.pow(beta_1, t))
    for v, g, m, s in zip(variables, grads, moments, velocities):
        lr = tf.reshape(lr_heads, [-1] + [1] * (len(v.shape) - 1))
        v.assign(v - v * weight_decay * lr)  # decoupled weight decay, applied first as keras.optimizers.AdamW does
        m.assign_add((g - m) * (1.0 - beta_1))
        s.assign_add((tf.square(g) - s) * (1.0 - beta_2))
        v.assign_sub(m * (lr * corr) / (tf.sqrt(s) + epsilon))


class _GroupTrainer:
    """Training state of a set of heads, with a TensorFlow graph that runs up to ``k`` epochs."""

    def __init__(self, xs_t, y_t, state, *, lrs, dropouts, train_idx, val_idx, hidden, fusion, fusion_units,
                 patience, weight_decay, batch_size, seed, step, epoch, train_w=None, val_w=None):
        import tensorflow as tf

        heads = len(lrs)
        self.heads = heads
        self.mlp = _parallel_mlp_class()([x.shape[1] for x in xs_t], heads, hidden, dropouts, fusion, fusion_units,
                                         seed)
        self.mlp([x[:2] for x in xs_t])  # build
        self.variables = list(self.mlp.trainable_variables)
        for v, w in zip(self.variables, state["weights"]):
            v.assign(w)
        self.moments = [tf.Variable(w) for w in state["moments"]]
        self.velocities = [tf.Variable(w) for w in state["velocities"]]
        self.best = [tf.Variable(w) for w in state["best"]]
        self.best_val = tf.Variable(np.asarray(state["best_val"], np.float32))
        self.wait = tf.Variable(np.asarray(state["wait"], np.int32))
        self.best_epoch = tf.Variable(np.asarray(state["best_epoch"], np.int32))
        self.stopped = tf.Variable(tf.zeros([heads], tf.bool))
        self.step = tf.Variable(int(step), dtype=tf.int64)
        self.epoch = tf.Variable(int(epoch), dtype=tf.int32)
        gen = tf.random.Generator.from_seed(seed)
        lr_t = tf.constant(np.asarray(lrs, np.float32))
        tr_t = tf.constant(np.asarray(train_idx, np.int32))
        va_t = tf.constant(np.asarray(val_idx, np.int32))
        # 0/1 row weights: padding rows (splits of unequal sizes share one array) weigh 0
        trw_t = tf.constant(np.ones(tr_t.shape, np.float32) if train_w is None else np.asarray(train_w, np.float32))
        vaw_t = tf.constant(np.ones(va_t.shape, np.float32) if val_w is None else np.asarray(val_w, np.float32))
        y_va = tf.gather(y_t, va_t)
        va_n = tf.maximum(tf.reduce_sum(vaw_t, axis=1), 1.0)
        n_tr = tr_t.shape[1]
        n_steps = max(1, int(round(n_tr / batch_size)))
        per_step = n_tr // n_steps  # equal batches; the < n_steps left-over rows differ each epoch
        mlp, variables = self.mlp, self.variables

        def forward(idx, training):  # idx (heads, rows) -> predictions (heads, rows)
            return mlp([tf.gather(x, idx) for x in xs_t], training=training)

        def train_step(idx, wb):
            yb = tf.gather(y_t, idx)
            with tf.GradientTape() as tape:
                sq = tf.square(forward(idx, True) - yb) * wb
                per_head = tf.reduce_sum(sq, axis=1) / tf.maximum(tf.reduce_sum(wb, axis=1), 1.0)
                loss = tf.reduce_sum(per_head)  # heads are independent: d loss / d head = d its own MSE
            grads = tape.gradient(loss, variables)
            self.step.assign_add(1)
            _adamw_step(variables, grads, self.moments, self.velocities, self.step, lr_t, weight_decay)

        def one_epoch():
            if n_steps == 1:
                train_step(tr_t, trw_t)
            else:
                order = tf.argsort(gen.uniform([heads, n_tr]), axis=1)[:, : n_steps * per_step]
                batches = tf.reshape(tf.gather(tr_t, order, batch_dims=1), [heads, n_steps, per_step])
                weights = tf.reshape(tf.gather(trw_t, order, batch_dims=1), [heads, n_steps, per_step])
                for s in tf.range(n_steps):
                    train_step(batches[:, s], weights[:, s])
            self.epoch.assign_add(1)
            val = tf.reduce_sum(tf.square(forward(va_t, False) - y_va) * vaw_t, axis=1) / va_n
            improved = tf.logical_and(val < self.best_val, tf.logical_not(self.stopped))
            self.best_val.assign(tf.where(improved, val, self.best_val))
            self.best_epoch.assign(tf.where(improved, self.epoch, self.best_epoch))
            self.wait.assign(tf.where(improved, 0, self.wait + 1))
            self.stopped.assign(tf.logical_or(self.stopped, self.wait >= patience))
            for v, b in zip(variables, self.best):
                b.assign(tf.where(tf.reshape(improved, [heads] + [1] * (len(v.shape) - 1)), v, b))

        @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
        def run(n_epochs):
            done = tf.constant(0)
            while done < n_epochs and not tf.reduce_all(self.stopped):
                one_epoch()
                done += 1
            return done

        self.run = run

    def state(self):
        return {
            "weights": [v.numpy() for v in self.variables], "moments": [v.numpy() for v in self.moments],
            "velocities": [v.numpy() for v in self.velocities], "best": [v.numpy() for v in self.best],
            "best_val": self.best_val.numpy(), "wait": self.wait.numpy(), "best_epoch": self.best_epoch.numpy(),
        }


def _train_group(xs, y, train_idx, val_idx, *, lrs, hidden, dropouts, fusion, fusion_units, max_epochs, patience,
                 weight_decay, seed, batch_size=512, chunk=20, compact=0.7, on_epochs=None, train_w=None, val_w=None,
                 eval_idx=None):
    """Train ``heads = len(lrs)`` independent MLPs (:func:`build_mlp` each) at once.

    Head ``i`` trains on the cells ``train_idx[i]`` with learning rate
    ``lrs[i]`` and dropout ``dropouts[i]`` (AdamW, MSE) and stops early on its
    mean squared error over ``val_idx[i]``: after ``patience`` epochs without
    a better one, its best weights are kept. An epoch is one pass over the
    head's own training cells, shuffled per head, in ``round(n_train /
    batch_size)`` equal batches (full batch when ``n_train <= 1.5 batch_size``).
    Epochs run inside a TensorFlow graph, ``chunk`` at a time; when the heads
    still training fall to ``compact`` of those in the graph, the stopped ones
    are dropped (a smaller graph is built), so early stopping saves compute.

    ``train_w`` / ``val_w`` (heads, rows), optional, are 0/1 row weights: rows
    of weight 0 pad the index arrays of heads with fewer cells (losses are
    means over the rows of weight 1). ``eval_idx`` (heads, rows), optional:
    the rows each head predicts at the end (default: all rows of ``xs``).

    Returns
    -------
    pred : ndarray (heads, n)
        Predictions of the restored best weights on all rows (or on ``eval_idx``).
    best_val : ndarray (heads,)
        Best validation MSE.
    best_epoch : ndarray (heads,)
        Epoch of the best validation MSE (1-based).
    """
    import tensorflow as tf

    heads = len(lrs)
    lrs = np.asarray(lrs, np.float32)
    dropouts = np.asarray(dropouts, np.float32)
    train_idx = np.asarray(train_idx, np.int32)
    val_idx = np.asarray(val_idx, np.int32)
    if train_idx.shape[0] != heads or val_idx.shape[0] != heads or len(dropouts) != heads:
        raise InvalidInputError("train_idx, val_idx, lrs and dropouts need one row/entry per head")
    train_w = np.ones(train_idx.shape, np.float32) if train_w is None else np.asarray(train_w, np.float32)
    val_w = np.ones(val_idx.shape, np.float32) if val_w is None else np.asarray(val_w, np.float32)
    if train_w.shape != train_idx.shape or val_w.shape != val_idx.shape:
        raise InvalidInputError("train_w / val_w must have the shapes of train_idx / val_idx")
    xs_t = [tf.constant(x, tf.float32) for x in xs]
    y_t = tf.constant(np.asarray(y, np.float32))
    full = _parallel_mlp_class()([x.shape[1] for x in xs], heads, hidden, dropouts, fusion, fusion_units, seed)
    full([x[:2] for x in xs_t])  # initial weights of every head
    init = [v.numpy() for v in full.trainable_variables]
    final = [w.copy() for w in init]
    final_val = np.full(heads, np.inf)
    final_epoch = np.zeros(heads, np.int32)
    state = {"weights": init, "moments": [np.zeros_like(w) for w in init],
             "velocities": [np.zeros_like(w) for w in init], "best": [w.copy() for w in init],
             "best_val": np.full(heads, np.inf), "wait": np.zeros(heads, np.int32),
             "best_epoch": np.zeros(heads, np.int32)}
    active = np.arange(heads)
    epochs, step, rebuild = 0, 0, 0
    while active.size and epochs < max_epochs:
        trainer = _GroupTrainer(
            xs_t, y_t, state, lrs=lrs[active], dropouts=dropouts[active], train_idx=train_idx[active],
            val_idx=val_idx[active], hidden=hidden, fusion=fusion, fusion_units=fusion_units, patience=patience,
            weight_decay=weight_decay, batch_size=batch_size, seed=seed + 7919 * rebuild, step=step, epoch=epochs,
            train_w=train_w[active], val_w=val_w[active],
        )
        rebuild += 1
        while epochs < max_epochs:
            done = int(trainer.run(tf.constant(min(chunk, max_epochs - epochs), tf.int32)))
            epochs += done
            if on_epochs is not None:
                on_epochs(done)
            n_stopped = int(tf.reduce_sum(tf.cast(trainer.stopped, tf.int32)))
            if n_stopped == active.size or active.size - n_stopped <= compact * active.size:
                break
        step = int(trainer.step.numpy())
        state = trainer.state()
        stopped = trainer.stopped.numpy()
        if epochs >= max_epochs:
            stopped[:] = True
        for f, b in zip(final, state["best"]):
            f[active[stopped]] = b[stopped]
        final_val[active[stopped]] = state["best_val"][stopped]
        final_epoch[active[stopped]] = state["best_epoch"][stopped]
        keep = ~stopped
        state = {k: ([w[keep] for w in v] if isinstance(v, list) else v[keep]) for k, v in state.items()}
        active = active[keep]
    for v, w in zip(full.trainable_variables, final):
        v.assign(w)
    if eval_idx is None:
        pred = np.asarray(full(xs_t, training=False), dtype=np.float64)
    else:  # in row chunks: (heads, rows, features) gathered inputs stay small
        eval_idx = np.asarray(eval_idx, np.int32)
        step_rows = max(1, int(2**25 // max(1, heads * sum(x.shape[1] for x in xs))))
        pred = np.concatenate([
            np.asarray(full([tf.gather(x, eval_idx[:, a:a + step_rows]) for x in xs_t], training=False), np.float64)
            for a in range(0, eval_idx.shape[1], step_rows)], axis=1)
    return pred, final_val, final_epoch


def _pad(parts):
    """Index arrays of unequal lengths -> (rows, max_len) indices and 0/1 weights."""
    width = max(len(p) for p in parts)
    idx = np.zeros((len(parts), width), np.int64)
    w = np.zeros((len(parts), width), np.float32)
    for i, p in enumerate(parts):
        idx[i, : len(p)] = p
        idx[i, len(p):] = p[0]
        w[i, : len(p)] = 1.0
    return idx, w


def _check_mlp_options(sweep, *, fusion, fusion_units, max_epochs, patience, batch_size, weight_decay, mlp=False):
    """The MLP probe's options checked before anything trains (``mlp``: and Keras installed); the sweep as lists.

    Before, ``fusion="bogus"`` was accepted (and ignored for one-block methods), ``batch_size=0`` raised
    ``ZeroDivisionError`` mid-run, ``max_epochs=0`` or ``hidden=0`` scored untrained or constant heads, a
    dropout of 1.5 trained, and a scalar in ``sweep`` raised ``'float' object is not iterable``.
    """
    from ..fusion import KINDS

    def number(v, what, integer=False, low=None, high=None, low_open=False):
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) \
            and (not integer or int(v) == v) and (low is None or (v > low if low_open else v >= low)) \
            and (high is None or v < high)
        if not ok:
            rng = (f" {'>' if low_open else '>='} {low}" if low is not None else "") + \
                  (f" and < {high}" if high is not None else "")
            raise InvalidInputError(f"{what} must be a{'n integer' if integer else ' number'}{rng}, got {v!r}")
        return int(v) if integer else float(v)

    if fusion not in KINDS:
        raise InvalidInputError(f"unknown fusion {fusion!r}; choose one of {list(KINDS)}")
    out = {}
    for key, kw in (("lr", dict(low=0, low_open=True)), ("hidden", dict(integer=True, low=1)),
                    ("dropout", dict(low=0, high=1))):
        values = sweep[key]
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise InvalidInputError(f"sweep[{key!r}] must be a list of values to try, got {values!r}")
        values = list(values)
        if not values:
            raise InvalidInputError(f"sweep[{key!r}] is empty; give at least one value")
        out[key] = [number(v, f"sweep[{key!r}] value", **kw) for v in values]
    number(fusion_units, "fusion_units", integer=True, low=1)
    number(max_epochs, "max_epochs", integer=True, low=1)
    number(patience, "patience", integer=True, low=0)
    number(batch_size, "batch_size", integer=True, low=1)
    number(weight_decay, "weight_decay", low=0)
    if mlp:
        _require_mlp()
    return {**sweep, **out}
