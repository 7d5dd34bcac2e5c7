"""Data from other tools (dask, polars, pyarrow-backed pandas, GeoParquet writers) through geos2vec's public API,
checked against the plain pandas result."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import geos2vec
from geos2vec.features import count_features


@pytest.fixture(scope="module")
def sample():
    pois, roads = geos2vec.demo.load_sample()
    rng = np.random.default_rng(0)
    pois = pois.assign(cuisine=rng.choice(["pizza", "coffee", "thai"], len(pois)),
                       seats=rng.integers(0, 50, len(pois)))
    return pois, roads


@pytest.fixture(scope="module")
def plain_table(sample):
    return _quiet(count_features, *sample)


def _quiet(f, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*a, **k)


@pytest.mark.parametrize("dask_side", ["pois", "roads"])
def test_dask_extra_columns_with_roads(sample, plain_table, dask_side):
    """``extra=`` next to roads on the dask path: the roads have no extra column (was "extra column 'cuisine' is
    not a column of pois", as every road partition was counted with ``extra`` too)."""
    dgpd = pytest.importorskip("dask_geopandas")
    dask = pytest.importorskip("dask")
    pois, roads = sample
    extra = {"cuisine": "categories", "seats": "sum"}
    p = dgpd.from_geopandas(pois, npartitions=3) if dask_side in ("pois", "both") else pois
    r = dgpd.from_geopandas(roads, npartitions=4) if dask_side in ("roads", "both") else roads
    with dask.config.set(scheduler="sync"):
        got = _quiet(count_features, p, r, extra=extra)
    # reference: plain pandas for the extras, the in-memory table without extras for the rest
    cells = geos2vec.latlng_to_cell(pois.geometry.y.to_numpy(), pois.geometry.x.to_numpy(), 12)
    plain = plain_table
    assert got.index.equals(plain.index)
    pd.testing.assert_frame_equal(got[plain.columns], plain, check_names=False)
    cross = pd.crosstab(cells, pois["cuisine"]).reindex(got.index, fill_value=0)
    for value in ["coffee", "pizza", "thai"]:
        np.testing.assert_array_equal(got[f"cuisine={value}"].to_numpy(), cross[value].to_numpy())
    seats = pois.groupby(cells)["seats"].sum().reindex(got.index, fill_value=0)
    np.testing.assert_array_equal(got["seats"].to_numpy(), seats.to_numpy(dtype=float))
    assert list(got.columns) == list(_quiet(count_features, pois, roads, extra=extra).columns)  # in-memory order


@pytest.mark.parametrize("reshape", ["reordered", "transposed"])
def test_feature_stats_transform_reads_dataarray_channels_by_name(plain_table, reshape):
    """``FeatureStats.transform`` of a DataArray after ``sel``/``transpose``: each channel with its own statistics
    (was by position: a reordered ``da.sel(feature=[...])`` was scaled with other channels' mean and std, silently;
    ``feature`` not last raised)."""
    table = plain_table
    stats = geos2vec.FeatureStats.fit(table)
    da = geos2vec.rasterize(table)
    names = list(da["feature"].values)
    moved = da.sel(feature=names[::-1]) if reshape == "reordered" else da.transpose("feature", "image", "row", "col")
    got = stats.transform(moved)  # a DataArray in moved's dims, the channels in their fitted order (by name)
    assert got.dims == moved.dims and list(got["feature"].values) == list(table.columns)
    got = got.transpose(*da.dims).values
    # reference: pandas mean / population std of each table column, applied to that channel's pixels by name
    want = np.stack([(da.sel(feature=c).values - table[c].mean()) / (table[c].std(ddof=0) or 1.0)  # constant: 1
                     for c in table.columns], axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    back = xr.DataArray(want, dims=da.dims, coords={"feature": names}).sel(feature=names[::-1])
    np.testing.assert_allclose(stats.inverse_transform(back).values, da.values, atol=1e-9)


def test_arrow_tables_are_refused_by_name_not_read_as_arrays(plain_table):
    """A pyarrow (or polars) table where a pandas one is documented: an error naming it and ``.to_pandas()``.
    ``FeatureStats.fit`` read it as a bare array (channels ``f0, f1, ...``, the ``cell_id`` column one of them)."""
    pa = pytest.importorskip("pyarrow")
    from geos2vec import evaluate as ev
    from geos2vec.errors import InvalidTypeError

    arrow = pa.Table.from_pandas(plain_table.reset_index(), preserve_index=False)
    with pytest.raises(InvalidTypeError, match=r"pyarrow\.Table: convert it with \.to_pandas\(\)"):
        geos2vec.FeatureStats.fit(arrow)
    stats = geos2vec.FeatureStats.fit(plain_table)
    with pytest.raises(InvalidTypeError, match=r"pyarrow\.Table"):
        stats.transform(pa.Table.from_pandas(plain_table, preserve_index=False))
    target = pd.Series(np.arange(len(plain_table), dtype=float), index=plain_table.index)
    with pytest.raises(InvalidTypeError, match=r"block 0 .*pyarrow\.Table: convert it"):
        ev.evaluate(target, {"counts": arrow}, n_splits=1, probes=["ridge"], progress=False)
    with pytest.raises(InvalidTypeError, match=r"pyarrow\.Table: convert it"):
        ev.join_labels(pa.table({"lat": [34.05], "lon": [-118.25], "y": [1.0]}), "y")
    # converted, it is the pandas result (reference: pandas' own mean of each column)
    back = arrow.to_pandas().set_index("cell_id")
    np.testing.assert_allclose(geos2vec.FeatureStats.fit(back).mean, plain_table.mean().to_numpy())


def test_arrow_tables_given_as_pois_or_rows_say_to_convert_them():
    """count_features(pa.Table) and embed(pa.Table) said "got Table" with no way out."""
    pa = pytest.importorskip("pyarrow")
    from geos2vec.errors import InvalidTypeError

    table = pa.table({"lon": [-118.25], "lat": [34.05], "fclass": ["cafe"]})
    with pytest.raises(InvalidTypeError, match=r"got Table \(a pyarrow\.Table: convert it with \.to_pandas\(\)"):
        geos2vec.count_features(table)
    with pytest.raises(InvalidTypeError, match=r"got Table \(a pyarrow\.Table: convert it with \.to_pandas\(\)"):
        geos2vec.embed(table, None)
    # converted, the pandas result: one cafe in one level-12 cell
    counts = _quiet(geos2vec.count_features, table.to_pandas())
    assert counts["cafe"].sum() == 1 and len(counts) == 1


def test_a_holdout_series_of_strings_is_refused_not_read_as_all_test(plain_table):
    """holdout=Series(["True", "False", ...]) counted every sample as a test sample (non-empty strings are true)."""
    from geos2vec import evaluate as ev
    from geos2vec.errors import InvalidTypeError

    idx = plain_table.index
    target = pd.Series(np.arange(len(idx), dtype=float), index=idx)
    test = np.arange(len(idx)) % 4 == 0
    with pytest.raises(InvalidTypeError, match="holdout must be a boolean Series.*dtype object"):
        ev.evaluate(target, {"counts": plain_table}, split="holdout", n_splits=1, probes=["ridge"], progress=False,
                    holdout=pd.Series(np.where(test, "True", "False"), index=idx, dtype=object))
    # booleans and 0/1 numbers are the same hold-out (reference: the test rows by hand)
    runs = [ev.evaluate(target, {"counts": plain_table}, split="holdout", n_splits=1, probes=["ridge"],
                        progress=False, holdout=h)
            for h in (pd.Series(test, index=idx), pd.Series(test.astype(int), index=idx),
                      pd.Series(test, index=idx, dtype="boolean"))]
    for r in runs:
        assert r.config["split_sizes"]["holdout"][2] == int(test.sum())
        pd.testing.assert_frame_equal(r.scores.drop(columns="time_s", errors="ignore"),
                                      runs[0].scores.drop(columns="time_s", errors="ignore"))


@pytest.mark.parametrize("lon, lat", [("LON", "LAT"), ("Longitude", "Latitude"), ("Lng", "Lat")])
def test_count_features_finds_lon_lat_columns_whatever_their_case(lon, lat):
    """count_features refused "LON"/"LAT" columns (join_labels found them); reference: the same frame with the
    columns named lon/lat, in memory and on dask, coverage="infer" included."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({lon: rng.uniform(-118.3, -118.2, 50), lat: rng.uniform(34.0, 34.1, 50),
                       "fclass": rng.choice(["cafe", "bank"], 50)})
    ref = _quiet(geos2vec.count_features, df.rename(columns={lon: "lon", lat: "lat"}), coverage="infer")
    got = _quiet(geos2vec.count_features, df, coverage="infer")
    pd.testing.assert_frame_equal(got, ref)
    assert got.attrs["coverage"] == ref.attrs["coverage"]
    dd = pytest.importorskip("dask.dataframe")
    lazy = _quiet(geos2vec.count_features, dd.from_pandas(df, npartitions=2))
    pd.testing.assert_frame_equal(lazy, _quiet(geos2vec.count_features, df), check_names=False)
