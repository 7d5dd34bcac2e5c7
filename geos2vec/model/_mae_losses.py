"""The loss of the masked autoencoder (:mod:`geos2vec.model.mae`), backend-neutral (``keras.ops`` only).

:func:`masked_mse` is the mean squared error over the masked patches, :func:`activity_mse` that of each patch's
mean over its channels, and :func:`per_replica_loss` a replica's share under ``tf.distribute``. Like
:mod:`geos2vec.model.mae`, this module imports only ``keras`` (TensorFlow only inside a function, when it is the
backend). Everything here is importable from :mod:`geos2vec.model.mae`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def masked_mse(x: Any, pred: Any, mask: Any, weight: Any | None = None) -> Any:
    """Mean over masked (and, with ``weight``, observed) patches of the per-patch MSE.

    ``x``, ``pred``: ``(batch, length, features)``; ``mask``: ``(batch, length)``,
    1 where masked; ``weight``: optional ``(batch, length)`` 0/1 (observed pixels), or
    ``(batch, length, features)`` 0/1 per value (covered pixels x channels the source has): then the mean
    is over the weighted values of the masked patches, so a patch with fewer known channels counts less.

    Parameters
    ----------
    x, pred : tensor, shape (batch, length, features)
        Targets (normalized features) and predictions.
    mask : tensor, shape (batch, length)
        1 where a patch is masked.
    weight : tensor, optional
        ``(batch, length)`` or ``(batch, length, features)`` 0/1 weights, as above.

    Returns
    -------
    tensor
        Scalar float32 loss; 0 when no patch (value) has weight (the denominator is at least 1).
    """
    sq = ops.square(ops.cast(pred, "float32") - ops.cast(x, "float32"))
    w = ops.cast(mask, "float32")
    if weight is not None and len(weight.shape) == 3:
        wv = ops.cast(weight, "float32") * w[..., None]
        return ops.sum(sq * wv) / ops.maximum(ops.sum(wv), 1.0)
    err = ops.mean(sq, axis=-1)
    if weight is not None:
        w = w * ops.cast(weight, "float32")
    return ops.sum(err * w) / ops.maximum(ops.sum(w), 1.0)


def activity_mse(x, pred, mask, weight=None):
    """Masked MSE of each patch's mean over its (available) channels: how active the cell is overall.

    Per-channel counts of a cell are mostly noise around its area's level; their mean is what neighbours
    predict (``scripts/reconstruction_ceiling.py``). Weights as in :func:`masked_mse`.
    """
    x, pred = ops.cast(x, "float32"), ops.cast(pred, "float32")
    if weight is not None and len(weight.shape) == 3:
        wv = ops.cast(weight, "float32")
        n = ops.sum(wv, axis=-1)
        ax = ops.sum(x * wv, axis=-1) / ops.maximum(n, 1.0)
        ap = ops.sum(pred * wv, axis=-1) / ops.maximum(n, 1.0)
        pw = ops.cast(n > 0, "float32")
    else:
        ax, ap, pw = ops.mean(x, axis=-1), ops.mean(pred, axis=-1), weight
    return masked_mse(ops.expand_dims(ax, -1), ops.expand_dims(ap, -1), mask, pw)


def per_replica_loss(loss: Any) -> Any:
    """``loss`` divided by the number of ``tf.distribute`` replicas in sync (TensorFlow backend; else unchanged).

    Keras' TensorFlow trainer sums the replicas' gradients and multiplies the tracked loss back by the
    replica count, so the loss a replica returns must be its share: the summed gradient is then that of the
    mean of the replicas' losses (the scaling Keras applies to compiled losses, and what the hand-written
    ``train_step`` of earlier versions did). Keras 3.7 logged the returned value without multiplying it back
    (``loss`` and ``val_loss`` were divided by the replica count): there the value returned is ``loss`` and
    only its gradient is the share's. JAX and PyTorch train on one global batch.

    Parameters
    ----------
    loss : tensor
        The loss of this replica's batch.

    Returns
    -------
    tensor
        ``loss / num_replicas_in_sync`` of the current ``tf.distribute`` strategy (TensorFlow backend, more
        than one replica; with Keras 3.7 only its gradient is divided); ``loss`` itself otherwise.
    """
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf  # the active backend: already imported by keras

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        share = loss * ops.cast(1.0 / replicas, loss.dtype)
        if _keras_logs_returned_loss():  # Keras 3.7 logged the share: its value is the loss, its gradient the share's
            return share + ops.stop_gradient(loss - share)
        loss = share
    return loss


def _keras_logs_returned_loss() -> bool:
    """Whether Keras' TensorFlow trainer logs the loss a replica returns as it is (3.7; 3.8 multiplies it back)."""
    try:
        return tuple(int(p) for p in keras.version().split(".")[:2]) < (3, 8)
    except ValueError:  # pragma: no cover - an unusual version string
        return False
