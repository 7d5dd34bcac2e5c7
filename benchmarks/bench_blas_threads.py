"""The BLAS thread limit around every NumPy-encoder call: ``geos2vec.options.blas_threads()`` (default ``threads=1``)
against threadpoolctl.

The reference is what the limit cost before (and what a plain user would write): ``threadpool_limits(limits=1,
user_api="blas")``, which scans every loaded shared library on entry. ``blas_threads`` keeps one
``ThreadpoolController`` and scans again only when a library was loaded or unloaded. Both are timed in one
process, alternating, best of ``--repeat`` rounds of ``--calls`` blocks; then a small patch-mode embed
(the Los Angeles downtown POIs, the bundled model), the call the limit surrounds. Prints the load average.

    python benchmarks/bench_blas_threads.py [--repeat 5] [--calls 200]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def per_call(fn, calls, repeat):
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from geos2vec.options import blas_threads, set_options

    set_options(progress=False)

    print(f"load average before: {os.getloadavg()[0]:.2f}")

    def ours():
        with blas_threads():  # the default option: threads=1
            pass

    def reference():
        with threadpool_limits(limits=1, user_api="blas"):
            pass

    a, b = per_call(ours, args.calls, args.repeat), per_call(reference, args.calls // 10 or 1, args.repeat)
    print(f"limit block: blas_threads {a * 1e6:.1f} µs, threadpool_limits {b * 1e6:.1f} µs, ratio {a / b:.4f}")
    if (DATA / "pois" / "los_angeles.parquet").exists():
        import geopandas as gpd
        import shapely

        import geos2vec
        from geos2vec.raster import rasterize

        pois = gpd.read_parquet(DATA / "pois" / "los_angeles.parquet")
        pois = pois[pois.intersects(shapely.box(-118.30, 34.03, -118.22, 34.08))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            images = rasterize(geos2vec.count_features(pois=pois))
        model = geos2vec.load_model("default")
        t = per_call(lambda: model.embed(images, mode="patch"), 20, args.repeat)
        print(f"patch-mode embed of {int(images['observed'].sum())} cells: {t * 1e3:.2f} ms "
              f"(of which the reference limit would be {b * 1e3:.2f} ms)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
