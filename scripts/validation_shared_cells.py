"""Validation samples sharing a secondary cell with training samples (polygons pooled over cells): the effect.

    python scripts/validation_shared_cells.py [--task chicago-tracts:EP_PCI] [--data ../shared/data]

Purging (``evaluate(purge=True)``) leaves out of the fit the samples that share a cell with a *test* sample;
a training and a validation sample can still share a cell. Per split kind this prints how many validation
samples do, how many training samples share a cell with a validation sample, and, per method (ridge, the
baselines), how often the penalty changes when it is chosen without them (the fit on the other training samples,
then refitted on all of them with that penalty) and the test R² as is, so chosen, and with those training
samples left out of the fit (``r2_dropped``, as test purging does) (docs/evaluate.md "Validation
samples sharing a cell with training"). About 3 minutes on 2 cores. ``--synthetic``: the same for polygons over
two consecutive cells of a chain of 200 cells in random order, labels the weighted sum of per-cell noise, a
one-hot of the cell as features (blocked splits, level 9; seeds 0-2; seconds).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def chain(seed, n_cells=200):
    """Polygons over two consecutive cells of a chain in random order; labels: the weighted sum of cell noise."""
    import pandas as pd

    from geos2vec.cells import latlng_to_cell

    rng = np.random.default_rng(seed)
    cells = np.unique(latlng_to_cell(rng.uniform(37.2, 37.6, 3000), rng.uniform(-122.2, -121.7, 3000), 12))
    cells = rng.permutation(cells)[:n_cells]  # in random order: a polygon's two cells lie in different blocks
    noise = rng.standard_normal(n_cells)
    nxt = (np.arange(n_cells) + 1) % n_cells
    pool = pd.DataFrame({"sample": np.repeat(np.arange(n_cells), 2), "cell_id": np.c_[cells, cells[nxt]].ravel(),
                         "weight": 0.5})
    y = pd.Series(0.5 * noise + 0.5 * noise[nxt])
    return y, pool, pd.DataFrame(np.eye(n_cells), index=pd.Index(cells, name="cell_id"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="chicago-tracts:EP_PCI")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--n-splits", type=int, default=20)
    ap.add_argument("--synthetic", action="store_true")
    args = ap.parse_args(argv)

    import pandas as pd

    from geos2vec.evaluate import evaluate, protocol, run_suite
    from geos2vec.options import set_options

    set_options(progress=False)
    purge, ridge = protocol.purge_shared_cells, protocol.ridge_probe
    seen, counts = {}, []

    def shared(of, sample, cell):  # the samples that share a cell with a sample of `of`
        return np.unique(sample[np.isin(cell, cell[np.isin(sample, of)])])

    def purge_and_count(split_sets, sample, cell):
        out, purged = purge(split_sets, sample, cell)
        seen["sample"], seen["cell"] = s, c = np.asarray(sample), np.asarray(cell)
        counts.extend((name.split(":")[0], len(tr), len(va), np.isin(va, shared(tr, s, c)).sum(),
                       np.isin(tr, shared(va, s, c)).sum()) for name, v in out.items() for tr, va, _ in v)
        if variant == "dropped":  # left out of the fit, as test purging does
            out = {k: [(np.setdiff1d(tr, shared(va, s, c)), va, te) for tr, va, te in v] for k, v in out.items()}
        return out, purged

    def ridge_chosen_apart(x, y, tr, va, te):  # the penalty chosen without the training samples sharing a cell
        _, val_mse, alpha = ridge(x, y, np.setdiff1d(tr, shared(va, seen["sample"], seen["cell"])), va, te)
        return ridge(x, y, tr, va, te, alphas=[alpha])[0], val_mse, alpha

    def run(seed):
        if not args.synthetic:
            return run_suite([args.task], splits=["blocked", "region"], probes=["ridge"], model=None, untrained=False,
                             data_dir=args.data, n_splits=args.n_splits, seed=0, progress=False, log=None)[0]
        y, pool, onehot = chain(seed)
        s = evaluate(y, {"cell id": onehot}, pooling=pool, split="blocked", block_level=9, n_splits=args.n_splits,
                     probes=["ridge"], progress=False).scores
        print(f"seed {seed}: label variance {y.var():.3f}, validation MSE {s.val_mse.mean():.3f}, median log10 "
              f"penalty {np.log10(s.alpha).median():.2f}, test R² {s.r2.mean():.3f}")
        return s.assign(split=f"blocked seed {seed}")

    runs, variant = {}, None
    protocol.purge_shared_cells = purge_and_count
    try:
        for variant in ("as is", "apart", "dropped"):
            protocol.ridge_probe = ridge_chosen_apart if variant == "apart" else ridge
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                runs[variant] = pd.concat([run(seed) for seed in ((0, 1, 2) if args.synthetic else (0,))])
    finally:
        protocol.purge_shared_cells, protocol.ridge_probe = purge, ridge
    c = pd.DataFrame(counts, columns=["split", "train", "val", "val sharing", "train sharing"])
    print(c.groupby("split").mean().round(1).to_string())
    m = runs["as is"].merge(runs["apart"], on=["split", "rep", "method"], suffixes=("", "_apart"))
    m = m.merge(runs["dropped"][["split", "rep", "method", "r2"]].rename(columns={"r2": "r2_dropped"}))
    m["split"] = m["split"].str.split(":").str[0].str.replace(" seed ", " ")
    m["changed"], m["up"] = m.alpha_apart != m.alpha, m.alpha_apart > m.alpha
    m["better"] = m.r2_apart > m.r2 + 1e-9
    print(m.groupby(["split", "method"]).agg(changed=("changed", "mean"), up=("up", "mean"),
                                             better=("better", "mean"), r2=("r2", "mean"),
                                             r2_apart=("r2_apart", "mean"),
                                             r2_dropped=("r2_dropped", "mean")).round(3).to_string())


if __name__ == "__main__":
    main()
