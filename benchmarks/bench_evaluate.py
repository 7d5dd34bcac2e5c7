"""Speed of the downstream protocol: batched heads vs training the MLPs one by one with Keras `fit`.

Data: California housing (../shared/data/labels/housing.csv), all labelled level-12 cells, `location-only`
(Space2Vec theory, 96-d). Ours: `evaluate` with the default sweep over N splits. Reference: the same
configurations trained one model at a time with `build_mlp` + `model.fit` + `EarlyStopping(restore_best_weights)`
on a sample of (split, configuration) pairs, extrapolated to all of them.

    python benchmarks/bench_evaluate.py [--splits 20] [--reference-models 4]

``--suite`` instead times the full default suite of ``geos2vec evaluate --task default`` (three task
families x random/blocked/region splits x every baseline and control, ridge + MLP, the bundled model) stage by
stage, and each task with ridge only:

    python benchmarks/bench_evaluate.py --suite [--probes ridge,mlp] [--tasks ca-housing,...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from geos2vec import evaluate as ev
from geos2vec.location import encode_cells

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def suite(args):
    import os
    import warnings

    warnings.simplefilter("ignore")
    tasks = args.tasks.split(",") if args.tasks else list(ev.DEFAULT_TASKS)
    probes = args.probes.split(",")
    load = os.getloadavg()
    t = time.perf_counter()
    scores, info = ev.run_suite(tasks, probes=probes, data_dir=DATA, n_splits=args.splits, progress=False)
    total = time.perf_counter() - t
    print(f"\nload average before: {load[0]:.2f}; after: {os.getloadavg()[0]:.2f}")
    print("| task | samples | features s | embeddings s | " + " | ".join(f"{k} s" for k in ev.SPLITS) + " |")
    print("|---|---|---|---|" + "---|" * len(ev.SPLITS))
    for task, d in info.items():
        print(f"| {task} | {d['samples']} | {d['features_s']} | {d['embed_s']} | "
              + " | ".join(str(d.get(f"evaluate_{k}_s", "")) for k in ev.SPLITS) + " |")
    print(f"total wall time ({','.join(probes)}): {total:.0f} s = {total / 60:.1f} min")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--reference-models", type=int, default=4)
    ap.add_argument("--suite", action="store_true", help="time the default evaluation suite instead")
    ap.add_argument("--probes", default="ridge,mlp")
    ap.add_argument("--tasks", default=None)
    args = ap.parse_args()
    if args.suite:
        return suite(args)
    labels = ev.join_labels(pd.read_csv(DATA / "labels" / "housing.csv"), "median_house_value")
    y = labels["median_house_value"]
    loc = encode_cells(labels.index.to_numpy(), "theory")
    print(f"{len(y)} cells, {loc.shape[1]}-d location encoding, {args.splits} splits")

    t = time.perf_counter()
    res = ev.evaluate(y, {"location-only": loc}, n_splits=args.splits, probes=["mlp"], progress=False)
    ours = time.perf_counter() - t
    s = res.summary().iloc[0]
    print(f"ours: {ours:.1f} s for {args.splits * 8} MLPs; R2 {s.r2_mean:.3f} ± {s.r2_std:.3f}")

    import keras

    ys, _ = ev.minmax_scale(y.to_numpy())
    x = loc.to_numpy(np.float32)
    splits = ev.random_splits(len(ys), args.splits)
    configs = [(lr, h, d) for lr in ev.DEFAULT_SWEEP["lr"] for h in ev.DEFAULT_SWEEP["hidden"]
               for d in ev.DEFAULT_SWEEP["dropout"]]
    rng = np.random.default_rng(0)
    picks = rng.choice(len(configs), args.reference_models, replace=len(configs) < args.reference_models)
    t = time.perf_counter()
    for i in picks:
        lr, h, d = configs[i]
        tr, va, _ = splits[0]
        model = ev.build_mlp([x.shape[1]], hidden=h, dropout=d)
        model.compile(optimizer=keras.optimizers.AdamW(lr, weight_decay=0.004), loss="mse")
        stop = keras.callbacks.EarlyStopping(patience=30, restore_best_weights=True)
        model.fit(x[tr], ys[tr], validation_data=(x[va], ys[va]), batch_size=512, epochs=500, callbacks=[stop],
                  verbose=0)
    ref_each = (time.perf_counter() - t) / len(picks)
    ref = ref_each * args.splits * len(configs)
    print(f"reference: {ref_each:.1f} s per model -> {ref:.0f} s for {args.splits * len(configs)} MLPs (extrapolated)")
    print(f"speed-up {ref / ours:.1f}x")


if __name__ == "__main__":
    main()
