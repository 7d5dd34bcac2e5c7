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
    model.save(args.out)
    report = {**summary,
              "epochs": args.epochs, "params": model.count_params(), "train_seconds": round(train_seconds, 1),
              "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only",
              "loss": {"train_images": tr_loss, "train_mean_baseline": tr_base,
                       "holdout": val_loss, "holdout_mean_baseline": val_base},
              "history": {k: [float(x) for x in v] for k, v in model.history.history.items()}}
    (args.out / "training_report.json").write_text(json.dumps(report, indent=1))
    _plot_history(report["history"], args.out / "training_curve.png")
    print(json.dumps(report["loss"], indent=1))
    return report


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
