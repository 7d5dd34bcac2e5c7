"""The Keras layer of :mod:`geos2vec.location` (importing this module imports Keras).

:mod:`geos2vec.location` re-exports :class:`LocationEncoder` lazily, so ``import geos2vec.location`` stays free
of Keras.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ._stacklevel import warn
from .errors import Geos2VecWarning, InvalidInputError
from .location import _check_frequency_num, _check_method, _encode, _frequencies, output_dim

__all__ = ["LocationEncoder"]


class _ReducedPhases:
    """``keras.ops`` for :func:`~geos2vec.location._encode`, whose ``sin`` / ``cos`` reduce the angle mod 2π first.

    Keras' JAX backend computes ``ops.sin`` / ``ops.cos`` of a float64 tensor in float32, even with
    ``jax_enable_x64``: at the finest default scale (angles ~1e4 rad) that lost ~1e-3 rad of phase. The reduction
    (``ops.mod``, which keeps float64) leaves angles below 2π, where float32 loses ~1e-7.
    """

    def __getattr__(self, name):
        return getattr(ops, name)

    @staticmethod
    def _reduce(angle):
        return ops.mod(angle, ops.convert_to_tensor(2.0 * np.pi, dtype=angle.dtype))  # not cast(): 2π in float32

    def sin(self, angle):
        return ops.sin(self._reduce(angle))

    def cos(self, angle):
        return ops.cos(self._reduce(angle))


_OPS = _ReducedPhases()


@keras.saving.register_keras_serializable(package="geos2vec")
class LocationEncoder(keras.layers.Layer):
    """Keras layer: ``(..., 2)`` [lat, lng] in degrees -> ``(..., dims)``.

    No trainable weights; the same formulas as :func:`encode_location`
    (follow it with Dense layers for the Space2Vec "NN" part). Inputs are
    not range-checked inside the graph: validate them with
    :func:`geos2vec.cells.check_latlng` beforehand. Keras' ``fit`` / ``predict`` cast float64 NumPy inputs to
    float32 before the model sees them (~1e-3 rad at the finest default scale): feed a ``tf.data.Dataset`` or
    call the model directly to keep float64 degrees. Under Keras' JAX backend float64 needs
    ``jax.config.update("jax_enable_x64", True)``; without it the layer computes in float32 and warns.
    """

    def __init__(self, method="theory", frequency_num=16, min_radius=1e-4, max_radius=1.0, **kwargs):
        kwargs.setdefault("autocast", False)  # keep float64 degrees: fine scales need them
        super().__init__(**kwargs)
        self.method = _check_method(method)
        # validated like encode_location's, for every method (2.5 raises rather than becoming 2)
        self._freqs = _frequencies(self.method, frequency_num, min_radius, max_radius)
        self.frequency_num = _check_frequency_num(frequency_num)
        self.min_radius = float(min_radius)
        self.max_radius = float(max_radius)
        self.output_features = output_dim(self.method, self.frequency_num)

    @staticmethod
    def _check_shape(shape):
        if len(shape) == 0 or shape[-1] not in (2, None):  # None: a graph's unknown width, checked by reshape
            raise InvalidInputError(f"LocationEncoder expects inputs of shape (..., 2) = [lat, lng], got "
                                    f"{tuple(shape)}")

    def call(self, inputs):
        inputs = ops.convert_to_tensor(inputs)
        self._check_shape(inputs.shape)
        lead = ops.shape(inputs)[:-1]
        # float64 inside: at the finest scales the angles reach ~1e4 rad,
        # where float32 would lose ~1e-3 of absolute precision.
        flat = ops.cast(ops.reshape(inputs, (-1, 2)), "float64")
        rad = flat * (np.pi / 180.0)
        freqs = ops.convert_to_tensor(self._freqs, dtype="float64")
        if keras.backend.standardize_dtype(flat.dtype) != "float64":
            warn("LocationEncoder: the backend has no float64 (JAX without jax_enable_x64?), so degrees and phases "
                 "are float32 and the finest scales move by up to ~1e-3 rad; enable float64 "
                 "(jax.config.update('jax_enable_x64', True)) for exact encodings", Geos2VecWarning)
        out = _encode(_OPS, rad[:, 0], rad[:, 1], self.method, freqs)
        return ops.cast(ops.reshape(out, tuple(lead) + (self.output_features,)), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        self._check_shape(input_shape)  # a keras.Input((3,)) was accepted, failing only when fed
        return tuple(input_shape[:-1]) + (self.output_features,)

    def get_config(self):
        config = super().get_config()
        config.update(
            method=self.method,
            frequency_num=self.frequency_num,
            min_radius=self.min_radius,
            max_radius=self.max_radius,
        )
        return config
