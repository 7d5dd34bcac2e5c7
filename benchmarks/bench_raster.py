"""Benchmark: rasterize 10^6 level-12 cells x 116 channels into level-8 images.

Compares :func:`geos2vec.raster.rasterize` with a straightforward pandas
reference (reindex the table on every pixel cell of every image, then reshape)
in one run, and prints time and peak memory ratios. Peak memory is the peak of
traced allocations (``tracemalloc``; NumPy and pandas report their buffers to
it) above what was allocated before the call, so the input table is not
counted; it is compared with one copy of the output array (``out.nbytes``).

Synthetic data (a benchmark of speed, not of quality): a block of level-8
images around New York, each with a random subset of its 256 level-12 children
observed, Poisson counts as in POI histograms.

    python benchmarks/bench_raster.py                 # 10^6 cells x 116 channels, int32
    python benchmarks/bench_raster.py --cells 100000  # quicker
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np
import pandas as pd

from geos2vec import cells as C
from geos2vec import raster as R


def synthetic_table(n_cells: int, n_channels: int, occupancy: float, dtype, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_images = int(np.ceil(n_cells / (256 * occupancy)))
    # a square block of level-8 images: children of enough level-k ancestors around NYC
    anc_level = 8
    while 4 ** (8 - anc_level) < n_images:
        anc_level -= 1
    anc = C.latlng_to_cell(40.75, -73.98, anc_level)
    imgs = C.cell_to_children(anc, 8).ravel()[:n_images]
    kids = C.cell_to_children(imgs, 12).ravel()
    cells = np.sort(rng.choice(kids, n_cells, replace=False))
    vals = rng.poisson(0.3, size=(n_cells, n_channels)).astype(dtype)
    names = [f"poi_{k}" for k in range(n_channels - 1)] + ["road"]
    return pd.DataFrame(vals, index=pd.Index(cells, name="cell_id"), columns=names)


def pandas_reference(features: pd.DataFrame, image_level: int = 8, fill=0):
    """Reindex on all pixel cells (in rasterize's order), reshape to (image, row, col, feature)."""
    cells = features.index.to_numpy()
    imgs = np.unique(C.cell_to_parent(cells, image_level))
    n = 1 << (int(C.get_level(cells[:1])[0]) - image_level)
    r, c = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    pix = C.rowcol_to_cell(imgs[:, None, None], r[None], c[None], image_level + 4)
    full = features.reindex(pix.ravel(), fill_value=fill)
    return full.to_numpy().reshape(imgs.size, n, n, features.shape[1])


def measure(fn, *args, **kwargs):
    gc.collect()
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - t0
    del out
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    out = fn(*args, **kwargs)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return out, seconds, peak


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--channels", type=int, default=116)
    ap.add_argument("--occupancy", type=float, default=0.5, help="observed fraction of pixels per image")
    ap.add_argument("--dtype", default="int32")
    args = ap.parse_args(argv)

    t = synthetic_table(args.cells, args.channels, args.occupancy, np.dtype(args.dtype))
    R.rasterize(t.iloc[:1000])  # compile numba kernels outside the timings
    print(f"input: {len(t):,} cells x {t.shape[1]} channels ({args.dtype}), {t.memory_usage().sum() / 2**20:,.0f} MiB")

    da, s_ours, peak_ours = measure(R.rasterize, t)
    out_bytes = da.nbytes
    coords = sum(da[c].nbytes for c in ("cell_id", "observed", "image"))
    print(f"output: {da.sizes['image']:,} images {dict(da.sizes)}, data {out_bytes / 2**20:,.0f} MiB "
          f"(+ coords {coords / 2**20:,.1f} MiB)")
    ref, s_ref, peak_ref = measure(pandas_reference, t)
    assert np.array_equal(ref, da.values), "rasterize differs from the pandas reference"
    del ref
    back = R.to_frame(da)
    exact = back.equals(t.sort_index())
    t0 = time.perf_counter()
    R.to_frame(da)
    s_back = time.perf_counter() - t0
    print(f"{'':28s}{'seconds':>10s}{'peak MiB':>12s}{'peak / output':>15s}")
    for name, s, p in (("geos2vec.raster.rasterize", s_ours, peak_ours), ("pandas reindex reference", s_ref, peak_ref)):
        print(f"{name:28s}{s:10.2f}{p / 2**20:12,.0f}{p / out_bytes:15.2f}")
    print(f"speed-up vs pandas: {s_ref / s_ours:.1f}x; peak memory ratio pandas/ours: {peak_ref / peak_ours:.2f}")
    print(f"to_frame: {s_back:.2f} s; round trip bit-exact: {exact}")
    del da, back

    # streaming: lazy chunks of 256 images written to zarr, never the whole array in memory
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        def stream():
            R.to_zarr(R.rasterize(t, chunks=256), f"{tmp}/r.zarr")

        _, s_zarr, peak_zarr = measure(stream)
        same = np.array_equal(R.open_zarr(f"{tmp}/r.zarr").values, pandas_reference(t))
    print(f"rasterize(chunks=256) -> to_zarr: {s_zarr:.2f} s, peak {peak_zarr / 2**20:,.0f} MiB "
          f"({peak_zarr / out_bytes:.2f} x output); equal to the reference: {same}")


if __name__ == "__main__":
    main()
