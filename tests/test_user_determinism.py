"""A researcher reproducing a paper's numbers: the same inputs give the same outputs, bit for bit.

Row permutations, index types, hash seeds of a fresh process, thread counts and seeds: none of them may change
a table, a report, a split or a score. Every case asserts values computed another way (pandas, by hand).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
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

