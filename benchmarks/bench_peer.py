"""geos2vec against srai's ``S2VecEmbedder`` (PyTorch), stage by stage, on the same data in one run.

Data: the New York POIs of ``../shared/data`` in the 8 level-8 images holding the most of them (2,048 level-12
cells). Same model size on both sides (the paper's: 6 x 256 encoder, 2 x 128 decoder, 8 heads, batch 64).

Stages, best of ``--repeat`` each:

* featurization: srai ``_prepare_dataset`` (patches, intersection join, counts, normalisation) against
  geos2vec ``count_features`` + ``rasterize`` of the same POIs for the same images;
* first training epoch (one step on 8 images, set-up and tracing included) and two more epochs: a fresh model
  each time, srai ``fit(max_epochs=1)`` / ``fit(max_epochs=3)`` against geos2vec ``S2VecModel.fit``;
* inference per cell: srai ``transform`` of a fitted model, against geos2vec ``embed_cells`` with the bundled
  model and default settings (seamless contextual mode, NumPy encoder, one BLAS thread), and with
  ``mode="tiled"`` (one pass per level-8 image, as srai encodes).

srai runs in its own virtual environment (``--srai-python``, default ``../srai-venv/bin/python``; make it with
``python -m venv ../srai-venv && ../srai-venv/bin/pip install torch==2.14.1 torchvision==0.29.1
"srai[torch]==0.10.2" "polars<2"`` — srai 0.10.2 breaks with polars 2, and torch 2.13.0 with the newest
torchvision fails to import). Without it the srai column is skipped with a message.

    python benchmarks/bench_peer.py [--repeat 3] [--srai-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
N_IMAGES = 8


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, out


# ----------------------------------------------------------------------------------------- srai (its venv)
def srai_worker(spec: dict) -> dict:
    import geopandas as gpd
    import pandas as pd
    import s2sphere
    import shapely
    import torch
    from srai.embedders import S2VecEmbedder

    torch.set_num_threads(os.cpu_count() or 1)
    pois = gpd.read_parquet(spec["pois"])
    feats = gpd.GeoDataFrame({"amenity": pois["fclass"].astype(str).to_numpy()}, geometry=pois.geometry.values,
                             crs=4326)
    feats.index = pd.RangeIndex(len(feats), name="feature_id")
    polys = []
    for tok in spec["tokens"]:
        cell = s2sphere.Cell(s2sphere.CellId.from_token(tok))
        pts = [s2sphere.LatLng.from_point(cell.get_vertex(k)) for k in range(4)]
        polys.append(shapely.Polygon([(p.lng().degrees, p.lat().degrees) for p in pts]))
    regions = gpd.GeoDataFrame(geometry=polys, index=pd.Index(spec["tokens"], name="region_id"), crs=4326)
    target = [f"amenity_{v}" for v in spec["categories"]]
    res = {"torch": torch.__version__}

    def new():
        return S2VecEmbedder(target_features=target, batch_size=64)

    emb = new()
    res["featurize"] = best(lambda: emb._prepare_dataset(regions, feats, 64, shuffle=False, is_fitting=True),
                            spec["repeat"])[:2]
    quiet = {"enable_progress_bar": False, "enable_model_summary": False, "logger": False,
             "enable_checkpointing": False, "accelerator": "cpu"}
    res["epoch1"] = best(lambda: new().fit(regions, feats, trainer_kwargs={**quiet, "max_epochs": 1}),
                         spec["repeat"])[:2]
    res["epoch3"] = best(lambda: new().fit(regions, feats, trainer_kwargs={**quiet, "max_epochs": 3}),
                         spec["repeat"])[:2]
    fitted = new()
    fitted.fit(regions, feats, trainer_kwargs={**quiet, "max_epochs": 1})
    t, ts, out = best(lambda: fitted.transform(regions, feats), spec["repeat"])
    res["infer"] = (t, ts)
    res["n_cells"] = int(len(out))
    res["n_channels"] = len(target)
    return res


# ----------------------------------------------------------------------------------------- geos2vec
def ours(pois, images, repeat: int) -> dict:
    import numpy as np

    import geos2vec
    from geos2vec.features import count_features
    from geos2vec.model import S2VecModel
    from geos2vec.model.config import S2VecConfig
    from geos2vec.raster import rasterize

    import keras  # noqa: F401 - the framework import is not part of a stage (srai's worker imports torch first)

    res = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res["featurize"] = best(lambda: rasterize(count_features(pois), images=images), repeat)[:2]
        table = count_features(pois)
    da = rasterize(table, images=images)

    def fit(epochs):
        m = S2VecModel(S2VecConfig(epochs=epochs, batch_size=64, seed=0))
        m.fit(da, epochs=epochs, verbose=0)
        return m

    res["epoch1"] = best(lambda: fit(1), repeat)[:2]
    res["epoch3"] = best(lambda: fit(3), repeat)[:2]
    cells = np.asarray(da["cell_id"].values).ravel()
    m = geos2vec.load_model("default")
    t, ts, out = best(lambda: geos2vec.embed_cells(cells, table, model=m, outside="embed", progress=False), repeat)
    res["infer"] = (t, ts)
    # one pass per level-8 image, as srai's transform does (our default blends 4 windows per cell: no seams)
    res["infer_tiled"] = best(lambda: geos2vec.embed_cells(cells, table, model=m, mode="tiled", outside="embed",
                                                            progress=False), repeat)[:2]
    res["n_cells"] = int(len(out))
    res["n_channels"] = len(m.channels)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--srai-python", default=str(ROOT.parent / "srai-venv" / "bin" / "python"))
    ap.add_argument("--srai-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.srai_worker:
        spec = json.loads(Path(args.srai_worker).read_text())
        print(json.dumps(srai_worker(spec)))
        return

    import geopandas as gpd
    import numpy as np

    import geos2vec

    pois = gpd.read_parquet(DATA / "pois" / "nyc.parquet")
    parents = geos2vec.cell_to_parent(geos2vec.latlng_to_cell(pois.geometry.y.to_numpy(), pois.geometry.x.to_numpy(),
                                                              12), 8)
    uniq, counts = np.unique(parents, return_counts=True)
    images = np.sort(uniq[np.argsort(-counts)[:N_IMAGES]])
    pois = pois[np.isin(parents, images)].reset_index(drop=True)
    cats = pois["fclass"].astype(str).value_counts().index[:115].tolist()
    print(f"NYC: {len(pois):,} POIs in {N_IMAGES} level-8 images ({N_IMAGES * 256:,} level-12 cells); "
          f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; best of {args.repeat}", flush=True)

    peer = None
    if Path(args.srai_python).exists():
        with tempfile.TemporaryDirectory() as tmp:
            pois.to_parquet(Path(tmp) / "pois.parquet")
            spec = {"pois": str(Path(tmp) / "pois.parquet"), "tokens": list(geos2vec.cell_to_token(images)),
                    "categories": cats, "repeat": args.repeat}
            (Path(tmp) / "spec.json").write_text(json.dumps(spec))
            proc = subprocess.run([args.srai_python, __file__, "--srai-worker", str(Path(tmp) / "spec.json")],
                                  capture_output=True, text=True)
        if proc.returncode:
            print("srai run failed:\n" + proc.stderr[-3000:])
        else:
            peer = json.loads(proc.stdout.strip().splitlines()[-1])
    else:
        print(f"srai not found at {args.srai_python}: srai column skipped (see the module docstring)")
    mine = ours(pois, images, args.repeat)
    print(f"load after: {os.getloadavg()[0]:.2f}")

    rows = [("cells + featurization", "featurize", 1), ("first epoch (1 step, set-up/tracing included)",
                                                         "epoch1", 1)]
    print(f"\n{'stage':50s}{'srai s':>10s}{'geos2vec s':>12s}{'ratio':>8s}")
    for label, key, _ in rows + [("three epochs (fresh model)", "epoch3", 1)]:
        a = peer[key][0] if peer else float("nan")
        b = mine[key][0]
        print(f"{label:50s}{a:10.2f}{b:12.2f}{b / a if peer else float('nan'):8.2f}")
    a2 = (peer["epoch3"][0] - peer["epoch1"][0]) if peer else float("nan")
    b2 = mine["epoch3"][0] - mine["epoch1"][0]
    print(f"{'two more epochs (three minus one)':50s}{a2:10.2f}{b2:12.2f}{b2 / a2 if peer else float('nan'):8.2f}")
    a3 = peer["infer"][0] / peer["n_cells"] * 1e6 if peer else float("nan")
    b3 = mine["infer"][0] / mine["n_cells"] * 1e6
    print(f"{'inference per cell (µs), our default (seamless)':50s}{a3:10.1f}{b3:12.1f}"
          f"{b3 / a3 if peer else float('nan'):8.2f}")
    b4 = mine["infer_tiled"][0] / mine["n_cells"] * 1e6
    print(f"{'inference per cell (µs), per image (mode=tiled)':50s}{a3:10.1f}{b4:12.1f}"
          f"{b4 / a3 if peer else float('nan'):8.2f}")
    print(f"\nchannels: srai {peer['n_channels'] if peer else '-'} (the 115 most frequent fclass values), geos2vec "
          f"{mine['n_channels']} (ontology v1); torch {peer['torch'] if peer else '-'}")
    print("all timings:", json.dumps({"srai": peer, "geos2vec": mine}))


if __name__ == "__main__":
    main()
