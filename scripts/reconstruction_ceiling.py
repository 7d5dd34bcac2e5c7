"""How well can masked cells be predicted from their visible neighbours at all? (docs/model.md)

On the held-out views packed by ``scripts/prepare_training_data.py`` (covered pixels, POI channels available
there, 20 seeded masks of 75 %), compares parameter-free predictors: the image's visible mean, plain k x k
neighbour means (k = 3, 5, 7; the image mean where no neighbour is visible) and the 5 x 5 mean shrunk toward the
image mean (``local_mean`` of ``geos2vec.model.reconstruction``), on the per-channel loss and on log(1 + total
count).

It also bounds what *any* predictor can reach, under one assumption: given its (unknown) intensity, a cell's
count in a channel is Poisson. A predictor that knew every cell's intensity exactly would still make the
error ``Var(log(1 + N))`` of that Poisson count; its expectation over cells depends only on how intensities are
distributed, which is estimated per channel from the counts themselves (the nonparametric maximum likelihood
mixture of Poissons, Kiefer & Wolfowitz 1956, by EM on a grid). The result, in the loss's normalized units, is
the "Poisson floor": no model can go below it; a model near it has nothing left to learn from the data.

    python scripts/reconstruction_ceiling.py [gpu/data-avail.npz]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_gpu import avail_groups, dense  # noqa: E402

from geos2vec.model import reconstruction as R  # noqa: E402


def log_poisson(n, lam):
    """``log P(N = n)`` for ``N ~ Poisson(lam)``: ``(len(n), len(lam))``, ``-inf`` where impossible."""
    n = np.asarray(n, dtype=np.int64)
    lam = np.asarray(lam, dtype=np.float64)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, max(int(n.max(initial=0)), 1) + 1)))])[n]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = n[:, None] * np.log(lam)[None, :] - lam[None, :] - log_fact[:, None]
    zero = lam == 0
    out[:, zero] = np.where(n == 0, 0.0, -np.inf)[:, None]
    return out


def var_log1p(lam):
    """``Var(log(1 + N))`` for ``N ~ Poisson(lam)``, for each ``lam`` (exact sum over ``N``, tails < 1e-12)."""
    lam = np.asarray(lam, dtype=np.float64)
    top = float(lam.max(initial=0.0))
    n = np.arange(int(top + 12 * np.sqrt(top + 1) + 30) + 1)
    p = np.exp(log_poisson(n, lam)).T                                   # (len(lam), len(n))
    f = np.log1p(n)
    mean = p @ f
    return np.maximum(p @ f**2 - mean**2, 0.0)


def poisson_mixture(values, weights, grid, iters=5000, tol=1e-12):
    """Nonparametric ML mixing weights over ``grid`` of Poisson rates for counts ``values`` seen ``weights``
    times (EM). Returns the weights and the largest gradient ratio, which is 1 at the optimum (KKT)."""
    values = np.asarray(values, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    like = np.exp(log_poisson(values, grid))                            # (k, g)
    w = np.full(len(grid), 1e-6)
    np.add.at(w, np.searchsorted(grid, values).clip(0, len(grid) - 1), weights)  # start near the data
    w /= w.sum()
    for _ in range(iters):
        post = like * w / (like @ w)[:, None]
        new = weights @ post / weights.sum()
        done = np.abs(new - w).max() < tol
        w = new
        if done:
            break
    kkt = float((weights @ (like / (like @ w)[:, None])).max() / weights.sum())
    return w, kkt


def poisson_floor(counts, avail=None, grid_size=200):
    """Per channel, the expected ``Var(log(1 + N))`` of a cell that an oracle knowing its intensity would still
    miss, over the cells where the channel is available (``counts``: ``(cells, channels)`` integers;
    ``avail``: the same shape, bool). Returns ``(floor, n)``: the floors (log units) and the cells counted."""
    counts = np.asarray(counts)
    avail = np.ones(counts.shape, bool) if avail is None else np.asarray(avail, bool)
    floor, n = np.zeros(counts.shape[1]), avail.sum(0)
    for j in range(counts.shape[1]):
        col = counts[avail[:, j], j].astype(np.int64)
        if col.size == 0 or col.max() == 0:
            continue                                                    # no count: the oracle knows it is 0
        values, seen = np.unique(col, return_counts=True)
        grid = np.concatenate([[0.0], np.geomspace(1e-4, 1.5 * values.max(), grid_size)])
        w, _ = poisson_mixture(values, seen, grid)
        floor[j] = w @ var_log1p(grid)
    return floor, n


def ratios(x, c, v=None, masks=20):
    """Loss (per available value of masked covered pixels) and its ratio to the visible mean, per predictor."""
    b, n, f = x.shape
    v = np.ones(x.shape) if v is None else np.asarray(v, np.float64)
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
        w = (mask * c)[..., None] * v
        for name, p in preds.items():
            res.setdefault(name, []).append((((p - x) ** 2) * w).sum() / w.sum())
    ref = np.mean(res["visible mean"])
    return {k: (float(np.mean(val)), float(np.mean(val) / ref)) for k, val in res.items()}


def main(path="gpu/data-avail.npz"):
    data = np.load(path)
    meta = json.loads(str(data["meta"]))
    mean, std = np.asarray(meta["mean"], np.float32), np.asarray(meta["std"], np.float32)
    road = meta["channels"].index("road")
    xv, wv, cv, counts = dense(data, "val", mean, std, road, avail_groups(meta))
    keep = np.arange(xv.shape[-1]) != road
    c = cv.astype(np.float64)
    v = wv[..., keep].astype(np.float64)
    print(f"held out {meta['holdout']}: {xv.shape[0]} images, {c.mean():.1%} covered pixels")
    print("per channel (POI channels available there, normalized):")
    table = ratios(xv[..., keep].astype(np.float64), c, v)
    for k, (loss, r) in table.items():
        print(f"  {k:26s} {loss:.4f}  {r:.3f} x visible mean")
    floor, n = poisson_floor(counts[cv][:, keep], wv[cv][:, keep].astype(bool))
    floor_units = float((floor / std[keep].astype(np.float64) ** 2 * n).sum() / n.sum())
    print(f"  {'Poisson floor (oracle)':26s} {floor_units:.4f}  {floor_units / table['visible mean'][0]:.3f} x visible "
          "mean (no predictor goes below it if counts are Poisson given their intensity)")
    tot = np.log1p(counts[..., keep].sum(-1))
    z = ((tot - tot[cv].mean()) / tot[cv].std())[..., None]
    print("log(1 + total count) per cell (standardized):")
    for k, (loss, r) in ratios(z, c).items():
        print(f"  {k:26s} {loss:.4f}  {r:.3f} x visible mean")


if __name__ == "__main__":
    main(*sys.argv[1:])
