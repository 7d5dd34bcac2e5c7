"""Keras 3 layers of the S2Vec ViT masked autoencoder (any Keras 3 backend: TensorFlow, JAX, PyTorch).

Each patch is one level-``patch_level`` cell, so a patch is a feature vector,
not a block of pixels: the patch embedding is a ``Dense`` layer over the
feature axis, and an image is a sequence of ``rows * cols`` tokens.

Only ``keras`` (``keras.ops``, ``keras.random``) is used, never a backend directly, and nothing else of
``geos2vec`` is imported: with :mod:`.mae` this module loads with only ``keras`` and ``numpy`` installed (see
"Backends" in ``docs/model.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import layers, ops

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["sincos_2d", "PositionEmbedding", "Attention", "TransformerBlock", "RandomMasking", "gather_tokens"]

_PKG = "geos2vec"

# keras 3.6's TensorFlow ops.dot_product_attention multiplies the logits by themselves instead of by `scale`
# (fixed in 3.7.0): every forward pass would be silently wrong, so refuse it (pyproject.toml: keras>=3.7)
if tuple(int(p) for p in keras.__version__.split(".")[:2] if p.isdigit()) < (3, 7):
    raise ImportError(f"geos2vec's model needs keras>=3.7, found keras {keras.__version__} (its TensorFlow attention "
                      "squares the logits); upgrade it: pip install -U 'keras>=3.7'")


def sincos_2d(rows: int, cols: int, dim: int) -> np.ndarray:
    """Fixed 2-D sine-cosine position codes, ``(rows * cols, dim)`` float32, as in MAE (He et al., 2022).

    Half of ``dim`` encodes the row, half the column, each as sines and cosines of the index at
    ``dim / 4`` frequencies ``1 / 10000 ** (k / (dim / 4))``; tokens are in row-major order.

    Parameters
    ----------
    rows, cols : int
        Size of the grid of tokens.
    dim : int
        Length of a code; divisible by 4.

    Returns
    -------
    numpy.ndarray of float32, shape (rows * cols, dim)
        Row ``r * cols + c``: the sines then the cosines of ``r``, then the sines then the cosines of ``c``.

    Raises
    ------
    ValueError
        ``dim`` not divisible by 4.

    Examples
    --------
    >>> sincos_2d(16, 16, 8).shape
    (256, 8)
    """
    if dim % 4:
        raise ValueError(f"sincos_2d needs a dim divisible by 4, got {dim}")
    q = dim // 4
    omega = 1.0 / 10000 ** (np.arange(q, dtype=np.float64) / q)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")

    def code(pos):
        angle = pos.reshape(-1, 1) * omega
        return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)

    return np.concatenate([code(r), code(c)], axis=1).astype(np.float32)


@keras.saving.register_keras_serializable(package=_PKG)
class PositionEmbedding(layers.Layer):
    """Learned positional embedding added to a ``(batch, length, dim)`` sequence."""

    def __init__(self, length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.length = int(length)

    def build(self, input_shape: Sequence[int | None]) -> None:
        if len(input_shape) < 2 or input_shape[-2] not in (None, self.length):
            raise ValueError(f"PositionEmbedding({self.length}) takes (batch, {self.length}, dim) sequences, got "
                             f"shape {tuple(input_shape)}; give it length= the sequence length")
        self.embedding = self.add_weight(
            name="embedding", shape=(1, self.length, int(input_shape[-1])),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02))
        # a later call with another length or width raises Keras' ValueError, not a backend broadcast error
        self.input_spec = layers.InputSpec(min_ndim=2, axes={-2: self.length, -1: int(input_shape[-1])})

    def call(self, x: Any) -> Any:
        return x + ops.cast(self.embedding, x.dtype)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "length": self.length}


@keras.saving.register_keras_serializable(package=_PKG)
class Attention(layers.Layer):
    """Multi-head self-attention with one fused QKV projection (fewer, larger matmuls)."""

    def __init__(self, dim: int, num_heads: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim, self.num_heads = int(dim), int(num_heads)
        self.head_dim = self.dim // self.num_heads
        self.qkv = layers.Dense(3 * self.dim, name="qkv", dtype=self.dtype_policy)
        self.proj = layers.Dense(self.dim, name="proj", dtype=self.dtype_policy)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.qkv.build(input_shape)
        self.proj.build(tuple(input_shape[:-1]) + (self.dim,))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape[:-1]) + (self.dim,)

    def call(self, x: Any) -> Any:
        b, n = ops.shape(x)[0], ops.shape(x)[1]
        # split the projection along its last axis, then give each part its heads: the same values as slicing
        # a (b, n, 3, h, d) reshape, but TensorFlow's strided slices of that reshape (and their gradients) made
        # a paper-size training step ~15 % slower on CPU (benchmarks/RESULTS.md)
        q, k, v = (ops.reshape(t, (b, n, self.num_heads, self.head_dim))
                   for t in ops.split(self.qkv(x), 3, axis=-1))   # (b, n, h, d) each
        # the backend's fused attention (softmax in float32; JAX picks cuDNN flash attention on a GPU in bf16)
        out = ops.dot_product_attention(q, k, v, scale=self.head_dim ** -0.5)
        return self.proj(ops.reshape(out, (b, n, self.dim)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package=_PKG)
class TransformerBlock(layers.Layer):
    """Pre-norm ViT block: ``x + Drop(Attn(LN(x)))``, then ``x + Drop(MLP(LN(x)))`` (GELU MLP)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dim, self.num_heads = int(dim), int(num_heads)
        self.mlp_ratio, self.dropout, self.seed = float(mlp_ratio), float(dropout), seed
        hidden = int(round(self.dim * self.mlp_ratio))
        p = self.dtype_policy
        self.norm1 = layers.LayerNormalization(epsilon=1e-6, name="norm1", dtype=p)
        self.attn = Attention(self.dim, self.num_heads, name="attn", dtype=p)
        self.norm2 = layers.LayerNormalization(epsilon=1e-6, name="norm2", dtype=p)
        self.fc1 = layers.Dense(hidden, activation="gelu", name="fc1", dtype=p)
        self.fc2 = layers.Dense(self.dim, name="fc2", dtype=p)
        s = None if seed is None else int(seed)
        self.drop1 = layers.Dropout(self.dropout, seed=s, dtype=p)
        self.drop2 = layers.Dropout(self.dropout, seed=None if s is None else s + 1, dtype=p)

    def build(self, input_shape: Sequence[int | None]) -> None:
        if input_shape[-1] is not None and input_shape[-1] != self.dim:  # the residual adds x to a dim-wide branch
            raise ValueError(f"TransformerBlock(dim={self.dim}) takes inputs whose last axis is {self.dim}, got shape "
                             f"{tuple(input_shape)}; project them first (e.g. a Dense({self.dim}))")
        self.input_spec = layers.InputSpec(min_ndim=2, axes={-1: self.dim})
        for layer in (self.norm1, self.attn, self.norm2, self.fc1):
            layer.build(input_shape)
        self.fc2.build(tuple(input_shape[:-1]) + (self.fc1.units,))

    def call(self, x: Any, training: bool | None = None) -> Any:
        x = x + self.drop1(self.attn(self.norm1(x)), training=training)
        return x + self.drop2(self.fc2(self.fc1(self.norm2(x))), training=training)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio, "dropout": self.dropout, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PKG)
class RandomMasking(layers.Layer):
    """MAE random masking: a fresh random subset of tokens is kept at every call.

    ``call(x)`` (any tensor whose first axis is the batch) returns ``(ids_keep, ids_restore, mask)``: the indices of
    the ``num_keep`` kept tokens (in shuffled order), the permutation that
    restores the original order after ``concat([kept, masked])``, and a float
    ``mask`` of shape ``(batch, length)``, 1 where a token is masked.
    """

    def __init__(self, length: int, mask_ratio: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.length, self.mask_ratio, self.seed = int(length), float(mask_ratio), seed
        if self.length < 2 or not 0.0 < self.mask_ratio < 1.0:  # 1.5 kept one token; length 1 kept none
            raise ValueError(f"RandomMasking needs length >= 2 (one token kept, one masked) and 0 < mask_ratio < 1, "
                             f"got length={length!r}, mask_ratio={mask_ratio!r}")
        # at least one token kept and one masked, whatever the ratio and length
        self.num_keep = min(max(int(round(self.length * (1.0 - self.mask_ratio))), 1), self.length - 1)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x: Any) -> tuple[Any, Any, Any]:
        batch_size = ops.shape(x)[0]
        noise = keras.random.uniform((batch_size, self.length), seed=self.seed_generator)
        ids_shuffle = ops.argsort(noise, axis=1)
        ids_restore = ops.argsort(ids_shuffle, axis=1)
        ids_keep = ids_shuffle[:, : self.num_keep]
        mask = ops.cast(ids_restore >= self.num_keep, "float32")
        return ids_keep, ids_restore, mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "length": self.length, "mask_ratio": self.mask_ratio, "seed": self.seed}


def gather_tokens(x: Any, ids: Any) -> Any:
    """``x[b, ids[b, i]]`` for a ``(batch, length, dim)`` tensor and ``(batch, k)`` integer ids.

    Backend-neutral: the rows of ``x`` flattened to ``(batch * length, dim)`` are taken with
    ``ops.take`` at ``ids + b * length``, the computation of TensorFlow's ``tf.gather(x, ids, batch_dims=1)``
    (a row gather; PyTorch: an embedding lookup, JAX: ``jnp.take``).

    Parameters
    ----------
    x : tensor, shape (batch, length, dim)
        The tokens; ``dim`` must be known statically.
    ids : tensor of int, shape (batch, k)
        Per batch row, the positions (in ``[0, length)``) of the tokens to take.

    Returns
    -------
    tensor, shape (batch, k, dim)
        ``out[b, i] = x[b, ids[b, i]]``, of the dtype of ``x``.
    """
    shape = ops.shape(x)
    b, n, d = shape[0], shape[1], x.shape[-1]
    ids = ops.cast(ids, "int32")
    offsets = ops.expand_dims(ops.arange(b, dtype="int32") * ops.cast(n, "int32"), 1)
    rows = ops.take(ops.reshape(x, (-1, d)), ops.reshape(ids + offsets, (-1,)), axis=0)
    return ops.reshape(rows, (b, ops.shape(ids)[1], d))
