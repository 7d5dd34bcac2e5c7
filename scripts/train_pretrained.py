"""Train the model bundled with geos2vec (``geos2vec/pretrained/``), reproducibly.

Data: every city in ``../shared/data`` (POI/road GeoParquet of nyc, chicago, san_jose, los_angeles and the
``.osm.pbf`` extracts read with pyosmium), counted with the default ontology at level 12 and rasterized
into level-8 images. One city (``--holdout``, default san_jose) is kept out of training entirely: its
reconstruction loss, next to the predict-the-mean baseline, says how the model does on a place it never saw.

The real data set is small, so the training images are 16x16 windows at arbitrary offsets on the level-12
grid (stride ``--stride``) with the eight flips/rotations; validation uses the plain level-8 images of the
held-out city.

Run (CPU, the paper-size model; writes the model, a training curve and ``training_report.json``)::

    python scripts/train_pretrained.py --epochs 8 --out geos2vec/pretrained
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
PARQUET_CITIES = ["nyc", "chicago", "san_jose", "los_angeles"]
PBF_CITIES = ["baltimore", "columbus", "harrisburg", "heidelberg.test", "liechtenstein-latest"]


def city_tables(data: Path, level: int = 12) -> dict[str, pd.DataFrame]:
    """Feature table (count_features, default ontology) of every shared city."""
    import geopandas as gpd

    from geos2vec.features import count_features
    from geos2vec.io import read_osm

    tables = {}
    for city in PARQUET_CITIES:
        pois = gpd.read_parquet(data / "pois" / f"{city}.parquet")
        roads = gpd.read_parquet(data / "roads" / f"{city}.parquet")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the dropped-category report is kept in attrs
            tables[city] = count_features(pois, roads, level=level)
    for name in PBF_CITIES:
        osm = read_osm(data / "osm" / f"{name}.osm.pbf") if (data / "osm" / f"{name}.osm.pbf").exists() \
            else read_osm(data / "osm" / f"{name}.pbf")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tables[name.split(".")[0].split("-")[0]] = count_features(osm.pois, osm.roads, level=level)
    return tables


def build_images(tables, holdout: str, stride: int, augment: bool):
    from geos2vec.features import combine_counts
    from geos2vec.raster import rasterize, windows

    train_table = combine_counts([t for c, t in tables.items() if c != holdout])
    val_table = tables[holdout]
    train_images = rasterize(train_table)
    train = windows(train_images, size=16, stride=stride, augment=augment)
    val = rasterize(val_table)
    return train_table, val_table, train_images, train, val


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "geos2vec" / "pretrained")
    ap.add_argument("--holdout", default="san_jose")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--max-windows", type=int, default=None, help="subsample training windows (seeded)")
    ap.add_argument("--mask-ratio", type=float, default=0.75)
    ap.add_argument("--raw-counts", action="store_true", help="normalize raw counts (the paper) instead of log1p")
    ap.add_argument("--dry-run", action="store_true", help="only build and describe the data")
    ap.add_argument("--keras-format", action="store_true", help="save model.keras instead of compact weights")
    args = ap.parse_args(argv)

    t0 = time.time()
    tables = city_tables(args.data)
    if args.holdout not in tables:
        raise SystemExit(f"--holdout must be one of {sorted(tables)}")
    train_table, val_table, train_images, train, val = build_images(tables, args.holdout, args.stride,
                                                                    not args.no_augment)
    if args.max_windows and train.sizes[train.dims[0]] > args.max_windows:
        keep = np.sort(np.random.default_rng(0).choice(train.sizes[train.dims[0]], args.max_windows, replace=False))
        train = train.isel({train.dims[0]: keep})
    summary = {
        "cities": {c: {"cells": int(len(t)), "pois": int(t.drop(columns="road").to_numpy().sum()),
                       "road_segments_x_cells": int(t["road"].sum())} for c, t in tables.items()},
        "holdout": args.holdout,
        "train_cells": int(len(train_table)), "train_level8_images": int(train_images.sizes["image"]),
        "train_windows": int(train.sizes[train.dims[0]]), "val_images": int(val.sizes["image"]),
        "channels": int(train.sizes["feature"]), "data_seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(summary, indent=1))
    if args.dry_run:
        return summary

    from geos2vec.model import S2VecModel
    from geos2vec.normalize import FeatureStats

    stats = FeatureStats.fit(train_table, log1p=not args.raw_counts)  # observed training cells only
    model = S2VecModel(epochs=args.epochs, mask_ratio=args.mask_ratio, validation_split=0.0,
                       log_counts=not args.raw_counts)
    # windows have a "window" dim: the model takes any first dim
    train_da = train.rename({train.dims[0]: "image"}) if train.dims[0] != "image" else train
    model.build(train_da, stats=stats)
    t1 = time.time()
    model.fit(train_da, validation_data=val, epochs=args.epochs, verbose=2)
    train_seconds = time.time() - t1
    val_loss, val_base = model.evaluate(val, baseline=True, seed=0)
    tr_loss, tr_base = model.evaluate(train_images, baseline=True, seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out, compact=not args.keras_format)
    report = {**summary,
              "epochs": args.epochs, "params": model.count_params(), "train_seconds": round(train_seconds, 1),
              "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only",
              "loss": {"train_images": tr_loss, "train_mean_baseline": tr_base,
                       "holdout": val_loss, "holdout_mean_baseline": val_base},
              "history": {k: [float(x) for x in v] for k, v in model.history.history.items()}}
    report["config"] = model.config.to_dict()
    report["stride"], report["augment"] = args.stride, not args.no_augment
    report["normalization"] = "raw counts" if args.raw_counts else "log(1 + count)"
    (args.out / "training_report.json").write_text(json.dumps(report, indent=1))
    _plot_history(report["history"], args.out / "training_curve.png")
    write_model_card(report, args.out / "MODEL_CARD.md")
    copy_card_to_docs(args.out / "MODEL_CARD.md")
    print(json.dumps(report["loss"], indent=1))
    return report


def copy_card_to_docs(card: Path, docs: Path = ROOT / "docs" / "model_card.md") -> Path:
    """The docs copy of the model card (links rewritten for the docs folder)."""
    text = card.read_text().replace("](../../docs/", "](").replace("`training_curve.png`",
                                                                    "`geos2vec/pretrained/training_curve.png`")
    docs.write_text(text)
    return docs


def write_model_card(report: dict, path: Path, evaluation: str | None = None) -> Path:
    """The model card, filled from ``training_report.json`` (so the numbers are never typed by hand)."""
    loss = report["loss"]
    cfg = report.get("config", {})
    cities = report["cities"]
    hold = report["holdout"]
    rows = "\n".join(f"| {c} | {v['cells']:,} | {v['pois']:,} | {v['road_segments_x_cells']:,} |"
                      + (" held out |" if c == hold else " training |") for c, v in cities.items())
    ratio_h = loss["holdout"] / loss["holdout_mean_baseline"]
    ratio_t = loss["train_images"] / loss["train_mean_baseline"]
    hist = report.get("history", {})
    best_val = min(hist["val_loss"]) if hist.get("val_loss") else float("nan")
    text = f"""# Model card: geos2vec bundled S2Vec model (`load_model("default")`)

## What it is
A ViT masked autoencoder (S2Vec; MAE as in He et al. 2022) over images of 16 × 16 level-12 S2 cells (one
level-8 cell), each pixel the feature vector of one level-12 cell: {report['channels']} channels = 115 POI
categories of the geos2vec OSM ontology v1 + `road` (number of road segments crossing the cell), normalized as
{report.get('normalization', 'log(1 + count)')} then feature-wise mean/variance (`feature_stats.json`).
Output: a {cfg.get('embedding_dim', 256)}-d vector per level-12 cell (`mode="contextual"`: the encoder over the
full image, the default), the linear patch projection (`"patch"`) or the mean over an image (`"image"`).

| | |
|---|---|
| architecture | encoder {cfg.get('encoder_layers')} layers × {cfg.get('embedding_dim')}, decoder {cfg.get('decoder_layers')} layers × {cfg.get('decoder_dim')}, {cfg.get('num_heads')} heads, MLP ratio {cfg.get('mlp_ratio')}, dropout {cfg.get('dropout')} (the paper's Table 1) |
| parameters | {report['params']:,} (weights shipped as float16, `weights.npz`) |
| masking | {cfg.get('mask_ratio')} of the patches, a new mask every time an image is seen; loss = MSE on masked patches |
| optimizer | AdamW, lr {cfg.get('learning_rate')} with cosine decay to {cfg.get('cosine_alpha')}×, weight decay {cfg.get('weight_decay')}, clipnorm {cfg.get('clipnorm')}, batch {cfg.get('batch_size')}, shuffle buffer {cfg.get('shuffle_buffer')} |
| epochs | {report['epochs']} (the paper: 50) over {report['train_windows']:,} training windows |
| hardware / wall time | {report['hardware']}; {report['train_seconds'] / 60:.1f} min of training |
| levels | patches: level 12, images: level 8 |

## Data
OpenStreetMap-derived POIs and roads of the project's shared cities — **© OpenStreetMap contributors, ODbL 1.0**.
POI/road GeoParquet of New York, Chicago, San José and Los Angeles (from the STContext repository) and the
`.osm.pbf` extracts of Baltimore, Columbus, Harrisburg, Heidelberg and Liechtenstein (from routing-engine test
data), read with `geos2vec.io.read_osm`.

| city | level-12 cells with features | POIs counted | road × cell crossings | role |
|---|---:|---:|---:|---|
{rows}

{report['train_cells']:,} training cells fall in {report['train_level8_images']} level-8 images. That is far too
few images for a ViT, so the training set is every 16 × 16 window at a stride of {report['stride']} cells on the
level-12 grid of each S2 face (`geos2vec.raster.windows`), with the eight flips/rotations
(`augment={report['augment']}`): {report['train_windows']:,} windows. **{hold}** is held out entirely: it is
never seen in training, and its {report['val_images']} level-8 images are the validation set.

## Results (masked-patch reconstruction loss, normalized units)

| data | model | predict-the-mean baseline | model / baseline |
|---|---:|---:|---:|
| training images (level-8 images of the training cities) | {loss['train_images']:.4f} | {loss['train_mean_baseline']:.4f} | {ratio_t:.2f} |
| held-out city ({hold}) | {loss['holdout']:.4f} | {loss['holdout_mean_baseline']:.4f} | {ratio_h:.2f} |

Both losses are measured on the same random masks (seed 0) for the model and the baseline (the baseline
predicts every masked patch as the training mean, i.e. 0 after normalization). Best validation loss during
training: {best_val:.4f}. Training curve: `training_curve.png`.

## Downstream evaluation
{evaluation or "See docs/evaluation_results.md (the paper's protocol on California housing)."}

## Limits — read before use
* Trained on {len(cities) - 1} cities and {report['train_cells']:,} cells, not the paper's US-wide data. Places
  unlike these (rural areas, other continents beyond the two European extracts) are out of distribution.
* The POI sources differ in coverage and year (2012–2020 snapshots, small test extracts); the Columbus extract
  has almost no POIs. Counts are not comparable across sources the way a single OSM planet snapshot would be.
* Cells without any POI or road have no embedding by default (`outside="nan"`).
* Contextual embeddings carry a per-image component: each level-8 image is encoded on its own, so cells on
  either side of an image edge see different context. Measured on the shared cities, membership in a level-8
  image explains 15–54 % of the variance of contextual embeddings (San José, Los Angeles, New York) against
  3–5 % for `mode="patch"`; maps of contextual embeddings show the level-8 grid. Use `mode="patch"` where that
  matters.
* {report['epochs']} epochs on CPU, not 50 on accelerators; with log counts rather than the paper's raw counts.

Reproduce: `python scripts/train_pretrained.py --epochs {report['epochs']} --stride {report['stride']} --out geos2vec/pretrained`
(needs `../shared/data` and the `model` and `osm` extras).
"""
    Path(path).write_text(text)
    return Path(path)


def _plot_history(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for key in ("loss", "val_loss"):
        if key in history:
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("masked-patch MSE (normalized)")
    ax.legend()
    ax.set_title("geos2vec pretrained model")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
