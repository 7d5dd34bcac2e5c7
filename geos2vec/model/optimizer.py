"""``FusedAdamW``: Keras' AdamW whose TensorFlow update runs TensorFlow's fused training kernels.

Keras 3 updates each variable with a dozen separate ops (and, for weight decay, evaluates the learning-rate
schedule again for every variable). In a traced step that is only a larger graph; in an eager step -- a short
``fit``, which ``run_eagerly="auto"`` runs eagerly -- every op pays Python and dispatch overhead: for the
paper-size model (109 variables) one eager ``apply`` took 0.35 s on a 2-core CPU against 0.02 s for one
``ResourceApplyAdam`` per variable (``benchmarks/bench_optimizer.py``). This class keeps everything of
``keras.optimizers.AdamW`` (its variables, config, schedule, clipping, distribution) and replaces only the
per-variable arithmetic on the TensorFlow backend:

* Adam: ``tf.raw_ops.ResourceApplyAdam`` (the kernel TensorFlow's own Keras 2 Adam used), one op per variable;
* decoupled weight decay: ``variable -= lr * (variable * weight_decay)`` with the learning rate evaluated once
  per step (the same values as Keras: the product is the same, bit for bit);
* per-variable clipping (``clipnorm``): the norms of all gradients as one vector, then Keras'
  ``tf.clip_by_norm`` expression per gradient (four ops per gradient instead of nine; the same values).

The Adam kernel computes Keras' formula in the same order, except that it forms ``1 - beta_1`` and
``1 - beta_2`` from the float32 betas where Keras rounds them from float64: with ``beta_2 = 0.999`` the
second moment's factor is 1.3e-5 relatively smaller (0.0009999871 for 0.001), as in TensorFlow's Keras 2
Adam. Parameters agree with Keras' AdamW to about 1e-6 relatively (``tests/test_optimizer.py`` checks both
against a NumPy AdamW). Sparse (``IndexedSlices``) gradients,
``amsgrad`` and other backends take Keras' own path unchanged.
"""

from __future__ import annotations

import keras

__all__ = ["FusedAdamW"]


def _tf_backend() -> bool:
    return keras.backend.backend() == "tensorflow"


@keras.saving.register_keras_serializable(package="geos2vec")
class FusedAdamW(keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` with one fused TensorFlow kernel per variable and step.

    Takes the same arguments as ``keras.optimizers.AdamW`` and keeps the same optimizer variables in the same
    order, so ``.weights.h5`` checkpoints and ``BackupAndRestore`` backups of either load into the other. A
    ``model.keras`` of a fitted model names this class (registered as ``geos2vec>FusedAdamW``; importing this
    module registers it, as :func:`geos2vec.load_model` does before reading a ``model.keras``).
    """

    def _clip_gradients(self, grads):
        # Keras clips each gradient with tf.clip_by_norm (nine ops each); here the norms of all gradients are
        # formed as one vector, then each gradient is scaled by the same expression: the same values, bit for bit
        if not _tf_backend() or not (self.clipnorm and self.clipnorm > 0):
            return super()._clip_gradients(grads)  # before importing TensorFlow: JAX hosts may not have it
        import tensorflow as tf

        dense = [g for g in grads if g is not None]
        if not dense or any(isinstance(g, tf.IndexedSlices) for g in dense) or len({g.dtype for g in dense}) != 1:
            return super()._clip_gradients(grads)
        sums = tf.stack([tf.reduce_sum(g * g) for g in dense])
        positive = sums > 0
        norms = tf.where(positive, tf.sqrt(tf.where(positive, sums, tf.ones_like(sums))), sums)
        denominators = iter(tf.unstack(tf.maximum(norms, self.clipnorm)))
        return [None if g is None else (g * self.clipnorm) / next(denominators) for g in grads]

    def _apply_weight_decay(self, variables):
        if not _tf_backend() or self.weight_decay is None:
            return super()._apply_weight_decay(variables)
        import tensorflow as tf

        learning_rate = self.learning_rate  # the schedule, evaluated once for all variables
        cast = {}

        def scalars(dtype):
            if dtype not in cast:
                cast[dtype] = (tf.cast(learning_rate, dtype), tf.cast(self.weight_decay, dtype))
            return cast[dtype]

        def decay(variable):
            if self._use_weight_decay(variable):
                lr, wd = scalars(variable.dtype)
                # var -= lr * (var * wd): Keras' var - (var * wd) * lr, the same product
                tf.raw_ops.ResourceApplyGradientDescent(var=variable.handle, alpha=lr, delta=variable * wd)

        def distributed(distribution, variables):
            for variable in variables:
                if isinstance(variable, keras.Variable):
                    variable = variable.value
                distribution.extended.update(variable, decay, group=False)

        tf.__internal__.distribute.interim.maybe_merge_call(distributed, self._distribution_strategy, variables)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # Keras' TensorFlow ``_backend_update_step``, with the step's scalars made once for all variables
        if not _tf_backend():
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import tensorflow as tf

        trainable_variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        grads_and_vars = self._all_reduce_sum_gradients(list(zip(grads, trainable_variables)))
        made = {}

        def scalars(dtype):
            if dtype not in made:
                step = tf.cast(self.iterations + 1, dtype)
                made[dtype] = {"lr": tf.cast(learning_rate, dtype),
                               "beta1_power": tf.pow(tf.cast(self.beta_1, dtype), step),
                               "beta2_power": tf.pow(tf.cast(self.beta_2, dtype), step),
                               "beta1": tf.cast(self.beta_1, dtype), "beta2": tf.cast(self.beta_2, dtype),
                               "epsilon": tf.cast(self.epsilon, dtype)}
            return made[dtype]

        def update(variable, gradient):
            if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
                return self.update_step(gradient, variable, learning_rate)
            index = self._get_variable_index(variable)
            tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=self._momentums[index].value.handle,
                                         v=self._velocities[index].value.handle,
                                         grad=tf.cast(gradient, variable.dtype), use_locking=False,
                                         **scalars(variable.dtype))

        def distributed(distribution, grads_and_vars):
            for gradient, variable in grads_and_vars:
                distribution.extended.update(variable, update, args=(gradient,), group=False)

        tf.__internal__.distribute.interim.maybe_merge_call(distributed, self._distribution_strategy,
                                                            grads_and_vars)
