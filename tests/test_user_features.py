"""A data scientist's own features: custom ontologies, extra columns, combined sources, coverage, normalization.

Each test checks the library against an independent reference (pandas groupby, NumPy) on real or small data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geos2vec import cells as C
from geos2vec.coverage import get_coverage
from geos2vec.errors import CoverageWarning
from geos2vec.features import combine_counts, count_features
from geos2vec.normalize import FeatureStats
from geos2vec.ontology import Ontology

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _la(n=300):
    pois = gpd.read_parquet(DATA / "pois" / "los_angeles.parquet").iloc[:n]
    return pd.DataFrame({"lon": pois.geometry.x.to_numpy(), "lat": pois.geometry.y.to_numpy(),
                         "fclass": pois["fclass"].to_numpy()})


def test_categorical_dtype_extra_channels_are_sorted_by_value_as_on_the_dask_path(shared_data):
    df = _la()
    k = np.arange(len(df))
    df["grade"] = pd.Categorical(np.where(k % 3 == 0, "b", np.where(k % 3 == 1, "a", "c")),
                                 categories=["c", "b", "a", "unused"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = count_features(df, extra=["grade"])
        plain = count_features(df.assign(grade=df["grade"].astype(str)), extra=["grade"])
    assert list(table.columns[-3:]) == ["grade=a", "grade=b", "grade=c"]  # "values sorted", as documented
    pd.testing.assert_frame_equal(table, plain)
    cells = C.latlng_to_cell(df["lat"].to_numpy(), df["lon"].to_numpy(), 12)
    ref = pd.crosstab(cells, df["grade"].astype(str))
    np.testing.assert_array_equal(table[["grade=a", "grade=b", "grade=c"]].to_numpy(),
                                  ref.loc[table.index.to_numpy(), ["a", "b", "c"]].to_numpy())
    dd = pytest.importorskip("dask.dataframe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lazy = count_features(dd.from_pandas(df, npartitions=3), extra=["grade"])
    assert list(lazy.columns) == list(table.columns)


def test_combine_counts_adds_boolean_columns_as_numbers():
    cells = C.latlng_to_cell(np.array([40.7, 40.8]), np.array([-74.0, -73.9]), 12)
    index = pd.Index(np.sort(cells), name="cell_id")
    a = pd.DataFrame({"has_station": [True, False]}, index=index)
    b = pd.DataFrame({"has_station": [True, True]}, index=index)
    out = combine_counts([a, b])
    ref = pd.concat([a, b]).groupby(level=0).sum()
    np.testing.assert_array_equal(out["has_station"].to_numpy(), ref["has_station"].to_numpy())  # [2, 1]
    assert out["has_station"].tolist() == [2, 1]


@pytest.mark.parametrize("columns", [[0, 1, 2], pd.MultiIndex.from_tuples([("poi", "a"), ("poi", "b"), ("road", "")])])
def test_feature_stats_transform_the_frame_it_was_fitted_on_whatever_its_column_labels(columns):
    x = np.random.default_rng(0).poisson(3.0, size=(50, 3)).astype(float)
    frame = pd.DataFrame(x, columns=columns, index=np.arange(50) * 7)
    stats = FeatureStats.fit(frame, log1p=True)
    z = stats.transform(frame)
    lx = np.log1p(x)
    ref = (lx - lx.mean(axis=0)) / lx.std(axis=0)
    np.testing.assert_allclose(z.to_numpy(), ref)
    assert list(z.columns) == list(frame.columns) and z.index.equals(frame.index)
    back = stats.inverse_transform(z)
    np.testing.assert_allclose(back.to_numpy(), x)
    assert list(back.columns) == list(frame.columns)


def test_ontology_from_channels_named_as_tags_counts_those_tags():
    df = pd.DataFrame({"lon": [9.52, 9.53, 9.54, 9.55], "lat": [47.14, 47.15, 47.16, 47.17],
                       "tag": ["amenity=cafe", "shop=bakery", "amenity=cafe", "amenity=bench"]})
    onto = Ontology.from_channels(["amenity=cafe", "shop=bakery"])
    assert onto.lookup(["amenity=cafe", "shop=bakery", "amenity=bench"]).tolist() == [0, 1, -1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = count_features(df, ontology=["amenity=cafe", "shop=bakery"], category_column="tag")
    ref = df["tag"].value_counts()
    assert table["amenity=cafe"].sum() == ref["amenity=cafe"] == 2
    assert table["shop=bakery"].sum() == ref["shop=bakery"] == 1
    assert table.attrs["report"]["dropped_categories"] == {"amenity=bench": 1}
    assert len(caught) == 1  # the bench, and only the bench, is reported


def test_source_tags_do_not_mark_counted_channels_of_another_column_missing(shared_data):
    from geos2vec.io import read_wof

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        venues = read_wof(DATA / "wof", states=["ri"])
    assert venues.attrs["source_tags"]  # tags of the osm_key/fclass columns
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = count_features(venues, ontology=["Restaurant", "Shopping"], category_column="sg_category",
                               key_column=None, coverage="infer")
    assert any(issubclass(w.category, CoverageWarning) and "source_tags" in str(w.message) for w in caught)
    ref = venues["sg_category"].value_counts()
    assert table["Restaurant"].sum() == ref["Restaurant"] > 0
    _, missing = get_coverage(table)
    assert set(missing) == {"road"}  # no roads given; the counted category channels are data, not missing
    # the declaration still applies to the column it describes
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)
        warnings.simplefilter("ignore", UserWarning)
        default = count_features(venues, coverage="infer")
    assert "pub" in get_coverage(default)[1] and "restaurant" not in get_coverage(default)[1]


def test_dask_counts_ignore_another_columns_source_tags_like_pandas(shared_data):
    """The dask path of ``count_features`` decides missing channels as the in-memory one does."""
    dask_geopandas = pytest.importorskip("dask_geopandas")
    from geos2vec.io import read_wof

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        venues = read_wof(DATA / "wof", states=["ri"])
        kwargs = dict(ontology=["Restaurant", "Shopping"], category_column="sg_category", key_column=None,
                      coverage="infer")
        ref = count_features(venues, **kwargs)
        parts = dask_geopandas.from_geopandas(venues, npartitions=3)
        got = count_features(parts, **kwargs)
    assert set(get_coverage(got)[1]) == set(get_coverage(ref)[1]) == {"road"}
    pd.testing.assert_frame_equal(got.sort_index(), ref.sort_index(), check_dtype=False)


def test_statistics_of_parts_merge_to_those_of_their_sum(shared_data):
    """docs/features.md: ``FeatureStats`` of parts merge to those of ``combine_counts`` of the parts. Rows of a
    part whose cell centre lies outside its coverage lost their channels' availability in the sum (``post_box``
    counted 66 values in the parts, 59 in the sum)."""
    pytest.importorskip("osmium")
    from geos2vec.features import combine_counts
    from geos2vec.io import read_osm, read_wof
    from geos2vec.normalize import FeatureStats

    pbf = shared_data / "osm" / "liechtenstein-latest.osm.pbf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ri = count_features(read_wof(DATA / "wof", states=["ri"]), coverage="infer")
        li = count_features(*read_osm(pbf), coverage=str(pbf))
        both = combine_counts([ri, li])
    merged = FeatureStats.fit(ri).merge(FeatureStats.fit(li))
    whole = FeatureStats.fit(both)
    assert merged.channels == whole.channels
    np.testing.assert_array_equal(merged.count, whole.count)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(merged.var, whole.var, rtol=1e-9, atol=1e-15)
