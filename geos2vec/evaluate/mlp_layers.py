"""The Keras layer behind the evaluation's MLP probe (importing this module imports Keras)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from ..fusion import fusion_layer

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ParallelMLP"]


@keras.saving.register_keras_serializable(package="geos2vec")
class ParallelMLP(keras.layers.Layer):
    """``heads`` independent copies of :func:`build_mlp`; output (heads, batch)."""

    def __init__(self, input_dims: Sequence[int], heads: int, hidden: int, dropouts: Sequence[float], fusion: str,
                 fusion_units: int | None, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._args = {"input_dims": [int(d) for d in input_dims], "heads": int(heads), "hidden": int(hidden),
                      "dropouts": [float(r) for r in dropouts], "fusion": fusion, "fusion_units": fusion_units,
                      "seed": int(seed)}
        self.heads = heads
        self.hidden = hidden
        self.rates = np.asarray(dropouts, dtype="float32")
        # seeded (seed + 2 is the dropout's): a fresh process starts from the same kernels
        self.fuse = None if len(input_dims) == 1 else fusion_layer(fusion, units=fusion_units, heads=heads,
                                                                   seed=seed + 3)
        d = sum(input_dims) if fusion == "concat" or len(input_dims) == 1 else (
            fusion_units if fusion == "project" else input_dims[0]
        )
        lim1 = math.sqrt(6.0 / (d + hidden))
        lim2 = math.sqrt(6.0 / (hidden + 1))
        init = keras.initializers.RandomUniform
        self.w1 = self.add_weight(shape=(heads, d, hidden), initializer=init(-lim1, lim1, seed=seed), name="w1")
        self.b1 = self.add_weight(shape=(heads, 1, hidden), initializer="zeros", name="b1")
        self.w2 = self.add_weight(shape=(heads, hidden, 1), initializer=init(-lim2, lim2, seed=seed + 1), name="w2")
        self.b2 = self.add_weight(shape=(heads, 1, 1), initializer="zeros", name="b2")
        self.seed_gen = keras.random.SeedGenerator(seed + 2)

    def call(self, xs: Sequence[Any], training: bool = False) -> Any:
        x = xs[0] if self.fuse is None else self.fuse(list(xs))
        eq = "nd,mdh->mnh" if len(x.shape) == 2 else "mnd,mdh->mnh"
        h = ops.relu(ops.einsum(eq, x, self.w1) + self.b1)
        if training and float(self.rates.max()) > 0:
            rates = ops.convert_to_tensor(self.rates)[:, None, None]
            keep = ops.cast(keras.random.uniform(ops.shape(h), seed=self.seed_gen) >= rates, h.dtype)
            h = h * keep / (1.0 - rates)
        return ops.squeeze(ops.matmul(h, self.w2) + self.b2, -1)  # (heads, batch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._args}
