"""A real large run: every Who's On First state in ../shared/data/wof, in plain pandas and on dask.

Stages: read the venues (``read_wof``) -> count level-12 features (coverage: each state's venue hull) ->
rasterize to a zarr store (level-8 images, chunked) -> embed every level-12 cell with features (the bundled
model, seamless contextual mode) -> write the embeddings as partitioned GeoParquet (cell centres).

* ``pandas``: everything in one process, in memory.
* ``dask``: a ``distributed.LocalCluster`` with 1 or 2 worker processes (one thread each, 4 GiB memory limit):
  reading and counting run in the workers (one partition per state, summed in a tree), embedding runs
  partition by partition (cells in S2 order, so each partition needs few images), and each partition
  writes its own GeoParquet file.

Each configuration runs in its own subprocess, so peak memory (``ru_maxrss``) is its own. The dask runs report
each worker's peak too. The outputs are compared with the pandas run: count tables exactly, embeddings to
float tolerance on a subset. Results go to ``benchmarks/RESULTS.md`` by hand.

    python benchmarks/bench_large.py                      # all states: pandas, dask x1, dask x2
    python benchmarks/bench_large.py --states ky,nm --configs pandas,dask1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WOF = ROOT.parent / "shared" / "data" / "wof"
EMBED_PARTS = 16


def _files(states):
    files = sorted(WOF.glob("us-*.parquet"))
    if states != "all":
        keep = {f"us-{s}.parquet" for s in states.split(",")}
        files = [f for f in files if f.name in keep]
    return files


def _state_table(path):
    """One state's venues and their hull without mis-geocoded venues (its coverage)."""
    from geos2vec.io import read_wof, venue_coverage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pois = read_wof(path)
    return pois, venue_coverage(pois)


def _cells_frame(table):
    import geopandas as gpd
    import numpy as np

    import geos2vec

    cells = table.index.to_numpy(np.uint64)  # sorted: S2 (Hilbert) order, so neighbours share partitions
    lat, lng = geos2vec.cell_to_latlng(cells)
    return gpd.GeoDataFrame({"cell_id": cells}, geometry=gpd.points_from_xy(lng, lat), crs=4326)


def run_pandas(files, out: Path) -> dict:
    import numpy as np
    import pandas as pd
    import shapely

    import geos2vec
    from geos2vec.features import count_features
    from geos2vec.raster import rasterize, to_zarr

    t = {}
    t0 = time.perf_counter()
    parts = [_state_table(f) for f in files]
    pois = pd.concat([p for p, _ in parts], ignore_index=True)
    coverage = shapely.union_all([h for _, h in parts])
    t["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = count_features(pois, coverage=coverage)
    t["count"] = time.perf_counter() - t0
    n_pois = len(pois)
    del pois, parts
    t0 = time.perf_counter()
    da = rasterize(table, chunks=64)
    to_zarr(da, out / "images.zarr")
    t["rasterize_zarr"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cells = _cells_frame(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emb = geos2vec.embed(cells, table, progress=False)
    t["embed"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    (out / "embeddings").mkdir(parents=True, exist_ok=True)
    for k, part in enumerate(np.array_split(np.arange(len(emb)), EMBED_PARTS)):
        emb.iloc[part].to_parquet(out / "embeddings" / f"part.{k}.parquet")
    t["write"] = time.perf_counter() - t0
    table.to_parquet(out / "counts.parquet")
    return {"times": t, "n_pois": n_pois, "n_cells": len(table), "n_images": int(da.sizes["image"]),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _worker_peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_dask(files, out: Path, workers: int) -> dict:
    import dask
    import dask.dataframe as dd
    import dask_geopandas as dgpd
    import shapely
    from distributed import Client, LocalCluster

    import geos2vec
    from geos2vec.features import count_features
    from geos2vec.raster import rasterize, to_zarr

    t = {}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit="4GiB",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        read = dask.delayed(lambda f: _state_table(f)[0], pure=True)
        meta = _state_table(min(files, key=lambda f: f.stat().st_size))[0].iloc[:0]
        pois = dgpd.from_dask_dataframe(dd.from_delayed([read(f) for f in files], meta=meta, verify_meta=False),
                                        geometry="geometry")
        hulls = dask.compute(*[dask.delayed(lambda f: _state_table(f)[1])(f) for f in files])
        coverage = shapely.union_all(list(hulls))
        t["hulls"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = count_features(pois, coverage=coverage)
        t["read+count"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        da = rasterize(table, chunks=64)
        to_zarr(da, out / "images.zarr")
        t["rasterize_zarr"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cells = dgpd.from_geopandas(_cells_frame(table), npartitions=EMBED_PARTS, sort=False)
        emb = geos2vec.embed(cells, table)
        emb.to_parquet(out / "embeddings")
        t["embed+write"] = time.perf_counter() - t0
        peaks = client.run(_worker_peak)
    table.to_parquet(out / "counts.parquet")
    return {"times": t, "n_cells": len(table), "workers": workers, "worker_peak_rss_gib": sorted(peaks.values()),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def compare(a: Path, b: Path, subset: int = 5000) -> dict:
    import geopandas as gpd
    import numpy as np
    import pandas as pd

    ca, cb = pd.read_parquet(a / "counts.parquet"), pd.read_parquet(b / "counts.parquet")
    ea = gpd.read_parquet(a / "embeddings").sort_values("cell_id")
    eb = gpd.read_parquet(b / "embeddings").sort_values("cell_id")
    cols = [c for c in ea.columns if c.startswith("s2vec_")]
    rng = np.random.default_rng(0)
    pick = rng.choice(len(ea), size=min(subset, len(ea)), replace=False)
    same_cells = bool((ea["cell_id"].to_numpy() == eb["cell_id"].to_numpy()).all())
    diff = np.abs(ea[cols].to_numpy()[pick] - eb[cols].to_numpy()[pick])
    return {"counts_equal": bool(ca.equals(cb)), "embedded_cells_equal": same_cells,
            "embedding_max_abs_diff": float(np.nanmax(diff)), "rows": [len(ea), len(eb)]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--states", default="all", help="comma-separated state codes, or all")
    ap.add_argument("--configs", default="pandas,dask1,dask2")
    ap.add_argument("--out", type=Path, default=Path("/tmp/geos2vec-large"))
    ap.add_argument("--run", help=argparse.SUPPRESS)  # one configuration, in this (sub)process
    args = ap.parse_args(argv)
    files = _files(args.states)
    if args.run:
        out = args.out / args.run
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        t0 = time.perf_counter()
        res = run_pandas(files, out) if args.run == "pandas" else run_dask(files, out, int(args.run[4:]))
        res["total_s"] = time.perf_counter() - t0
        print(json.dumps(res))
        return
    print(f"{len(files)} state files; machine: {os.cpu_count()} cores; load before: {os.getloadavg()}", flush=True)
    results = {}
    for cfg in args.configs.split(","):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--states", args.states, "--out", str(args.out),
                               "--run", cfg], capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:])
            raise SystemExit(f"{cfg} failed")
        results[cfg] = json.loads(proc.stdout.strip().splitlines()[-1])
        results[cfg]["wall_s"] = time.perf_counter() - t0
        results[cfg]["load_after"] = os.getloadavg()[0]
        print(cfg, json.dumps(results[cfg]), flush=True)
    for cfg in results:
        if cfg != "pandas" and "pandas" in results:
            print(cfg, "vs pandas:", json.dumps(compare(args.out / "pandas", args.out / cfg)), flush=True)
    if "dask1" in results and "dask2" in results:
        r1, r2 = results["dask1"]["times"], results["dask2"]["times"]
        print("speed-up 2 workers / 1 worker:", {k: round(r1[k] / r2[k], 2) for k in r1}, flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
