"""The same model in other normalization units: an exact reparametrization, then (optionally) fine-tuning.

A model's inputs and reconstructions are in the units of its ``FeatureStats``: ``(log(1 + count) - mean) / std``
per channel. Going to other statistics is an affine map per channel, so the patch embedding (the first dense
layer) absorbs it on the way in and the decoder's output layer on the way out: the encoder, and so every
embedding, stays the same function of the counts. What changes is the weight each channel gets in the loss:
that is the point when the old statistics were wrong (zeros counted for channels a source lacks, see
docs/model.md "Channels a source lacks").

    python scripts/renormalize_model.py default gpu/data-avail.npz --out /tmp/renorm [--weights /tmp/renorm.npz]

``--out``: the model with the new statistics (compact format); ``--weights``: its Keras weights in
``get_weights`` order (float32), for ``scripts/train_gpu.py --init``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def renormalize(model, stats):
    """``model`` (an ``S2VecModel``, changed in place and returned) in the units of ``stats``.

    With ``x_old = a * x_new + b`` per channel (``a = std_new / std_old``, ``b = (mean_new - mean_old) /
    std_old``), the patch embedding's kernel rows are scaled by ``a`` and ``b @ kernel`` joins its bias; the
    output layer's columns are divided by ``a`` and its bias becomes ``(bias - b) / a``.
    """
    from geos2vec.model.numpy_encoder import weights_from_keras

    a, b = stats.affine_to(model.stats)  # raises for other channels or log1p
    model.ensure_keras()
    km = model.keras_model
    kernel, bias = (np.asarray(w, np.float64) for w in km.patch_embed.get_weights())
    km.patch_embed.set_weights([(a[:, None] * kernel).astype(np.float32), (b @ kernel + bias).astype(np.float32)])
    kernel, bias = (np.asarray(w, np.float64) for w in km.decoder_pred.get_weights())
    km.decoder_pred.set_weights([(kernel / a[None, :]).astype(np.float32), ((bias - b) / a).astype(np.float32)])
    model.stats = stats
    model.numpy_weights = weights_from_keras(km)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="'default' or a saved model")
    ap.add_argument("data", type=Path, help="a training-data .npz of scripts/prepare_training_data.py")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--weights", type=Path)
    args = ap.parse_args(argv)

    import geos2vec
    from geos2vec import FeatureStats

    stats = FeatureStats.from_dict(json.loads(str(np.load(args.data)["meta"]))["stats"])
    model = renormalize(geos2vec.load_model(args.model), stats)
    if args.out:
        model.save(args.out, compact=True)
    if args.weights:
        tmp = args.weights.with_suffix(".tmp.npz")
        np.savez(tmp, *[np.asarray(w, np.float32) for w in model.keras_model.get_weights()])
        tmp.replace(args.weights)


if __name__ == "__main__":
    main()
