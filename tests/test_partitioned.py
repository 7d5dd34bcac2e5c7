"""dask(-geopandas) frames through count_features and embed: the in-memory results, on any scheduler."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec
from geos2vec.errors import InvalidInputError
from geos2vec.features import count_features

dask = pytest.importorskip("dask")
dgpd = pytest.importorskip("dask_geopandas")
dd = pytest.importorskip("dask.dataframe")


@pytest.fixture(scope="module")
def nyc(shared_data):
    pois = gpd.read_parquet(shared_data / "pois" / "nyc.parquet")
    roads = gpd.read_parquet(shared_data / "roads" / "nyc.parquet")
    return pois, roads


def _quiet(f, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*a, **k)


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_count_features_dask_equals_in_memory(nyc, scheduler):
    pois, roads = nyc
    ref = _quiet(count_features, pois, roads, coverage="infer")
    with dask.config.set(scheduler=scheduler):
        got = _quiet(count_features, dgpd.from_geopandas(pois, npartitions=7),
                                                         dgpd.from_geopandas(roads, npartitions=5),
                     coverage="infer")
    pd.testing.assert_frame_equal(got, ref)
    assert got.attrs["report"] == ref.attrs["report"]
    assert got.attrs["coverage"] == ref.attrs["coverage"]
    # a tree deeper than one level (12 tables, 2 per node) and a dask frame next to an in-memory one
    got = _quiet(count_features, dgpd.from_geopandas(pois, npartitions=12), roads, coverage="infer")
    pd.testing.assert_frame_equal(got, ref)
    got = geos2vec.partitioned.count_features_dask(dgpd.from_geopandas(pois, npartitions=12), roads, split_every=2)
    pd.testing.assert_frame_equal(got, _quiet(count_features, pois, roads))


def test_count_features_dask_warns_once_with_the_merged_report(nyc):
    pois, _ = nyc
    with pytest.warns(UserWarning, match="count_features counted these in no channel") as rec:
        count_features(dgpd.from_geopandas(pois, npartitions=4))
    assert sum("no channel" in str(w.message) for w in rec) == 1


def test_plain_dask_dataframe_and_extra_channels(nyc):
    pois, _ = nyc
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"lon": pois.geometry.x, "lat": pois.geometry.y, "fclass": pois["fclass"].to_numpy(),
                          "kind": rng.choice(["b", "a", "c"], len(pois)), "seats": rng.integers(0, 9, len(pois))})
    frame.loc[frame.index[:3], "kind"] = None
    ref = _quiet(count_features, frame, extra={"kind": "categories", "seats": "sum"})
    got = _quiet(count_features, dd.from_pandas(frame, npartitions=6), extra={"kind": "categories", "seats": "sum"})
    pd.testing.assert_frame_equal(got, ref)
    assert got.attrs["report"]["extra_missing"] == {"kind": 3}
    # one partition lacks a category value: its table gets the column, filled with zeros
    frame.loc[frame.index[: len(frame) // 2], "kind"] = "a"
    ref = _quiet(count_features, frame, extra=["kind"])
    got = _quiet(count_features, dd.from_pandas(frame, npartitions=4, sort=False), extra=["kind"])
    pd.testing.assert_frame_equal(got, ref)
    with pytest.raises(InvalidInputError, match="cannot be computed partition by partition"):
        count_features(dd.from_pandas(frame, npartitions=2), extra={"seats": "mean"})
    # in-memory POIs next to dask roads take the dask path too: a categorical extra must not need .compute()
    from geos2vec.partitioned import count_features_dask

    got = _quiet(count_features_dask, frame, extra=["kind"])
    pd.testing.assert_frame_equal(got, ref)


_LOADS: list = []


def _load_part(i, frame, n):
    _LOADS.append(i)
    return frame.iloc[i::n]


def test_categorical_extra_reads_each_partition_once(nyc):
    """The category columns come from the same pass as the counts (the POIs were read twice before), with the
    in-memory column order (values sorted over all partitions, a value only some partitions have) and counts."""
    pois, _ = nyc
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"lon": pois.geometry.x.to_numpy(), "lat": pois.geometry.y.to_numpy(),
                          "fclass": pois["fclass"].to_numpy(), "kind": rng.choice(["z", "b", "m"], len(pois)),
                          "seats": rng.integers(0, 9, len(pois))})
    frame.loc[frame.index[::5], "kind"] = "a"  # only in partition 0 of 5 (rows i::5)
    n = 5
    lazy = dd.from_map(_load_part, list(range(n)), frame=frame, n=n, divisions=[None] * (n + 1))
    _LOADS.clear()
    with dask.config.set(scheduler="sync"):
        got = _quiet(count_features, lazy, extra={"kind": "categories", "seats": "sum"})
    assert sorted(_LOADS) == list(range(n))
    ref = _quiet(count_features, pd.concat([frame.iloc[i::n] for i in range(n)]),
                 extra={"kind": "categories", "seats": "sum"})
    pd.testing.assert_frame_equal(got, ref)
    assert list(got.columns[-5:]) == ["kind=a", "kind=b", "kind=m", "kind=z", "seats"]


def test_embed_dask_equals_in_memory_keeps_index_and_order(nyc):
    pois, roads = nyc
    table = _quiet(count_features, pois, roads)
    homes = pois.iloc[::37][["geometry"]].copy()
    homes.index = np.arange(len(homes))[::-1] * 3 + 5  # not sorted, not a range
    homes["name"] = [f"h{k}" for k in range(len(homes))]
    ref = _quiet(geos2vec.embed, homes, table, progress=False)
    with dask.config.set({"dataframe.convert-string": False}):  # dask's own choice: keep the object column
        lazy = geos2vec.embed(dgpd.from_geopandas(homes, npartitions=4, sort=False), table)
    assert isinstance(lazy, dgpd.GeoDataFrame)
    assert list(lazy.columns) == list(ref.columns)
    got = _quiet(lazy.compute)
    assert list(got.index) == list(ref.index)
    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=1e-5, atol=1e-6)


def test_embed_dask_without_features_counts_lines_as_roads(nyc):
    """features=None: the rows themselves are the source; their lines are roads, as in memory."""
    pois, roads = nyc
    mixed = pd.concat([pois.iloc[::5][["geometry", "fclass"]],
                       roads.iloc[::5][["geometry", "highway"]].rename(columns={"highway": "fclass"})])
    mixed = gpd.GeoDataFrame(mixed.sample(frac=1, random_state=0), crs=pois.crs)
    mixed.index = np.arange(len(mixed))
    ref = _quiet(geos2vec.embed, mixed, None, progress=False)
    with dask.config.set({"dataframe.convert-string": False}):
        got = _quiet(geos2vec.embed(dgpd.from_geopandas(mixed, npartitions=3, sort=False), None).compute)
    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=1e-5, atol=1e-6)
    # lines counted as POIs would change the cells' counts and so their embeddings
    as_pois = _quiet(geos2vec.embed, mixed, {"pois": mixed}, progress=False)
    assert not np.allclose(as_pois.filter(like="s2vec_").to_numpy(), ref.filter(like="s2vec_").to_numpy())


def test_embed_on_a_distributed_cluster_and_the_accessor(nyc):
    distributed = pytest.importorskip("distributed")
    pois, roads = nyc
    table = _quiet(count_features, pois, roads)
    homes = pois.iloc[::97][["geometry"]].copy()
    ref = _quiet(geos2vec.embed, homes, table, progress=False)
    geos2vec.register_dask_accessor()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as c, \
            distributed.Client(c):
        got = _quiet(dgpd.from_geopandas(homes, npartitions=3).s2vec.embed(table).compute)
        counted = _quiet(dgpd.from_geopandas(pois, npartitions=3).s2vec.count_features, roads)
    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=1e-5, atol=1e-6)
    pd.testing.assert_frame_equal(counted, table)


def test_embed_cells_of_a_dask_series_or_array_equals_in_memory(nyc):
    pois, roads = nyc
    table = _quiet(count_features, pois, roads)
    rng = np.random.default_rng(2)
    cells = rng.choice(table.index.to_numpy(), 300)  # duplicates kept
    cells[:5] = geos2vec.latlng_to_cell(np.full(5, 10.0), np.full(5, 10.0), 12)  # no features: NaN rows
    ref = _quiet(geos2vec.embed_cells, cells, table, progress=False)
    series = dd.from_pandas(pd.Series(cells), npartitions=4, sort=False)
    lazy = geos2vec.embed_cells(series, table, progress=False)
    assert isinstance(lazy, dd.DataFrame) and list(lazy.columns) == list(ref.columns)
    got = _quiet(lazy.compute)
    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=1e-5, atol=1e-6)
    got = _quiet(geos2vec.embed_cells(dask.array.from_array(cells, chunks=70), table, progress=False).compute)
    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=1e-5, atol=1e-6)
    with pytest.raises(InvalidInputError, match="not supported for dask"):
        geos2vec.embed_cells(series, "osm")


def test_inferred_coverage_keeps_partitions_of_one_or_two_rows():
    """A partition with fewer than 3 points (or collinear ones) still widens the hull, exactly as in memory."""
    rng = np.random.default_rng(0)
    pois = pd.DataFrame({"lon": np.r_[rng.uniform(-74.0, -73.9, 9), -73.5],  # the 10th lies further east
                         "lat": np.r_[rng.uniform(40.70, 40.80, 9), 40.75], "fclass": "restaurant"})
    for frame, parts in ((pois, 4), (pois.iloc[:6], 3)):  # partitions of 3, 3, 3, 1 rows; of 2, 2, 2 rows
        ref = count_features(frame, coverage="infer")
        got = count_features(dd.from_pandas(frame, npartitions=parts), coverage="infer")
        assert got.attrs["coverage"] == ref.attrs["coverage"]
        hull = shapely.from_wkt(got.attrs["coverage"]["geometry"])
        assert hull.equals(shapely.convex_hull(shapely.multipoints(frame[["lon", "lat"]].to_numpy())))
        covered = [geos2vec.raster.rasterize(x)["covered"].values for x in (ref, got)]
        np.testing.assert_array_equal(covered[1], covered[0])
    # a GeoDataFrame whose last partition holds 3 collinear points: their ends, not a buffered line
    g = gpd.GeoDataFrame({"fclass": ["cafe"] * 12}, crs=4326, geometry=gpd.points_from_xy(
        np.r_[pois["lon"].to_numpy()[:9], -73.6, -73.55, -73.5], np.r_[pois["lat"].to_numpy()[:9], 40.9, 40.9, 40.9]))
    ref = count_features(g, coverage="infer")
    got = count_features(dgpd.from_geopandas(g, npartitions=4, sort=False), coverage="infer")
    assert got.attrs["coverage"] == ref.attrs["coverage"]
    assert shapely.from_wkt(got.attrs["coverage"]["geometry"]).covers(shapely.Point(-73.5, 40.9))


def test_coerced_rows_give_no_category_columns():
    """errors='coerce' skips rows without coordinates; their category values make no column (as in memory)."""
    frame = pd.DataFrame({"lon": [-73.99, -73.98, -73.97, np.nan], "lat": [40.75, 40.76, 40.77, 40.78],
                          "fclass": ["restaurant", "cafe", "school", "cafe"], "kind": ["a", "a", "b", "z"]})
    ref = _quiet(count_features, frame, extra=["kind"], errors="coerce")
    assert [c for c in ref.columns if c.startswith("kind=")] == ["kind=a", "kind=b"]
    got = _quiet(count_features, dd.from_pandas(frame, npartitions=2), extra=["kind"], errors="coerce")
    pd.testing.assert_frame_equal(got, ref)
    g = gpd.GeoDataFrame(frame.drop(columns=["lon", "lat"]), crs=4326,
                         geometry=gpd.points_from_xy(frame["lon"], frame["lat"]))
    g.loc[3, "geometry"] = None  # a missing geometry, skipped
    ref = _quiet(count_features, g, extra=["kind"], errors="coerce")
    got = _quiet(count_features, dgpd.from_geopandas(g, npartitions=2), extra=["kind"], errors="coerce")
    pd.testing.assert_frame_equal(got, ref)
    assert "kind=z" not in got.columns and int(got["kind=a"].sum()) == 2


def test_dask_reads_coordinates_and_checks_coverage_as_in_memory():
    """lng/lat columns infer the same hull; most input outside a given coverage warns on both paths."""
    from geos2vec.errors import CoverageWarning

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"lng": rng.uniform(-74.0, -73.9, 50), "lat": rng.uniform(40.7, 40.8, 50),
                          "fclass": "restaurant"})
    ref = count_features(frame, coverage="infer")
    got = count_features(dd.from_pandas(frame, npartitions=3), coverage="infer")
    assert got.attrs["coverage"] == ref.attrs["coverage"]
    far = (10.0, 10.0, 11.0, 11.0)
    for f in (frame, dd.from_pandas(frame, npartitions=3)):
        with pytest.warns(CoverageWarning, match="50 of 50 input coordinates"):
            count_features(f, coverage=far)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)
        count_features(dd.from_pandas(frame, npartitions=3), coverage=(-74.1, 40.6, -73.8, 40.9))  # inside: quiet


def test_embed_dask_without_features_gives_rows_without_geometry_nan(nyc):
    pois = nyc[0].iloc[:400].copy()
    pois.loc[pois.index[[3, 50]], "geometry"] = [None, shapely.Point(np.nan, np.nan)]
    ref = _quiet(geos2vec.embed, pois)
    got = _quiet(geos2vec.embed, dgpd.from_geopandas(pois, npartitions=3)).compute()
    assert ref.iloc[[3, 50]].filter(like="s2vec_").isna().all().all()
    pd.testing.assert_frame_equal(got.filter(like="s2vec_"), ref.filter(like="s2vec_"))
