"""The body of :meth:`S2VecModel.evaluate <geos2vec.model.S2VecModel.evaluate>`: masked-patch losses of the model.

Every image under ``n_masks`` seeded masks, the model's reconstruction next to the parameter-free predictors of
:mod:`geos2vec.model.reconstruction`, pooled into its tables (:class:`~geos2vec.model.reconstruction.LossAccumulator`).
"""

from __future__ import annotations

import numpy as np

from .._fork import check_tf_usable
from ..errors import InvalidInputError
from ._embed_targets import _progress
from .data import as_images, check_levels, make_dataset, match_channels


def evaluate_model(model, data, *, seed, n_masks, batch_size, baseline, stats, by, progress=None):
    """The losses of ``model`` (an ``S2VecModel``) on ``data``: the arguments and result of ``S2VecModel.evaluate``."""
    check_tf_usable("S2VecModel.evaluate")  # a process forked after TensorFlow ran would hang in it
    import tensorflow as tf

    from .reconstruction import LossAccumulator, baseline_predictions, check_evaluate_args, draw_noise

    n_masks, seed, batch_size = check_evaluate_args(n_masks, seed, batch_size, model.config.batch_size)
    both = isinstance(by, (tuple, list)) and tuple(by) == ("predictor", "channel")
    if not (both or by in ("predictor", "channel")) or (by != "predictor" and baseline is not None):
        raise InvalidInputError(f'by must be "predictor", "channel" or ("predictor", "channel") (the last two '
                                f"without baseline=), got by={by!r}, baseline={baseline!r}")
    model.ensure_keras()
    if model.keras_model is None:
        raise InvalidInputError("the model is not built or trained yet: call fit() or load() first")
    km = model.keras_model
    da = match_channels(as_images(data), model.channels)
    check_levels(da, model)  # 16 x 16 images of level-14 cells were scored by a level-12 model without a word
    grid = (int(da.sizes["row"]), int(da.sizes["col"]))  # local_mean smooths on the images' own grid
    ds = make_dataset(da, model.stats, batch_size=batch_size)
    rngs = [np.random.default_rng([int(seed), k]) for k in range(n_masks)]
    if stats is not None:
        scale, shift = model.stats.affine_to(stats)  # raises for other channels or log1p
    units = stats if stats is not None else model.stats
    empty = units.transform(np.zeros(len(model.channels)))
    n, nf = km.num_patches, km.num_features
    acc = LossAccumulator(n_masks, n_features=None if by == "predictor" else nf)
    # long work (every image under every mask): a bar over the images, as embed's
    with _progress(int(da.sizes["image"]), progress, f"evaluate ({n_masks} masks)") as bar:
        for batch in ds:
            x, w, c = batch["x"].numpy(), batch["w"].numpy(), batch["c"].numpy()
            v = batch["v"].numpy() if "v" in batch else None
            b = x.shape[0]
            xs = x if stats is None else (x * scale + shift).astype(np.float32)
            noise = np.stack([draw_noise(r, b, n) for r in rngs])          # (n_masks, b, n)
            per_pass = max(1, batch_size // b)                               # masks sharing a forward pass
            for k0 in range(0, n_masks, per_pass):
                m = min(per_pass, n_masks - k0)
                out = km.reconstruct(tf.tile(batch["x"], (m, 1, 1)), noise[k0:k0 + m].reshape(m * b, n),
                                     training=False, covered=tf.tile(batch["c"], (m, 1)))
                pred = np.asarray(out["pred"], dtype=np.float32).reshape(m, b, n, nf)
                mask = np.asarray(out["mask"]).reshape(m, b, n)
                if stats is not None:
                    pred = (pred * scale + shift).astype(np.float32)
                for i in range(m):
                    preds = {"model": pred[i], **baseline_predictions(xs, mask[i], empty, c, grid)}
                    acc.add(k0 + i, xs, w, mask[i], preds, c, v)
            bar.update(b)
    tables = [acc.table() if b == "predictor" else acc.channel_table(model.channels)
              for b in (("predictor", "channel") if both else (by,))]
    for table in tables:
        table.attrs.update(seed=int(seed), n_masks=n_masks, n_images=int(da.sizes["image"]),
                           mask_ratio=km.mask_ratio, masked_observed_per_mask=float(acc.counts[:, 0].mean()),
                           stats="model" if stats is None else "given",
                           masked_per_mask=float(acc.counts[:, 1].mean()))
    if both:
        return tables[0], tables[1]
    (table,) = tables
    if baseline is None:
        return table
    col = "loss_observed" if km.ignore_unobserved else "loss_covered"  # = loss_all without coverage
    loss = float(table.loc["model", col])
    return (loss, float(table.loc["zero", col])) if baseline else loss
