"""Held-out reconstruction of saved models on the same images: two WOF states and one OSM city.

The held-out sources of ``scripts/prepare_training_data.py`` (default Kentucky and New Mexico venues, San José
OSM POIs and roads), counted with their coverage (a state's venue hull without roads; the city's box) and
rasterized into level-8 images with ``covered``/``available``. Every model is scored by
``S2VecModel.evaluate`` (20 seeded masks, the same for every model and predictor) on covered pixels and
available channels, next to the parameter-free predictors. This is the validation criterion that decides which
model ships (not the downstream test splits).

    python scripts/compare_holdout.py default /path/to/new_model [--json out.json]
        [--stats gpu/data-avail.npz] [--by-source] [--by-channel channels.csv]

``--stats``: score every model in the units of the normalization statistics packed in that training-data file
(``meta["stats"]``) instead of each model's own, so that models normalized differently are compared on one
scale (``S2VecModel.evaluate(stats=...)``). ``--by-source``: also each held-out source alone. ``--by-channel``:
also write each model's per-channel losses on each image set (``S2VecModel.evaluate(by="channel")``) to a CSV
(columns ``model``, ``images``, ``channel``, ``values``, ``loss_<predictor>``, ``ratio_to_visible_mean``,
``share``), and print the channels that carry most of the model's loss.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def holdout_tables(data: Path, states=("ky", "nm"), city="san_jose") -> dict:
    """``{source: count table with coverage}`` of the held-out states and city."""
    import geopandas as gpd
    import shapely

    from geos2vec.evaluate.tasks import CITY_BOXES
    from geos2vec.features import count_features
    from geos2vec.io import read_wof, venue_coverage

    tables = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        venues = read_wof(data / "wof", states=list(states))
        for state, g in venues.groupby("state"):
            tables[f"wof:{state}"] = count_features(pois=g, coverage=venue_coverage(g))
        pois = gpd.read_parquet(data / "pois" / f"{city}.parquet")
        roads = gpd.read_parquet(data / "roads" / f"{city}.parquet")
        tables[f"osm:{city}"] = count_features(pois, roads, coverage=shapely.box(*CITY_BOXES[city]))
    return tables


def holdout_images(data: Path, states=("ky", "nm"), city="san_jose", tables: dict | None = None):
    """The held-out sources' images (level 8), with ``covered`` and ``available``; ``tables``: those of
    :func:`holdout_tables`, when already read."""
    from geos2vec.features import combine_counts
    from geos2vec.raster import rasterize

    tables = holdout_tables(data, states, city) if tables is None else tables
    return rasterize(combine_counts(list(tables.values())))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="'default' or saved model paths")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--masks", type=int, default=20)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--stats", type=Path, help="a training-data .npz: score in the units of its statistics")
    ap.add_argument("--by-source", action="store_true", help="also score each held-out source alone")
    ap.add_argument("--by-channel", type=Path, help="write per-channel losses to this CSV")
    args = ap.parse_args(argv)

    import numpy as np

    import geos2vec
    from geos2vec import FeatureStats
    from geos2vec.raster import rasterize

    stats = None
    if args.stats:
        stats = FeatureStats.from_dict(json.loads(str(np.load(args.stats)["meta"]))["stats"])
    tables = holdout_tables(args.data)
    sets = {"all": holdout_images(args.data, tables=tables)}
    if args.by_source:
        sets |= {name: rasterize(t) for name, t in tables.items()}
    for name, da in sets.items():
        print(f"held-out images ({name}): {da.sizes['image']}, covered pixels {int(da['covered'].sum())}", flush=True)
    out, per_channel = {}, []
    cols = ["loss_covered", "ratio_covered_to_visible_mean"]
    for name in args.models:
        m = geos2vec.load_model(name)
        for part, da in sets.items():
            res = m.evaluate(da.sel(feature=list(m.channels)), seed=0, n_masks=args.masks, stats=stats,
                             by=("predictor", "channel") if args.by_channel else "predictor")
            res, ch = res if args.by_channel else (res, None)  # both tables from one pass
            print(f"\n{name} ({part}):\n{res[cols].round(4).to_string()}", flush=True)
            key = name if part == "all" else f"{name} [{part}]"
            out[key] = res[cols].to_dict()
            if ch is not None:
                top = ch.sort_values("share", ascending=False).head(8)
                print(top[["share", "ratio_to_visible_mean"]].round(3).to_string(), flush=True)
                per_channel.append(ch.reset_index().assign(model=name, images=part))
    if per_channel:
        import pandas as pd

        table = pd.concat(per_channel, ignore_index=True)
        table = table[["model", "images"] + [c for c in table.columns if c not in ("model", "images")]]
        tmp = args.by_channel.with_name(args.by_channel.name + ".tmp")
        table.to_csv(tmp, index=False)
        tmp.replace(args.by_channel)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
