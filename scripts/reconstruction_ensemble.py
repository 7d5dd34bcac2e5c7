"""How much of the held-out reconstruction error is the variance of one model? (docs/model.md)

On the held-out images of ``scripts/compare_holdout.py`` (two WOF states and one OSM city, covered pixels and
available channels, the same 20 seeded masks as ``S2VecModel.evaluate``), scores:

* each model alone (what ``evaluate`` reports);
* each model averaged over the eight flips/rotations of every image (test-time augmentation: the image and
  its mask are transformed together, so the same cells are hidden, and every prediction is turned back);
* the average of all the models' predictions (an ensemble of training seeds), without and with the flips.

If even the ensemble with flips stays above a target, the gap is not the noise of one training run: the
objective or the data has to change. Diagnostics only; the bundled model is one model, scored alone.

    python scripts/reconstruction_ensemble.py default /work/models/s4d4-s1 ... [--masks 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_holdout import DATA, holdout_images  # noqa: E402


def predict_views(km, x, noise, c, perms):
    """Reconstructions ``(views, batch, n, f)`` of ``x`` under the masks of ``noise``, one per pixel permutation
    (the prediction of view ``t`` put back in the original pixel order), and the mask (the same for every
    view)."""
    out, mask = [], None
    for perm in perms:
        inv = np.argsort(perm)
        res = km.reconstruct(x[:, perm], noise[:, perm], training=False, covered=c[:, perm])
        out.append(np.asarray(res["pred"], np.float32)[:, inv])
        m = np.asarray(res["mask"])[:, inv]
        if mask is None:
            mask = m
        elif not np.array_equal(m, mask):
            raise AssertionError("a transformed view hid other cells than the original")
    return np.stack(out), mask


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="'default' or saved model paths")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--masks", type=int, default=20)
    ap.add_argument("--batch-size", type=int, help="default: the first model's (as evaluate)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    import geos2vec
    from geos2vec._dihedral import permutations
    from geos2vec.model.data import make_dataset
    from geos2vec.model.reconstruction import LossAccumulator, baseline_predictions, draw_noise

    t0 = time.perf_counter()
    models = [geos2vec.load_model(name) for name in args.models]
    for m in models:
        m.ensure_keras()
        if m.stats.to_dict() != models[0].stats.to_dict() or list(m.channels) != list(models[0].channels):
            raise SystemExit("the models were trained with different channels or normalization")
    da = holdout_images(args.data).sel(feature=list(models[0].channels))
    side = da.sizes["row"]
    perms = permutations(side)
    names = [f"model {i}" for i in range(len(models))] + [f"model {i} + flips" for i in range(len(models))]
    names += ["ensemble", "ensemble + flips", "visible_mean", "local_mean"]
    acc = LossAccumulator(args.masks, names)
    empty = models[0].stats.transform(np.zeros(len(models[0].channels)))
    n = side * side
    rngs = [np.random.default_rng([0, k]) for k in range(args.masks)]  # evaluate(seed=0)'s masks
    batch_size = args.batch_size or models[0].config.batch_size
    for batch in make_dataset(da, models[0].stats, batch_size=batch_size):
        x, w, c = batch["x"].numpy(), batch["w"].numpy(), batch["c"].numpy()
        v = batch["v"].numpy() if "v" in batch else None
        noise = np.stack([draw_noise(r, x.shape[0], n) for r in rngs])
        for k in range(args.masks):
            preds, mask = {}, None
            views = []
            for i, m in enumerate(models):
                p, mk = predict_views(m.keras_model, x, noise[k], c, perms)
                mask = mk if mask is None else mask
                preds[f"model {i}"], preds[f"model {i} + flips"] = p[0], p.mean(0)
                views.append(p)
            views = np.stack(views)  # (models, views, b, n, f)
            preds["ensemble"], preds["ensemble + flips"] = views[:, 0].mean(0), views.mean((0, 1))
            preds |= baseline_predictions(x, mask, empty, c)
            acc.add(k, x, w, mask, preds, c, v)
        print(f"  batch done ({time.perf_counter() - t0:.0f} s)", flush=True)
    table = acc.table()[["loss_covered", "loss_covered_sd", "ratio_covered_to_visible_mean"]]
    print(f"held-out images: {da.sizes['image']}, {args.masks} masks, models: {args.models}")
    print(table.round(4).to_string())
    if args.json:
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps({"models": args.models, "masks": args.masks, **table.to_dict()}, indent=1))
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
