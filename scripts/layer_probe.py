"""Which encoder layer's tokens make the best embedding? Ridge on ZIP income and housing density, chosen on
validation error only.

Embeds the Who's On First cells of the ``zcta`` tasks once with the bundled model's NumPy encoder, keeping the
tokens after every block (intermediate ones normalized per token without parameters, the last through the
model's ``encoder_norm``: the current embedding), then runs the blocked 20-split protocol of ``geos2vec
evaluate`` for each layer and ``smoothed counts``. Prints mean validation MSE (what a choice may use) and test
R² per layer; writes every split's scores to ``--out``. The embedding takes ~9 minutes on one core, then
ridge ~1 minute or the MLP ~15.

    python scripts/layer_probe.py --out layers_ridge.csv [--probe mlp] [--states ky,nm]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import geos2vec.model.embed as model_embed
from geos2vec.evaluate.methods import model_embeddings, standard_methods
from geos2vec.evaluate.protocol import evaluate
from geos2vec.evaluate.tasks import load_features, load_task
from geos2vec.model import load_model
from geos2vec.model import numpy_encoder as ne
from geos2vec.options import blas_threads

TASKS = ("zcta:per_capita_income", "zcta:housing_unit_density")


def all_layers(w, x, num_heads, covered=None):
    """The NumPy encoder's tokens after every block, concatenated: ``(b, n, layers * dim)``."""
    x = np.asarray(x, np.float32)
    h = ne._dense(x, w, "patch_embed")
    if "missing_embed" in w and covered is not None:
        h = np.where(np.asarray(covered, bool)[..., None], h, w["missing_embed"].reshape(1, 1, -1))
    h = h + w["pos_embed"]
    outs, last = [], int(w["encoder_layers"]) - 1
    for i in range(last + 1):
        h = ne._block(h, w, f"encoder_block_{i}", num_heads)
        # the model's own encoder_norm after the last block; the same norm without parameters before it
        gamma, beta = (w["encoder_norm/gamma"], w["encoder_norm/beta"]) if i == last else (1.0, 0.0)
        outs.append(ne._layer_norm(h, gamma, beta))
    return np.concatenate(outs, -1).astype(np.float32)


def contextual_tokens(keras_model, stats, values, batch_size, numpy_weights=None, num_heads=8, covered=None):
    """``geos2vec.model.embed.contextual_tokens`` (NumPy path) returning every layer's tokens."""
    b, r, c, f = values.shape
    x = stats.transform(values.reshape(b, r * c, f).astype(np.float32)).astype(np.float32)
    cov = np.ones((b, r * c), bool) if covered is None else np.asarray(covered, bool).reshape(b, r * c)
    out = []
    with blas_threads():
        for s in range(0, b, ne.ENCODE_CHUNK):
            out.append(all_layers(numpy_weights, x[s:s + ne.ENCODE_CHUNK], num_heads, cov[s:s + ne.ENCODE_CHUNK]))
    return np.concatenate(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--probe", default="ridge", choices=("ridge", "mlp"))
    ap.add_argument("--states", default=None, help="comma-separated states (default: all 22)")
    args = ap.parse_args(argv)
    states = args.states.split(",") if args.states else None
    model = load_model("default")
    dim, n_layers = model.config.embedding_dim, model.config.encoder_layers
    tasks = [load_task(t, None, states=states) for t in TASKS]
    counts, coverage = load_features(tasks[0].features, None)
    cells = np.union1d(tasks[0].cells, tasks[1].cells)
    model_embed.contextual_tokens = contextual_tokens  # every layer, for this run only
    type(model).embedding_dim = property(lambda self: dim * n_layers)
    t0 = time.perf_counter()
    table = next(iter(model_embeddings(cells, counts.reindex(columns=model.channels, fill_value=0.0), model,
                                       ["contextual"]).values()))
    print(f"embedded {len(table)} cells x {n_layers} layers in {time.perf_counter() - t0:.0f} s", flush=True)
    layers = {f"layer {i + 1}": table.iloc[:, i * dim:(i + 1) * dim] for i in range(n_layers)}
    scores = []
    for task in tasks:
        base = standard_methods(task.cells, counts, coverage=coverage)
        res = evaluate(task.target, {"smoothed counts": base["smoothed counts"], **layers}, split="blocked",
                       n_splits=20, seed=0, block_level=task.block_level, regions=task.regions,
                       pooling=task.pooling, probes=args.probe, progress=False,
                       # the MLP as docs/evaluation_retrained.md ran it (--lr 0.001,0.003 --hidden 64 ...)
                       sweep={"lr": [0.001, 0.003], "hidden": [64], "dropout": [0.3]}, patience=20)
        scores.append(res.scores.assign(task=task.name))
        print(task.name, res.scores.groupby("method", sort=False)[["val_mse", "r2"]].mean().to_string(), sep="\n",
              flush=True)
    pd.concat(scores, ignore_index=True).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
