"""The S2Vec encoder in NumPy: embeddings without importing TensorFlow.

The bundled model is used far more often for embedding than for training, and TensorFlow takes seconds to
import. This module runs the trained encoder (patch projection, position embedding, pre-norm transformer
blocks, final layer norm) with NumPy matrix products, from a flat dict of weights that
:func:`weights_from_keras` extracts and :func:`weights_to_keras` puts back (for fine-tuning). It matches
the Keras encoder to float32 rounding (tested).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .._numba_cache import ensure_once as _ensure_numba_cache
from ..errors import InvalidInputError

_ensure_numba_cache()  # before any @njit(cache=True): read-only installs use a temporary folder

__all__ = ["weights_from_keras", "weights_to_keras", "encode", "patch_project", "save_weights", "load_weights"]

_SQRT_HALF = 1.0 / math.sqrt(2.0)


@nb.vectorize(["float64(float64)"], cache=True)
def _gelu64(x):
    """Exact GELU, ``0.5 x (1 + erf(x / sqrt 2))`` (Keras' default, ``approximate=False``)."""
    return 0.5 * x * (1.0 + math.erf(x * _SQRT_HALF))


@nb.vectorize(["float32(float32)"], cache=True, fastmath=True)
def _gelu32(x):
    """GELU in float32 with the rational ``erf`` of Eigen that TensorFlow's float32 CPU kernels use.

    ``erf(z) ~ z P(z^2) / Q(z^2)`` on ``z`` clamped to [-4, 4] (where float32 ``erf`` is +-1). Unlike libm's
    ``erf`` it has no branches or calls, so LLVM vectorizes it: ~25 times faster than the libm version on
    an AVX-512 core, and within 1.5e-6 of ``tf.nn.gelu(approximate=False)`` (tested).
    """
    z = x * np.float32(_SQRT_HALF)
    z = min(max(z, np.float32(-4.0)), np.float32(4.0))
    z2 = z * z
    p = np.float32(-2.72614225801306e-10)
    p = p * z2 + np.float32(2.77068142495902e-08)
    p = p * z2 + np.float32(-2.10102402082508e-06)
    p = p * z2 + np.float32(-5.69250639462346e-05)
    p = p * z2 + np.float32(-7.34990630326855e-04)
    p = p * z2 + np.float32(-2.95459980854025e-03)
    p = p * z2 + np.float32(-1.60960333262415e-02)
    q = np.float32(-1.45660718464996e-05)
    q = q * z2 + np.float32(-2.13374055278905e-04)
    q = q * z2 + np.float32(-1.68282697438203e-03)
    q = q * z2 + np.float32(-7.37332916720468e-03)
    q = q * z2 + np.float32(-1.42647390514189e-02)
    return np.float32(0.5) * x * (np.float32(1.0) + z * p / q)


def _gelu(x, out=None):
    """GELU of a float32 (fast rational erf, see :func:`_gelu32`) or float64 (libm erf) array."""
    x = np.asarray(x)
    if x.dtype == np.float32:
        return _gelu32(x, out=out) if out is not None else _gelu32(x)
    return _gelu64(x.astype(np.float64, copy=False))


def _layer_norm(x, gamma, beta, eps=1e-6):
    mean = x.mean(axis=-1, keepdims=True)
    var = np.square(x - mean).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _dense(x, w, prefix):
    out = x @ w[prefix + "/kernel"]
    out += w[prefix + "/bias"]  # in place: no second array of the output's size
    return out


def _block(h, w, p, num_heads):
    b, n, d = h.shape
    hd = d // num_heads
    y = _layer_norm(h, w[p + "/norm1/gamma"], w[p + "/norm1/beta"])
    qkv = _dense(y, w, p + "/attn/qkv").reshape(b, n, 3, num_heads, hd).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * np.float32(hd**-0.5), qkv[1], qkv[2]
    att = q @ k.transpose(0, 1, 3, 2)
    att -= att.max(axis=-1, keepdims=True)  # softmax in place: no second (batch, heads, n, n) array
    np.exp(att, out=att)
    att *= 1.0 / att.sum(axis=-1, keepdims=True)
    out = (att @ v).transpose(0, 2, 1, 3).reshape(b, n, d)
    h = h + _dense(out, w, p + "/attn/proj")
    y = _layer_norm(h, w[p + "/norm2/gamma"], w[p + "/norm2/beta"])
    # a new array, not out=: numba's DUFunc with out= runs ~8x slower (measured)
    return h + _dense(_gelu(_dense(y, w, p + "/fc1")), w, p + "/fc2")


def encode(weights: dict, x: np.ndarray, num_heads: int, covered=None) -> np.ndarray:
    """Encoder tokens ``(batch, patches, dim)`` of normalized images ``(batch, patches, features)``.

    A model with a missing token (``weights["missing_embed"]``) takes it as the input of pixels where
    ``covered`` ``(batch, patches)`` is False.

    Parameters
    ----------
    weights : dict
        The model's weights (:func:`weights_from_keras`, :func:`load_weights`).
    x : numpy.ndarray, shape (batch, patches, features)
        Normalized features.
    num_heads : int
        Attention heads of the encoder blocks (``S2VecConfig.num_heads``).
    covered : array_like of bool, shape (batch, patches), optional
        Where the source has data; ignored without a missing token.

    Returns
    -------
    numpy.ndarray of float32, shape (batch, patches, embedding_dim)
        The encoder's tokens after its final layer norm, as :meth:`MaskedAutoencoder.encode
        <geos2vec.model.mae.MaskedAutoencoder.encode>` computes them.

    Raises
    ------
    InvalidInputError
        ``x`` is not ``(batch, patches, features)`` of the model, or ``num_heads`` does not divide its width.
    """
    x = np.asarray(x, dtype=np.float32)
    cov = None if covered is None else np.asarray(covered, bool)
    features, dim = weights["patch_embed/kernel"].shape
    patches = weights["pos_embed"].shape[-2]
    if x.ndim != 3 or x.shape[1:] != (patches, features):
        hint = ": reshape (batch, rows, cols, features) images to (batch, rows * cols, features)" if x.ndim == 4 else ""
        raise InvalidInputError(f"encode needs images of shape (batch, {patches}, {features}) (patches x features of "
                                f"the model), got {x.shape}{hint}")
    if isinstance(num_heads, bool) or not isinstance(num_heads, (int, np.integer)) or num_heads < 1 \
            or dim % num_heads:
        raise InvalidInputError(f"num_heads must be a positive integer that divides the embedding size {dim} "
                                f"(the model's config.num_heads), got {num_heads!r}")
    out = np.empty((*x.shape[:2], dim), np.float32)
    # a few images at a time: their attention scores ((k, heads, n, n) float32, 2 MiB per image for the
    # paper's model) stay in the cache instead of streaming (batch, heads, n, n) through memory
    for s in range(0, x.shape[0], ENCODE_CHUNK):
        out[s:s + ENCODE_CHUNK] = _encode(weights, x[s:s + ENCODE_CHUNK], num_heads,
                                          None if cov is None else cov[s:s + ENCODE_CHUNK])
    return out


#: Images per pass of :func:`encode` (measured on one AVX-512 core: 2-4 images 169 µs/cell, 64 images 195).
ENCODE_CHUNK = 4


def _encode(w, x, num_heads, covered):
    h = _dense(x, w, "patch_embed")
    if "missing_embed" in w and covered is not None:
        h = np.where(covered[..., None], h, w["missing_embed"].reshape(1, 1, -1))
    h = h + w["pos_embed"]
    layers = int(w["encoder_layers"])
    for i in range(layers):
        h = _block(h, w, f"encoder_block_{i}", num_heads)
    return _layer_norm(h, w["encoder_norm/gamma"], w["encoder_norm/beta"]).astype(np.float32)


def patch_project(weights: dict, x: np.ndarray) -> np.ndarray:
    """The linear patch projection alone (the ``"patch"`` embedding mode).

    Parameters
    ----------
    weights : dict
        The model's weights (``patch_embed/kernel`` and ``patch_embed/bias`` are used).
    x : numpy.ndarray, shape (..., features)
        Normalized features.

    Returns
    -------
    numpy.ndarray of float32, shape (..., embedding_dim)
        ``x @ kernel + bias``.

    Raises
    ------
    InvalidInputError
        The last axis of ``x`` is not the model's features.
    """
    x = np.asarray(x, dtype=np.float32)
    features = weights["patch_embed/kernel"].shape[0]
    if x.ndim < 1 or x.shape[-1] != features:
        raise InvalidInputError(f"patch_project needs {features} features on the last axis (the model's channels), "
                                f"got an array of shape {x.shape}")
    return _dense(x, weights, "patch_embed").astype(np.float32)


# --------------------------------------------------------------------------- Keras <-> dict
def _named_layers(km):
    yield "patch_embed", km.patch_embed
    for i, blk in enumerate(km.encoder_blocks):
        yield from _block_layers(f"encoder_block_{i}", blk)
    yield "encoder_norm", km.encoder_norm
    yield "decoder_embed", km.decoder_embed
    for i, blk in enumerate(km.decoder_blocks):
        yield from _block_layers(f"decoder_block_{i}", blk)
    yield "decoder_norm", km.decoder_norm
    yield "decoder_pred", km.decoder_pred


def _block_layers(prefix, blk):
    yield prefix + "/norm1", blk.norm1
    yield prefix + "/attn/qkv", blk.attn.qkv
    yield prefix + "/attn/proj", blk.attn.proj
    yield prefix + "/norm2", blk.norm2
    yield prefix + "/fc1", blk.fc1
    yield prefix + "/fc2", blk.fc2


def _layer_weights(layer):
    if hasattr(layer, "gamma"):
        return {"gamma": layer.gamma, "beta": layer.beta}
    return {"kernel": layer.kernel, "bias": layer.bias}


def weights_from_keras(km) -> dict:
    """Every weight of a :class:`~geos2vec.model.mae.MaskedAutoencoder` as ``{name: float32 array}``.

    Parameters
    ----------
    km : MaskedAutoencoder
        A built Keras model.

    Returns
    -------
    dict of str to numpy.ndarray
        Names as in :func:`geos2vec.model.io.expected_shapes` (``"patch_embed/kernel"``,
        ``"encoder_block_0/attn/qkv/kernel"``, ``"pos_embed"``, ...), float32 arrays, plus
        ``"encoder_layers"``: the number of encoder blocks as a 0-d integer array.
    """
    out = {}
    for name, layer in _named_layers(km):
        for key, var in _layer_weights(layer).items():
            out[f"{name}/{key}"] = np.asarray(var.numpy(), dtype=np.float32)
    out["pos_embed"] = np.asarray(km.pos_embed.embedding.numpy(), np.float32)
    out["decoder_pos_embed"] = np.asarray(km.decoder_pos_embed.embedding.numpy(), np.float32)
    out["mask_token"] = np.asarray(km.mask_token.numpy(), np.float32)
    if getattr(km, "missing_token", False):
        out["missing_embed"] = np.asarray(km.missing_embed.numpy(), np.float32)
    out["encoder_layers"] = np.asarray(len(km.encoder_blocks))
    return out


def weights_to_keras(weights: dict, km) -> None:
    """Assign weights from :func:`weights_from_keras` (or a saved file) to a built model.

    Parameters
    ----------
    weights : dict
        Weights by name, from :func:`weights_from_keras` or :func:`load_weights`.
    km : MaskedAutoencoder
        A built model of the same architecture; its variables are assigned in place.
    """
    for name, layer in _named_layers(km):
        for key, var in _layer_weights(layer).items():
            var.assign(np.asarray(weights[f"{name}/{key}"], dtype=np.float32))
    km.pos_embed.embedding.assign(np.asarray(weights["pos_embed"], np.float32))
    km.decoder_pos_embed.embedding.assign(np.asarray(weights["decoder_pos_embed"], np.float32))
    km.mask_token.assign(np.asarray(weights["mask_token"], np.float32))
    if getattr(km, "missing_token", False):
        km.missing_embed.assign(np.asarray(weights["missing_embed"], np.float32))


def save_weights(weights: dict, path, dtype=np.float16) -> None:
    """Write weights as a compressed ``.npz`` (``float16`` by default: half the size).

    Parameters
    ----------
    weights : dict of str to numpy.ndarray
        Weights by name (:func:`weights_from_keras`).
    path : str, path-like or file
        Where to write (:func:`numpy.savez_compressed`; ``.npz`` is appended to a file name without it).
    dtype : numpy.dtype
        The type floating-point arrays are stored in; other arrays are stored as they are.
    """
    np.savez_compressed(path, **{k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in weights.items()})


def load_weights(path) -> dict:
    """Read weights written by :func:`save_weights` as float32.

    Parameters
    ----------
    path : str, path-like or file
        A ``.npz`` file.

    Returns
    -------
    dict of str to numpy.ndarray
        Every array of the file; floating-point ones as float32, others as stored.
    """
    with np.load(path) as f:
        return {k: (f[k].astype(np.float32) if f[k].dtype.kind == "f" else f[k]) for k in f.files}
