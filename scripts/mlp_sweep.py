"""The bundled model against smoothed counts and its untrained control with the MLP probe's full default grid.

``geos2vec.evaluate.DEFAULT_SWEEP`` (learning rates 0.003 and 0.01, 64 or 256 hidden units, dropout 0 or 0.3;
chosen per split on validation MSE), blocked 20-split protocol, ZIP income and housing density over the 22
Who's On First states: the three methods alone, so the 8-setting grid costs 8-12 minutes per task on 2 cores
(the evaluation's run 2 used a 2-setting grid for all methods). Embeddings come from ``--cache`` when
``geos2vec evaluate --cache`` has made them.

    python scripts/mlp_sweep.py --out mlp_sweep.csv [--cache DIR] [--model PATH] [--tasks zcta:per_capita_income]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from geos2vec.evaluate.baselines import untrained_model
from geos2vec.evaluate.methods import standard_methods
from geos2vec.evaluate.protocol import DEFAULT_SWEEP, evaluate
from geos2vec.evaluate.suite import _embeddings
from geos2vec.evaluate.tasks import load_features, load_task
from geos2vec.model import load_model

TASKS = ("zcta:per_capita_income", "zcta:housing_unit_density")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=None, help="embedding cache folder (as geos2vec evaluate --cache)")
    ap.add_argument("--model", default="default", help="a saved model's folder (default: the bundled model)")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated, of " + ", ".join(TASKS))
    args = ap.parse_args(argv)
    model = load_model(args.model)
    names = args.tasks.split(",")
    if not set(names) <= set(TASKS):
        ap.error(f"--tasks: choose from {', '.join(TASKS)}")
    tasks = [load_task(t, None) for t in names]
    counts, coverage = load_features(tasks[0].features, None)
    cells = np.unique(np.concatenate([t.cells for t in tasks]))
    model_counts = counts.reindex(columns=model.channels, fill_value=0.0)
    s2vec = _embeddings(cells, model_counts, model, ["contextual"], "S2Vec", args.cache)["S2Vec (contextual)"]
    untrained = next(iter(_embeddings(cells, model_counts, untrained_model(model, seed=0), ["contextual"],
                                      "untrained", args.cache).values()))
    scores = []
    for task in tasks:
        methods = {"smoothed counts": standard_methods(task.cells, counts, coverage=coverage)["smoothed counts"],
                   "S2Vec (contextual)": s2vec, "untrained encoder": untrained}
        t0 = time.perf_counter()
        res = evaluate(task.target, methods, split="blocked", n_splits=20, seed=0, block_level=task.block_level,
                       regions=task.regions, pooling=task.pooling, probes="mlp", progress=False)
        s = res.scores.assign(task=task.name)
        scores.append(s)
        wide = s.pivot_table(index="rep", columns="method", values="r2")
        print(f"{task.name} ({time.perf_counter() - t0:.0f} s, grid {DEFAULT_SWEEP})")
        print(s.groupby("method")[["r2", "val_mse"]].mean().to_string())
        for other in ("smoothed counts", "untrained encoder"):
            d = wide["S2Vec (contextual)"] - wide[other]
            print(f"  S2Vec vs {other}: mean ΔR² {d.mean():+.4f}, wins {(d > 0).sum()}/{len(d)}", flush=True)
    pd.concat(scores, ignore_index=True).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
