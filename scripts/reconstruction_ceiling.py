"""How well can masked cells be predicted from their visible neighbours at all? (docs/model.md)

On the held-out views packed by ``scripts/prepare_training_data.py`` (covered pixels, POI channels, 20 seeded
masks of 75 %), compares parameter-free predictors: the image's visible mean, plain k x k neighbour means
(k = 3, 5, 7; the image mean where no neighbour is visible) and the 5 x 5 mean shrunk toward the image mean
(``local_mean`` of ``geos2vec.model.reconstruction``), on the per-channel loss and on log(1 + total count).

    python scripts/reconstruction_ceiling.py [gpu/data.npz]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_gpu import dense  # noqa: E402

from geos2vec.model import reconstruction as R  # noqa: E402


def ratios(x, c, masks=20):
    b, n, f = x.shape
    side = int(np.sqrt(n))
    res = {}
    for m in range(masks):
        mask = R.mask_from_noise(np.random.default_rng([0, m]).random((b, n)), n // 4)
        vis = (1 - mask) * c
        vm = (np.einsum("bn,bnf->bf", vis, x) / np.maximum(vis.sum(1), 1)[:, None])[:, None, :]
        preds = {"visible mean": vm}
        for k in (1, 2, 3):
            total, count = R.neighbour_sums(x, vis, side, k)
            local = np.where(count[..., None] > 0, total / np.maximum(count, 1)[..., None], vm)
            preds[f"{2 * k + 1}x{2 * k + 1} mean"] = local
            if k == 2:
                a = count / (count + 4.0)
                preds["local_mean (5x5, shrunk)"] = a[..., None] * local + (1 - a[..., None]) * vm
        w = mask * c
        for name, p in preds.items():
            res.setdefault(name, []).append((((p - x) ** 2).mean(-1) * w).sum() / w.sum())
    ref = np.mean(res["visible mean"])
    return {k: (float(np.mean(v)), float(np.mean(v) / ref)) for k, v in res.items()}


def main(path="gpu/data.npz"):
    data = np.load(path)
    meta = json.loads(str(data["meta"]))
    mean, std = np.asarray(meta["mean"], np.float32), np.asarray(meta["std"], np.float32)
    road = meta["channels"].index("road")
    xv, _, cv, counts = dense(data, "val", mean, std, road)
    keep = np.arange(xv.shape[-1]) != road
    c = cv.astype(np.float64)
    print(f"held out {meta['holdout']}: {xv.shape[0]} images, {c.mean():.1%} covered pixels")
    print("per channel (POI channels, normalized):")
    for k, (loss, r) in ratios(xv[..., keep].astype(np.float64), c).items():
        print(f"  {k:26s} {loss:.4f}  {r:.3f} x visible mean")
    tot = np.log1p(counts[..., keep].sum(-1))
    z = ((tot - tot[cv].mean()) / tot[cv].std())[..., None]
    print("log(1 + total count) per cell (standardized):")
    for k, (loss, r) in ratios(z, c).items():
        print(f"  {k:26s} {loss:.4f}  {r:.3f} x visible mean")


if __name__ == "__main__":
    main(*sys.argv[1:])
