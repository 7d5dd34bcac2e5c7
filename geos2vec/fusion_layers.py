"""The fusion layers of :mod:`geos2vec.fusion` (Keras 3; importing this module imports Keras).

:mod:`geos2vec.fusion` re-exports them lazily, so ``import geos2vec.fusion`` stays free of Keras.
"""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

from .errors import InvalidInputError

__all__ = ["Concat", "WeightedAdd", "ProjectAdd"]


def _as_list(inputs, name):
    if not isinstance(inputs, (list, tuple)) or len(inputs) == 0:
        raise InvalidInputError(f"{name} expects a non-empty list of tensors, got {type(inputs).__name__}")
    return list(inputs)


def _shapes(input_shapes, name):
    """The input shapes ``build`` gets, refused as :func:`_as_list` refuses the inputs (one tensor's shape)."""
    if not isinstance(input_shapes, (list, tuple)) or not input_shapes or \
            not all(isinstance(s, (list, tuple)) for s in input_shapes):
        raise InvalidInputError(f"{name} expects a non-empty list of tensors, got one tensor of shape "
                                f"{tuple(input_shapes) if isinstance(input_shapes, (list, tuple)) else input_shapes}")
    return list(input_shapes)


def _positive_int(value, name, allow_none=False):
    """``value`` as an int; anything but a positive integer (or None where allowed) raises (not int()'s errors)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or int(value) != value or value < 1:
        raise InvalidInputError(f"{name} must be {'None or ' if allow_none else ''}a positive integer, got {value!r}")
    return int(value)


def _check_heads(heads):
    return _positive_int(heads, "heads", allow_none=True)


def _check_head_axis(shapes, heads, name):
    """Refuse a ``(M, batch, d)`` input whose M is not ``heads`` (TensorFlow raised a bare broadcast error)."""
    for s in shapes if heads is not None else ():
        if len(s) == 3 and s[0] is not None and s[0] != heads:
            raise InvalidInputError(f"{name}(heads={heads}) got an input of shape {tuple(s)} ({s[0]} heads); pass "
                                    f"(batch, d) or ({heads}, batch, d) inputs, or build it with heads={s[0]}")

@keras.saving.register_keras_serializable(package="geos2vec")
class Concat(keras.layers.Layer):
    """Concatenate the inputs on the last axis (no weights).

    Shared ``(batch, d_i)`` inputs are concatenated as they are; if any
    input has a heads axis ``(M, batch, d_i)``, shared inputs are broadcast
    to it first.
    """

    def __init__(self, heads=None, **kwargs):
        super().__init__(**kwargs)
        self.heads = _check_heads(heads)

    def call(self, inputs):
        inputs = _as_list(inputs, "Concat")
        if len(inputs) == 1:
            return inputs[0]
        ranks = {len(x.shape) for x in inputs}
        if not ranks <= {2, 3}:  # a rank-1 input raised a bare StopIteration
            raise InvalidInputError(f"Concat takes (batch, d) or (heads, batch, d) tensors, got ranks {sorted(ranks)}")
        shapes = [tuple(x.shape) for x in inputs]
        _check_head_axis(shapes, self.heads, "Concat")  # heads=3 with 4-head inputs gave 4 heads
        counts = sorted({s[0] for s in shapes if len(s) == 3 and s[0] is not None})
        if len(counts) > 1:
            raise InvalidInputError(f"Concat got inputs with different numbers of heads {counts} (shapes {shapes}); "
                                    "give every (heads, batch, d) input the same heads")
        if ranks == {3}:
            return ops.concatenate(inputs, axis=-1)
        if ranks == {2}:
            return ops.concatenate(inputs, axis=-1)
        m = next(x.shape[0] for x in inputs if len(x.shape) == 3)
        lifted = [x if len(x.shape) == 3 else ops.broadcast_to(x[None], (m,) + tuple(ops.shape(x))) for x in inputs]
        return ops.concatenate(lifted, axis=-1)

    def compute_output_shape(self, input_shapes):
        dims = [s[-1] for s in input_shapes]
        last = None if None in dims else sum(dims)  # an input of unknown width: a TypeError of None + int
        longest = max(input_shapes, key=len)
        return tuple(longest[:-1]) + (last,)

    def get_config(self):
        return {**super().get_config(), "heads": self.heads}

@keras.saving.register_keras_serializable(package="geos2vec")
class WeightedAdd(keras.layers.Layer):
    """``sum_i w_i x_i`` with learnable scalar weights ``w`` (init ``1/k``).

    All inputs must have the same number of features; otherwise use
    :class:`ProjectAdd`.
    """

    def __init__(self, heads=None, **kwargs):
        super().__init__(**kwargs)
        self.heads = _check_heads(heads)

    def build(self, input_shapes):
        dims = [s[-1] for s in _shapes(input_shapes, "WeightedAdd")]
        _check_head_axis(input_shapes, self.heads, "WeightedAdd")
        if len(set(dims)) != 1:
            raise InvalidInputError(
                f"WeightedAdd needs inputs with equal feature dims, got {dims}; use ProjectAdd "
                "(fusion='project') or Concat (fusion='concat') for different dims"
            )
        k = len(input_shapes)
        shape = (k,) if self.heads is None else (self.heads, k)
        self.w = self.add_weight(name="w", shape=shape, initializer=keras.initializers.Constant(1.0 / k))

    def call(self, inputs):
        inputs = _as_list(inputs, "WeightedAdd")
        k = int(self.w.shape[-1])
        if len(inputs) != k:  # fewer inputs silently dropped weights (more failed inside TensorFlow)
            raise InvalidInputError(f"WeightedAdd was built for {k} inputs, got {len(inputs)}")
        _check_head_axis([tuple(x.shape) for x in inputs], self.heads, "WeightedAdd")
        widths = [x.shape[-1] for x in inputs]
        if len({w for w in widths if w is not None}) > 1:  # built for equal widths, fed others: a broadcast error
            raise InvalidInputError(f"WeightedAdd needs inputs with equal feature dims, got {widths}; use ProjectAdd "
                                    "(fusion='project') or Concat (fusion='concat') for different dims")
        if self.heads is None:
            return sum(self.w[i] * x for i, x in enumerate(inputs))
        out = 0
        for i, x in enumerate(inputs):
            w = self.w[:, i][:, None, None]
            out = out + w * (x[None] if len(x.shape) == 2 else x)
        return out

    def compute_output_shape(self, input_shapes):
        shape = tuple(input_shapes[0])
        if self.heads is not None and len(shape) == 2:
            shape = (self.heads,) + shape
        return shape

    def get_config(self):
        return {**super().get_config(), "heads": self.heads}

def _kernel_initializer(base, index, heads, seed):
    """The initializer of ``ProjectAdd``'s kernel ``index``: its own random draw, per-head fans.

    A Keras initializer object holds one seed and draws the same values for the same shape each call, so kernels
    of equal shape were initialised equal; each kernel now gets a copy seeded ``seed + index`` (``seed``:
    ``ProjectAdd``'s, else the initializer's own integer seed), or unseeded copies drawing their own seeds. With
    ``heads`` a variance-scaling initializer (``glorot_uniform``, ``he_normal``, ...) read the ``(heads, d, units)``
    kernel as one convolution kernel, heads times the fans of one head, and drew every head sqrt(heads) times too
    small; its scale is multiplied by ``heads`` so each head is drawn as a ``(d, units)`` kernel of its own.
    """
    if not isinstance(base, keras.initializers.Initializer):
        return base  # a plain function of (shape, dtype): called as it is
    if seed is None:
        own = getattr(base, "_init_seed", None)
        seed = own if isinstance(own, numbers.Integral) else None
    seed = None if seed is None else int(seed) + index
    if isinstance(base, keras.initializers.VarianceScaling):
        if getattr(base, "input_axes", None) is not None or getattr(base, "output_axes", None) is not None:
            return base  # fans chosen by the user
        return keras.initializers.VarianceScaling(  # unseeded: a fresh seed; a SeedGenerator: shared, draws anew
            scale=base.scale * (heads or 1), mode=base.mode, distribution=base.distribution,
            seed=seed if seed is not None else getattr(base, "_init_seed", None))
    if not hasattr(base, "_init_seed"):
        return base  # not random (zeros, constant, ...)
    if seed is None and base._init_seed is not None:
        return base  # a SeedGenerator: every call draws anew (an integer seed made ``seed`` not None)
    config = base.get_config()
    config["seed"] = seed
    return type(base).from_config(config)

@keras.saving.register_keras_serializable(package="geos2vec")
class ProjectAdd(keras.layers.Layer):
    """``sum_i x_i W_i + b``: project each input to ``units`` features, then add.

    Each kernel ``W_i`` is drawn on its own (kernel ``i`` seeded ``seed + i`` when ``seed`` is given); with
    ``heads`` every head's ``(d_i, units)`` kernel is drawn as a single-head layer's would be (the fans of one head,
    not of the stacked ``(heads, d_i, units)`` tensor).
    """

    def __init__(self, units, heads=None, kernel_initializer="glorot_uniform", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int(units, "units")
        self.heads = _check_heads(heads)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise InvalidInputError(f"seed must be None or an integer, got {seed!r}")
        self.seed = None if seed is None else int(seed)

    def build(self, input_shapes):
        self.kernels = []
        _check_head_axis(_shapes(input_shapes, "ProjectAdd"), self.heads, "ProjectAdd")
        for i, s in enumerate(input_shapes):
            shape = (s[-1], self.units) if self.heads is None else (self.heads, s[-1], self.units)
            init = _kernel_initializer(self.kernel_initializer, i, self.heads, self.seed)
            self.kernels.append(self.add_weight(name=f"kernel_{i}", shape=shape, initializer=init))
        bshape = (self.units,) if self.heads is None else (self.heads, 1, self.units)
        self.bias = self.add_weight(name="bias", shape=bshape, initializer="zeros")

    def call(self, inputs):
        inputs = _as_list(inputs, "ProjectAdd")
        if len(inputs) != len(self.kernels):
            raise InvalidInputError(f"ProjectAdd was built for {len(self.kernels)} inputs, got {len(inputs)}")
        _check_head_axis([tuple(x.shape) for x in inputs], self.heads, "ProjectAdd")
        widths = [x.shape[-1] for x in inputs]
        built = [int(k.shape[-2]) for k in self.kernels]
        if any(w is not None and w != b for w, b in zip(widths, built)):  # blocks swapped: a raw MatMul error
            raise InvalidInputError(f"ProjectAdd was built for inputs of widths {built}, got widths {widths}; pass "
                                    "the blocks in the order it was built with")
        out = self.bias
        for x, k in zip(inputs, self.kernels):
            if self.heads is None:
                out = out + ops.matmul(x, k)
            elif len(x.shape) == 2:
                out = out + ops.einsum("nd,mdu->mnu", x, k)
            else:
                out = out + ops.einsum("mnd,mdu->mnu", x, k)
        return out

    def compute_output_shape(self, input_shapes):
        longest = max(input_shapes, key=len)
        shape = tuple(longest[:-1]) + (self.units,)
        if self.heads is not None and len(shape) == 2:
            shape = (self.heads,) + shape
        return shape

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "heads": self.heads,
            "seed": self.seed,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
