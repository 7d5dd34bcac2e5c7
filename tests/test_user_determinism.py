"""A researcher reproducing a paper's numbers: the same inputs give the same outputs, bit for bit.

Row permutations, index types, hash seeds of a fresh process, thread counts and seeds: none of them may change
a table, a report, a split or a score. Every case asserts values computed another way (pandas, by hand).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec
from geos2vec.errors import Geos2VecWarning


def _points(lng, lat, **cols):
    return gpd.GeoDataFrame(cols, geometry=gpd.points_from_xy(lng, lat), crs=4326)


def _count(pois, roads):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = geos2vec.count_features(pois, roads)
    messages = [str(w.message) for w in caught if issubclass(w.category, Geos2VecWarning)]
    return table, messages


def test_dropped_values_of_equal_count_are_listed_by_value_whatever_the_row_order():
    """Unknown categories and non-road highway values that occur equally often are ranked by value.

    Before, ties kept the order in which the values first appeared in the rows (``pd.factorize`` /
    ``value_counts``), so a shuffled input gave another ``dropped_categories`` order and a warning naming other
    values among its first five: the report of a paper's run could not be reproduced from a re-exported file.
    """
    unknown = ["zz_top", "yurt", "b_side", "a_side", "m_mid", "q_que", "c_c"]  # once each, outside the ontology
    fclass = unknown + ["restaurant"] * 3 + ["double", "double"]
    n = len(fclass)
    lng = -118.30 + 0.001 * np.arange(n)
    pois = _points(lng, np.full(n, 34.05), fclass=fclass)
    hw = ["proposed", "abandoned", "corridor", "construction", "residential", "residential"]
    roads = gpd.GeoDataFrame(
        {"highway": hw},
        geometry=[shapely.LineString([(-118.3 + 0.01 * i, 34.0), (-118.3 + 0.01 * i, 34.01)]) for i in range(len(hw))],
        crs=4326)
    expected_cats = {"double": 2, "a_side": 1, "b_side": 1, "c_c": 1, "m_mid": 1, "q_que": 1, "yurt": 1, "zz_top": 1}
    expected_roads = {"abandoned": 1, "construction": 1, "corridor": 1, "proposed": 1}
    reports, warned = [], []
    for order in (np.arange(n), np.arange(n)[::-1], np.random.default_rng(3).permutation(n)):
        table, messages = _count(pois.iloc[order], roads.iloc[order[order < len(hw)]])
        reports.append(table.attrs["report"])
        warned.append(messages)
        assert list(table.attrs["report"]["dropped_categories"].items()) == list(expected_cats.items())
        assert list(table.attrs["report"]["dropped_roads"].items()) == list(expected_roads.items())
    assert warned[0] == warned[1] == warned[2] and any("'double', 2" in m and "'a_side', 1" in m for m in warned[0])
    # the dask path merges its partitions' reports the same way
    from geos2vec._partition_counts import _merge_reports

    halves = [_count(pois.iloc[s], roads.iloc[s])[0].attrs["report"] for s in (slice(0, 6), slice(6, None))]
    merged = _merge_reports(halves[::-1])
    assert list(merged["dropped_categories"].items()) == list(expected_cats.items())


@pytest.fixture(scope="module")
def la_table():
    pois, roads = geos2vec.demo.load_sample()
    return _count(pois, roads)[0]


def test_feature_stats_of_a_shuffled_table_are_the_same_bits(la_table):
    """``FeatureStats.fit`` sums the rows in cell-id order, so a table in another row order gives identical stats.

    Before, the rows' order changed ``m2`` by float round-off (5.8e-11 on the Los Angeles sample), so a table
    re-read from a file sorted otherwise normalized a model's inputs with other numbers.
    """
    from geos2vec import FeatureStats

    ref = FeatureStats.fit(la_table)
    np.testing.assert_allclose(ref.mean, la_table.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ref.m2, la_table.var(ddof=0).to_numpy() * len(la_table), rtol=1e-9, atol=1e-9)
    for seed in range(3):
        shuffled = la_table.iloc[np.random.default_rng(seed).permutation(len(la_table))]
        got = FeatureStats.fit(shuffled)
        assert got.count == ref.count and got.channels == ref.channels
        np.testing.assert_array_equal(got.mean, ref.mean)
        np.testing.assert_array_equal(got.m2, ref.m2)
    # a plain RangeIndex table of the same rows: its own order is kept (no cells to sort by), and it is unchanged
    np.testing.assert_array_equal(FeatureStats.fit(la_table.reset_index(drop=True)).m2, ref.m2)



def test_sum_and_mean_extras_do_not_follow_the_row_order():
    """``extra={"price": "sum"}`` added each cell's values in the rows' order: shuffled POIs moved sums by ~1e-13.

    Now a cell's values are added in order of value, so any row order gives the same bits (and ``mean`` too).
    """
    from geos2vec.cells import latlng_to_cell

    pois, _ = geos2vec.demo.load_sample()
    rng = np.random.default_rng(0)
    pois = pois.assign(price=rng.random(len(pois)) * 10.0)
    pois.loc[pois.index[::17], "price"] = np.nan
    cells = latlng_to_cell(pois.geometry.y.to_numpy(), pois.geometry.x.to_numpy(), 12)
    by_cell = pois["price"].groupby(cells)
    for how, ref in (("sum", by_cell.sum()), ("mean", by_cell.mean())):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Geos2VecWarning)  # the sample's few unknown categories
            tables = [geos2vec.count_features(pois.iloc[order], extra={"price": how}) for order in
                      (np.arange(len(pois)), np.arange(len(pois))[::-1], rng.permutation(len(pois)))]
        got = tables[0]["price"]
        np.testing.assert_allclose(got.to_numpy(), ref.reindex(got.index.to_numpy()).to_numpy(), rtol=1e-12)
        for other in tables[1:]:
            np.testing.assert_array_equal(other["price"].to_numpy(), got.to_numpy())



def test_combine_counts_gives_the_same_float_sums_in_any_table_order():
    """``combine_counts`` added the tables' float channels in the tables' order (``np.add.at``).

    ``geos2vec features c.pbf a.pbf b.pbf`` and the same files in another order gave ``sum`` extras ~6e-14 apart.
    """
    import itertools

    from geos2vec.features import combine_counts

    pois, _ = geos2vec.demo.load_sample()
    pois = pois.assign(price=np.random.default_rng(0).random(len(pois)) * 10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Geos2VecWarning)
        whole = geos2vec.count_features(pois, extra={"price": "sum"})
        parts = [geos2vec.count_features(pois.iloc[i::3], extra={"price": "sum"}) for i in range(3)]
    combined = [combine_counts(list(order)) for order in itertools.permutations(parts)]
    for c in combined:
        assert c.index.equals(whole.index) and c.drop(columns="price").equals(whole.drop(columns="price"))
        np.testing.assert_allclose(c["price"].to_numpy(), whole["price"].to_numpy(), rtol=1e-12)
        np.testing.assert_array_equal(c["price"].to_numpy(), combined[0]["price"].to_numpy())



def test_feature_stats_of_images_in_another_order_are_the_same_bits(la_table):
    """``FeatureStats.fit(images)`` summed the pixels in the images' order: images concatenated in another order
    (two regions, shards of a store, shuffled windows) gave ``m2`` up to 3e-10 apart. Pixels are now taken in
    cell-id order, so the images' order does not matter, and the images give the bits of their table.
    """
    from geos2vec import FeatureStats
    from geos2vec.raster import windows

    images = geos2vec.rasterize(la_table, image_level=10)
    ref = FeatureStats.fit(la_table)
    for da in (images, windows(geos2vec.rasterize(la_table), size=8)):
        dim = da.dims[0]
        base = FeatureStats.fit(da)
        for seed in range(3):
            got = FeatureStats.fit(da.isel({dim: np.random.default_rng(seed).permutation(da.sizes[dim])}))
            np.testing.assert_array_equal(got.mean, base.mean)
            np.testing.assert_array_equal(got.m2, base.m2)
    got = FeatureStats.fit(images)
    assert got.count == ref.count == len(la_table)
    np.testing.assert_array_equal(got.mean, ref.mean)
    np.testing.assert_array_equal(got.m2, ref.m2)



def test_a_model_zip_holds_no_time_of_its_save(tmp_path):
    """``model.save("m.zip")`` dated each entry with its file's time of writing: two saves of the same model (two
    seconds apart) were different files, with different checksums to publish. Entries are now dated 1980-01-01,
    so the zip depends on the files alone (which a compact save writes the same every time).
    """
    import zipfile

    model = geos2vec.load_model("default")
    model.save(tmp_path / "a.zip", compact=True)
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        infos = zf.infolist()
        assert sorted(i.filename for i in infos) == ["config.json", "feature_stats.json", "metadata.json",
                                                     "weights.npz"]
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}  # nothing of the time of the save
        assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}  # nor of the umask
    again = geos2vec.load_model(tmp_path / "a.zip")
    assert again.channels == model.channels and np.array_equal(again.stats.m2, model.stats.m2)



def test_read_wof_ranks_ties_by_place_and_label_whatever_the_file_order(tmp_path):
    """``wof_report["stacks"]["largest"]`` and ``["top_unmapped"]`` ranked equal counts in the order the files (and
    their category values) came in: ``read_wof([a, b])`` and ``read_wof([b, a])`` reported another top five stacks
    and another order of unmapped categories, for the same venues dropped alike. Ties now go by place and label.
    """
    from geos2vec.io import read_wof

    def write(state, stacks, unmapped):
        rows = [(lon, lat, "Food & Drink", "Restaurant", None) for lon, lat in stacks for _ in range(3)]
        rows += [(-71.0 - 0.01 * k, 41.0, *cats) for k, cats in enumerate(unmapped * 2)]
        df = pd.DataFrame([{"name": f"{state}{i}", "lon": lon, "lat": lat, "sg_type": typ, "sg_category": cat,
                            "sg_subcategory": sub, "tags": None, "mz_categories": None, "is_current": 1.0}
                           for i, (lon, lat, typ, cat, sub) in enumerate(rows)])
        df.insert(0, "wof_id", np.arange(len(df), dtype=np.int64) + (1000 if state == "ri" else 5000))
        df["sg_type"] = df["sg_type"].astype("category")
        df.to_parquet(tmp_path / f"us-{state}.parquet")
        return tmp_path / f"us-{state}.parquet"

    # three stacks of 3 venues in each state, at places that interleave in longitude; 2 unmapped venues each
    lawyer, beer = ("Services", "Professional", "Lawyer & Legal Services"), ("Manufacturing & Wholesale Goods",
                                                                           "Wholesale", "Beer")
    ri = write("ri", [(-71.5, 41.7), (-71.1, 41.6), (-71.3, 41.9)], [lawyer])
    de = write("de", [(-71.4, 41.5), (-71.2, 41.8), (-71.6, 41.4)], [beer])
    reports = []
    for files in ([ri, de], [de, ri]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = read_wof(files, min_stack=3).attrs["wof_report"]
        reports.append((report["stacks"], list(report["top_unmapped"].items())))
    largest = [{"lon": lon, "lat": lat, "n_venues": 3} for lon, lat in
               [(-71.6, 41.4), (-71.5, 41.7), (-71.4, 41.5), (-71.3, 41.9), (-71.2, 41.8)]]  # by longitude
    unmapped = [(" / ".join(beer), 2), (" / ".join(lawyer), 2)]  # by label
    assert reports[0] == reports[1] == ({"n_locations": 6, "largest": largest}, unmapped)

_HASHED_SCRIPT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
from geos2vec import FeatureStats, evaluate as ev
from geos2vec.coverage import set_coverage
from geos2vec.ontology import Ontology
chans = {"restaurant", "cafe", "bar", "school", "bank", "pharmacy"}
out = {}
for name, call in (("from_channels", lambda: Ontology.from_channels(chans).channels),
                   ("stats", lambda: FeatureStats.fit(pd.DataFrame(np.eye(6), columns=sorted(chans)),
                                                      channels=chans).channels)):
    try:
        out[name] = call()
    except TypeError as exc:
        out[name] = [type(exc).__name__, "sorted(channels)" in str(exc)]
out["states"] = ev.load_task("zcta:per_capita_income", sys.argv[1], states={"ks", "IA", "de", "ri"}).features
t = pd.DataFrame(0, index=pd.Index([], dtype="uint64", name="cell_id"),
                 columns=["road", "cafe", "bar", "bank", "school", "zoo"])
set_coverage(t, (-119, 33, -117, 35), missing_channels={"road", "zoo", "bar", "cafe", "bank"})
out["missing_channels"] = list(t.attrs["coverage"]["channels"])
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def hashed(shared_data):
    """The script's output in a fresh process whose hash seed (1) makes the sets below iterate unsorted."""
    import json
    import os
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _HASHED_SCRIPT, str(shared_data)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONHASHSEED": "1"})
    return [json.loads(run.stdout.strip().splitlines()[-1])]


def test_a_set_of_channels_or_states_gives_the_same_result_in_every_process(hashed):
    """A set of strings iterates in an order salted per process (``PYTHONHASHSEED``).

    Before, ``Ontology.from_channels(set)`` and ``FeatureStats.fit(table, channels=set)`` took that order as the
    channels' order (the feature table's columns, the model's inputs), and ``load_task(..., states=set)`` as the
    order of ``task.features`` (``"wof:ia,de,ri,ks"`` in one process, ``"wof:ks,ri,ia,de"`` in the next). Channel
    sets are refused now (their order matters: pass a list); states are sorted.
    """
    for out in hashed:
        assert {k: out[k] for k in ("from_channels", "stats", "states")} == {
            "from_channels": ["InvalidTypeError", True], "stats": ["InvalidTypeError", True],
            "states": "wof:de,ia,ks,ri"}
    from geos2vec import FeatureStats
    from geos2vec.ontology import Ontology

    assert Ontology.from_channels(["cafe", "bar"]).channels == ["cafe", "bar"]   # lists keep their order
    assert Ontology.from_channels({"cafe": 1, "bar": 2}.keys()).channels == ["cafe", "bar"]  # ordered views too
    table = pd.DataFrame({"a": [1.0, 3.0], "b": [2.0, 6.0]})
    stats = FeatureStats.fit(table, channels=["b", "a"])
    assert stats.channels == ["b", "a"] and stats.mean.tolist() == [4.0, 2.0]


def test_set_coverage_records_a_set_of_missing_channels_in_one_order(hashed):
    """``set_coverage(..., missing_channels=set)`` wrote ``attrs["coverage"]["channels"]`` in the set's order.

    That order follows ``PYTHONHASHSEED``, so the same table saved to Parquet had other metadata bytes in every run.
    """
    assert [out["missing_channels"] for out in hashed] == [["bank", "bar", "cafe", "road", "zoo"]]
    from geos2vec.coverage import set_coverage

    t = pd.DataFrame(0, index=pd.Index([], dtype="uint64", name="cell_id"), columns=["road", "cafe", "bar"])
    assert list(set_coverage(t, (-119, 33, -117, 35), missing_channels=["road", "bar"]).attrs["coverage"]["channels"]) \
        == ["road", "bar"]  # a list keeps its order
