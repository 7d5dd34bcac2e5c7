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
