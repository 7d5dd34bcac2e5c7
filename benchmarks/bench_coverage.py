"""Benchmark: a ``coverage=`` GeoSeries in a projected CRS taken to longitude/latitude.

    python benchmarks/bench_coverage.py [--n 10000 50000] [--repeat 3]

``geos2vec._coverage_layers.lnglat_union`` (what ``count_features(coverage=...)``, ``as_coverage`` and
``download_osm(area=...)`` do with a GeoSeries) densifies a projected area and splits an area across ±180 at
the antimeridian. Timed here against the plain ``gs.to_crs(4326).union_all()`` (right away from ±180, a band
round the globe across it) on ``--n`` random boxes of 0.2-2 km in UTM zone 11N (Los Angeles, nothing near
±180), in one run, best of ``--repeat``, alternating; prints the ratio, the load average, and the symmetric
difference of the two areas (the densified edges: a few millionths of the area, not 0).
A second case, ``--n`` boxes of 0.2-2 km in EPSG:3832 around Fiji (some of them across ±180), times ours
alone (those across are unwrapped one by one): the reference is the wrong area there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_features import best  # noqa: E402  (best of repeated timings, as the other benchmarks)


def boxes(n, crs, x0, x1, y0, y1, seed=0):
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    x, y, s = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n), rng.uniform(200, 2000, n)
    return gpd.GeoSeries(shapely.box(x, y, x + s, y + s), crs=crs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[10000])
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    from geos2vec._coverage_layers import lnglat_union

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for n in a.n:
        gs = boxes(n, 32611, 300_000, 500_000, 3_700_000, 3_900_000)
        t_ours, t_ref, ours, ref = [], [], None, None
        for _ in range(a.repeat):  # alternating, so that a change of load hits both
            t, ours = best(lambda: lnglat_union(gs), 1)
            t_ours.append(t)
            t, ref = best(lambda: gs.to_crs(4326).union_all(), 1)
            t_ref.append(t)
        diff = ours.symmetric_difference(ref).area / ref.area
        print(f"UTM 11N, {n} boxes: ours {min(t_ours):.2f} s, to_crs(4326).union_all() {min(t_ref):.2f} s, "
              f"ratio {min(t_ours) / min(t_ref):.2f}x (all: {', '.join(f'{v:.2f}' for v in t_ours)} / "
              f"{', '.join(f'{v:.2f}' for v in t_ref)}); symmetric difference {diff:.1e} of the area; "
              f"load {os.getloadavg()[0]:.2f}")
        # EPSG:3832 is Mercator about 150 E: ±180 lies at x = 30 degrees of the equator, 3,339,584.7 m
        fiji = boxes(n, 3832, 3_189_585, 3_489_585, -2_000_000, -1_800_000)
        across = int(((fiji.bounds.minx < 3_339_584.7) & (fiji.bounds.maxx > 3_339_584.7)).sum())
        t, geom = best(lambda: lnglat_union(fiji), a.repeat)
        print(f"EPSG:3832 round Fiji, {n} boxes ({across} across ±180): ours {t:.2f} s, bounds "
              f"{tuple(round(float(v), 2) for v in geom.bounds)}; load {os.getloadavg()[0]:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
