"""A user with big inputs on a laptop: peak memory of each stage (tracemalloc: NumPy and pandas buffers).

Each test measures one stage at a modest size against the bytes of its input or result, with a bound the code
before the fix exceeded; the values themselves are checked against a reference (pandas, the formula).
benchmarks/RESULTS.md ("Memory of each stage on big inputs") has the measurements at full size.
"""

from __future__ import annotations

import gc
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest


def traced_peak(fn):
    """``(result, peak traced bytes above those traced before the call)``."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return out, peak


@pytest.fixture(scope="module")
def la_model():
    """The bundled sample's feature table and the bundled model (loaded once for the embedding tests)."""
    import geos2vec
    from geos2vec.demo import load_sample
    from geos2vec.features import count_features

    pois, roads = load_sample()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return count_features(pois, roads), geos2vec.load_model("default")


@pytest.fixture(scope="module")
def tagged_pois():
    """200,000 POIs with an OSM key column (as read_osm and read_wof give them), in a few cells."""
    n = 200_000
    rng = np.random.default_rng(0)
    values = np.array(["restaurant", "cafe", "bench", "school", "pharmacy", "bank", "fuel", " parking", "nope"],
                      dtype=object)
    keys = np.array(["amenity", "amenity", "", None], dtype=object)
    return pd.DataFrame({"lon": rng.uniform(-74, -73.9, n), "lat": rng.uniform(40.7, 40.8, n),
                         "osm_key": keys[rng.integers(0, keys.size, n)],
                         "fclass": values[rng.integers(0, values.size, n)]})


def test_count_features_with_a_key_column_builds_no_string_per_row(tagged_pois):
    """``key=value`` was built per row (a Python string each): 290 bytes a POI, 0.5 GB for 1.9 M venues."""
    from geos2vec.features import count_features

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dropped "nope" values
        count_features(tagged_pois.iloc[:100])  # kernels loaded
        table, peak = traced_peak(lambda: count_features(tagged_pois))
    n = len(tagged_pois)
    assert peak / n < 150, f"{peak / n:.0f} bytes per POI"
    # the counts against pandas: a key (amenity) tags its value, no key leaves the bare value
    key = tagged_pois["osm_key"].fillna("").str.strip()
    tag = np.where(key != "", key + "=" + tagged_pois["fclass"].str.strip(), tagged_pois["fclass"].str.strip())
    rep = table.attrs["report"]
    assert rep["n_pois"] == n
    assert rep["dropped_categories"] == {"amenity=nope": int((tag == "amenity=nope").sum()),
                                         "nope": int((tag == "nope").sum())}
    expected = pd.Series(tag).value_counts()
    for channel, tags in (("restaurant", ["amenity=restaurant", "restaurant"]), ("cafe", ["amenity=cafe", "cafe"]),
                          ("bench", ["amenity=bench", "bench"])):
        assert table[channel].sum() == sum(int(expected.get(t, 0)) for t in tags)


def test_feature_stats_transform_makes_no_float64_copy_of_float32_images():
    """float32 images were scaled through a float64 copy of them all, then cast again: 4x their bytes."""
    from geos2vec import FeatureStats

    rng = np.random.default_rng(1)
    images = rng.poisson(0.8, (640, 16, 16, 24)).astype(np.float32)
    stats = FeatureStats.fit(images[:20], log1p=True)
    out, peak = traced_peak(lambda: stats.transform(images))
    assert out.dtype == np.float32
    assert peak < 1.5 * images.nbytes, f"{peak / images.nbytes:.2f}x the images"
    ref = ((np.log1p(images) - stats.mean) / stats.std).astype(np.float32)  # log1p in float32, then float64
    np.testing.assert_array_equal(out, ref)


def test_feature_stats_transform_of_a_table_copies_it_once():
    """A table came back through three full float64 copies (the values, the result, pandas' copy of it)."""
    from geos2vec import FeatureStats

    rng = np.random.default_rng(2)
    table = pd.DataFrame(rng.poisson(0.5, (100_000, 30)), columns=[f"c{k}" for k in range(30)])
    stats = FeatureStats.fit(table, log1p=True)
    out, peak = traced_peak(lambda: stats.transform(table))
    one = table.size * 8  # one float64 copy
    assert peak < 2.4 * one, f"{peak / one:.2f} float64 copies"
    values = table.to_numpy(np.float64)
    ref = (np.log1p(values) - stats.mean) / stats.std
    np.testing.assert_array_equal(out.to_numpy(), ref)
    assert out.index.equals(table.index) and list(out.columns) == list(table.columns)


def test_combine_counts_copies_the_tables_once():
    """The sum went through pandas 3's copy of it in the DataFrame constructor (3x the tables' bytes), and came
    back as one block per column."""
    from geos2vec import latlng_to_cell
    from geos2vec.features import combine_counts

    rng = np.random.default_rng(3)
    cells = np.unique(latlng_to_cell(rng.uniform(30, 45, 80_000), rng.uniform(-110, -80, 80_000), 12))
    cols = pd.Index([f"c{k}" for k in range(40)], name="feature")
    tables = []
    for part in np.array_split(rng.permutation(cells), 4):  # parts of a country (states): cells in one part each
        part = np.sort(part)
        t = pd.DataFrame(rng.poisson(0.4, (part.size, cols.size)), pd.Index(part, name="cell_id"), cols)
        t.attrs["report"] = {"non_additive": []}
        tables.append(t)
    out, peak = traced_peak(lambda: combine_counts(tables))
    size = sum(t.to_numpy().nbytes for t in tables)
    assert peak < 2.5 * size, f"{peak / size:.2f}x the tables"
    ref = pd.concat(tables).groupby(level=0).sum()
    pd.testing.assert_frame_equal(out, ref, check_names=False)
    assert out.index.name == "cell_id" and out._mgr.nblocks == 1


def test_read_wof_of_one_small_state_allocates_no_fixed_128_mib(shared_data):
    """The stack finder counted venues in 2^24 hash buckets (int64: 128 MiB) for any input, 55 k venues too."""
    from geos2vec.io import read_wof

    path = shared_data / "wof" / "us-ri.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what was dropped
        venues, peak = traced_peak(lambda: read_wof(path))
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB"
    raw = pd.read_parquet(path, columns=["lon", "lat", "is_current"])
    at = raw.groupby(["lon", "lat"]).size()
    stacks = at[at >= 50]
    report = venues.attrs["wof_report"]
    assert report["n_read"] == len(raw)
    assert report["stacks"]["n_locations"] == len(stacks)
    assert report["dropped"]["stacked"] == int(stacks.sum())
    assert report["stacks"]["largest"][0]["n_venues"] == int(stacks.max())


def test_evaluate_tables_are_checked_without_three_float64_copies():
    """An embedding table was checked (float64 copy, another for the finiteness test) and handed back through a
    third copy in pandas 3's DataFrame constructor: 3x a float64 copy of float32 embeddings."""
    from geos2vec import latlng_to_cell
    from geos2vec.evaluate.baselines import random_projection

    rng = np.random.default_rng(4)
    cells = np.unique(latlng_to_cell(rng.uniform(30, 45, 60_000), rng.uniform(-110, -80, 60_000), 14))[:50_000]
    cols = [f"s2vec_{k:03d}" for k in range(128)]
    emb = pd.DataFrame(rng.standard_normal((cells.size, len(cols))).astype(np.float32),
                       pd.Index(cells, name="cell_id"), cols)
    out, peak = traced_peak(lambda: random_projection(emb, 8, seed=1))
    one = emb.size * 8  # one float64 copy
    assert peak < 1.6 * one, f"{peak / one:.2f} float64 copies"
    g = np.random.default_rng(1).standard_normal((len(cols), 8))
    np.testing.assert_allclose(out.to_numpy(), emb.to_numpy(np.float64) @ g / np.sqrt(8), rtol=1e-12, atol=1e-12)
    assert list(out.columns) == [f"rp{k}" for k in range(8)] and out.index.equals(emb.index)


def test_standardize_holds_one_result_sized_array():
    """The probes' standardization held the centred copy, then divided it into a second one: 2.2x the input."""
    from geos2vec.evaluate.probes import standardize

    rng = np.random.default_rng(6)
    x = rng.standard_normal((40_000, 64)) * 3 + 1
    x[:, 7] = 5.0  # constant on the training rows: becomes 0
    train = np.arange(0, 40_000, 2)
    z, peak = traced_peak(lambda: standardize(x, train))
    assert peak < 1.5 * x.nbytes, f"{peak / x.nbytes:.2f}x the input"
    ref = pd.DataFrame(x)
    mu, sd = ref.iloc[train].mean(), ref.iloc[train].std(ddof=0)
    expected = ((ref - mu) / sd.where(sd > 0, 1.0)).clip(-4, 4).fillna(0.0).to_numpy(copy=True)
    expected[:, 7] = 0.0
    np.testing.assert_allclose(z, expected, rtol=1e-12, atol=1e-12)


def test_embed_cells_result_is_not_copied_by_pandas(la_model):
    """The NaN-filled result frame was built through pandas 3's copy of it: 2.0x the result at its peak (any mode;
    patch mode here, the quickest encoder)."""
    import geos2vec

    table, model = la_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(7)
        far = geos2vec.latlng_to_cell(rng.uniform(30, 45, 60_000), rng.uniform(-110, -80, 60_000), 12)
        cells = np.unique(np.concatenate([far, table.index.to_numpy()]))
        out, peak = traced_peak(lambda: geos2vec.embed_cells(cells, table, model=model, mode="patch", progress=False))
        some = table.index.to_numpy()[::10]
        alone = geos2vec.embed_cells(some, table, model=model, mode="patch", progress=False)
    size = out.to_numpy().nbytes
    assert peak < 1.6 * size, f"{peak / size:.2f}x the result"
    known = np.isin(cells, table.index.to_numpy())
    assert (out.notna().all(axis=1).to_numpy() == known).all()  # cells without features: NaN
    np.testing.assert_array_equal(out.loc[some].to_numpy(), alone.to_numpy())


def test_to_frame_holds_two_copies_of_the_table_not_three():
    """The observed pixels' values were concatenated (a copy of the only part), then sorted (another) while the
    parts were still held: 3x the table."""
    import geos2vec
    from geos2vec import raster

    rng = np.random.default_rng(8)
    top = geos2vec.latlng_to_cell(40.7, -74.0, 4)
    images = geos2vec.cell_to_children(top, 8).ravel()
    cells = np.sort(rng.choice(geos2vec.cell_to_children(images, 12).ravel(), 30_000, replace=False))
    table = pd.DataFrame(rng.poisson(0.4, (cells.size, 116)).astype(np.int32), pd.Index(cells, name="cell_id"),
                         pd.Index([f"c{k}" for k in range(116)], name="feature"))
    da = raster.rasterize(table)
    out, peak = traced_peak(lambda: raster.to_frame(da))
    size = table.to_numpy().nbytes
    assert peak < 2.5 * size, f"{peak / size:.2f}x the table"
    pd.testing.assert_frame_equal(out, table)  # the round trip, bit for bit


def test_embed_of_polygons_averages_in_blocks_of_rows(la_model):
    """The weighted mean over the cells of each polygon made (pairs x dim) float32 and float64 copies of every
    (polygon, cell) pair's vector at once: a few GB for 20,000 large polygons."""
    import geopandas as gpd
    import shapely

    import geos2vec

    table, model = la_model
    rng = np.random.default_rng(9)
    x0, y0 = rng.uniform(-118.55, -118.25, 300), rng.uniform(34.0, 34.15, 300)
    polys = gpd.GeoDataFrame({"id": np.arange(300)}, geometry=shapely.box(x0, y0, x0 + 0.3, y0 + 0.2), crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        polys.iloc[:2].s2vec.embed(features=table, model=model, mode="patch", progress=False)
        out, peak = traced_peak(lambda: polys.s2vec.embed(features=table, model=model, mode="patch", progress=False))
        row, cell, weight = geos2vec.embedding.row_cells(polys.geometry, 12)
        vec = geos2vec.embed_cells(np.unique(cell), table, model=model, mode="patch", progress=False)
    pairs = row.size * model.embedding_dim * 8  # one float64 copy of every pair's vector
    assert peak < 1.5 * pairs, f"{peak / pairs:.2f}x the pairs' float64 vectors"
    v = vec.reindex(cell).to_numpy(np.float64)
    w = np.where(np.isnan(v[:, 0]), 0.0, weight)
    ref = pd.DataFrame(np.nan_to_num(v) * w[:, None]).groupby(row).sum().to_numpy() / np.bincount(row, w)[:, None]
    emb = out.filter(like="s2vec_").to_numpy()
    np.testing.assert_allclose(emb, ref, rtol=1e-5, atol=1e-6)
