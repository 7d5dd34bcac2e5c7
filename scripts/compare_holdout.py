"""Held-out reconstruction of saved models on the same images: two WOF states and one OSM city.

The held-out sources of ``scripts/prepare_training_data.py`` (default Kentucky and New Mexico venues, San José
OSM POIs and roads), counted with their coverage (a state's venue hull without roads; the city's box) and
rasterized into level-8 images with ``covered``/``available``. Every model is scored by
``S2VecModel.evaluate`` (20 seeded masks, the same for every model and predictor) on covered pixels and
available channels, next to the parameter-free predictors. This is the validation criterion that decides which
model ships (not the downstream test splits).

    python scripts/compare_holdout.py default /path/to/new_model [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def holdout_images(data: Path, states=("ky", "nm"), city="san_jose"):
    import geopandas as gpd
    import shapely

    from geos2vec.evaluate.tasks import CITY_BOXES
    from geos2vec.features import combine_counts, count_features
    from geos2vec.io import read_wof
    from geos2vec.raster import rasterize

    tables = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        venues = read_wof(data / "wof", states=list(states))
        for _, g in venues.groupby("state"):
            hull = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(g.geometry.values)))
            tables.append(count_features(pois=g, coverage=hull))
        pois = gpd.read_parquet(data / "pois" / f"{city}.parquet")
        roads = gpd.read_parquet(data / "roads" / f"{city}.parquet")
        tables.append(count_features(pois, roads, coverage=shapely.box(*CITY_BOXES[city])))
        table = combine_counts(tables)
    return rasterize(table)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="'default' or saved model paths")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--masks", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    import geos2vec

    da = holdout_images(args.data)
    print(f"held-out images: {da.sizes['image']}, covered pixels {int(da['covered'].sum())}", flush=True)
    out = {}
    for name in args.models:
        m = geos2vec.load_model(name)
        res = m.evaluate(da.sel(feature=list(m.channels)), seed=0, n_masks=args.masks)
        cols = ["loss_covered", "ratio_covered_to_visible_mean"]
        print(f"\n{name}:\n{res[cols].round(4).to_string()}", flush=True)
        out[name] = res[cols].to_dict()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
