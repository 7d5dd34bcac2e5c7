"""Seams of the bundled model's contextual embeddings on the shared cities, before and after 0.2.

For each OSM city in ``../shared/data`` (POIs + roads, ``count_features`` at level 12) every observed cell is
embedded with ``mode="tiled"`` (v0.1's per-image contextual mode) and ``mode="contextual"`` with
``context="blend"`` (the 0.2 default) and ``context="centred"``, and with the untrained-encoder control; and, as controls with no encoder at all, the cells' input counts
(``log1p_counts``) and the neighbour-smoothed counts baseline (``smoothed_counts``): where the level-8 images
explain more of the input than the shifted partition does, the same ratio in an embedding is geography, not a
seam.
:func:`geos2vec.evaluate.seam_table` gives the share of variance explained by the level-8 images (offset 0)
and by the same partition shifted by 8 and by 4 cells, the border step (:func:`geos2vec.evaluate.border_step`:
neighbours across image borders against neighbours inside images) and ``seam_p``
(:func:`geos2vec.evaluate.seam_pvalue`: the images ranked among all 256 offsets of image-sized blocks). Writes ``docs/seams.md``'s table and
``docs/img/seams/<city>.png`` (first principal component of each embedding, mapped).

    python scripts/seam_metric.py [--data ../shared/data] [--out docs] [--model PATH]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CITIES = ("nyc", "chicago", "san_jose", "los_angeles")
MODES = (("tiled", "tiled", "blend"), ("contextual (blend)", "contextual", "blend"),
         ("contextual (centred)", "contextual", "centred"))


def city_images(city, data, channels):
    """The count table of a shared city's POIs and roads, and its level-8 images in the model's channels."""
    import geopandas as gpd

    from geos2vec.features import count_features
    from geos2vec.raster import rasterize

    pois = gpd.read_parquet(data / "pois" / f"{city}.parquet")
    roads = gpd.read_parquet(data / "roads" / f"{city}.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(pois, roads, level=12)
    return table, rasterize(table.reindex(columns=channels, fill_value=0))


def embeddings(da, model):
    """Every mode of MODES on the images, with its wall time."""
    out, secs = {}, {}
    for name, mode, ctx in MODES:
        t0 = time.perf_counter()
        out[name] = model.embed(da, mode=mode, context=ctx, as_frame=True, verbose=False)
        secs[name] = time.perf_counter() - t0
    return out, secs


def plot_city(city, embs, path):
    import geopandas as gpd
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geos2vec import cell_polygons, cell_to_parent

    fig, axes = plt.subplots(1, len(embs), figsize=(4.4 * len(embs), 4.4), squeeze=False)
    for ax, (name, emb) in zip(axes[0], embs.items()):
        x = emb.to_numpy(np.float64)
        x = x - x.mean(axis=0)
        pc1 = np.linalg.svd(x, full_matrices=False)[0][:, 0]
        ids = np.asarray(emb.index, np.uint64)
        cells = gpd.GeoDataFrame({"pc1": pc1}, geometry=cell_polygons(ids).values, crs=4326)
        cells.plot(column="pc1", cmap="coolwarm", ax=ax, linewidth=0)
        images = cell_polygons(np.unique(cell_to_parent(ids, 8)))
        images.boundary.plot(ax=ax, color="black", linewidth=1.2)
        x0, y0, x1, y1 = cells.total_bounds
        pad = 0.03 * max(x1 - x0, y1 - y0)
        ax.set_xlim(x0 - pad, x1 + pad), ax.set_ylim(y0 - pad, y1 + pad)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([]), ax.set_yticks([]), ax.set_xlabel(""), ax.set_ylabel("")
    fig.suptitle(f"{city}: first principal component of each embedding; black: level-8 image borders",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def markdown(df: pd.DataFrame) -> str:
    """A pipe table (no tabulate dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--model", default="default", help="a saved model's folder (default: the bundled model)")
    args = ap.parse_args(argv)

    import geos2vec
    from geos2vec.evaluate import log1p_counts, seam_table, smoothed_counts, untrained_model

    model = geos2vec.load_model(args.model)
    fresh = untrained_model(model, seed=0)
    rows, timing = [], []
    for city in CITIES:
        counts, da = city_images(city, args.data, model.channels)  # counted once for both models
        n_img = da.sizes["image"]
        embs, secs = embeddings(da, model)
        ctrl, _ = embeddings(da, fresh)
        embs.update({f"untrained, {k}": v for k, v in ctrl.items()})
        # controls without any encoder: how much the level-8 images explain of the input itself (geography)
        cells = embs["tiled"].index.to_numpy()
        embs["input: log(1 + counts)"] = log1p_counts(counts, cells)
        embs["input: smoothed counts"] = smoothed_counts(counts, cells)
        table = seam_table(embs)
        table.insert(0, "city", city)
        rows.append(table)
        timing.append({"city": city, "images": n_img, **{f"{k} s": round(v, 2) for k, v in secs.items()}})
        plot_city(city, {k: embs[k] for k, _, _ in MODES}, args.out / "img" / "seams" / f"{city}.png")
        print(table.round(3).to_string())
    table = pd.concat(rows).rename_axis("embedding").reset_index()
    md = markdown(table)
    tm = markdown(pd.DataFrame(timing))
    text = f"<!-- generated by scripts/seam_metric.py -->\n{md}\n\nEmbedding time (this CPU):\n\n{tm}\n"
    (args.out / "seams_table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
