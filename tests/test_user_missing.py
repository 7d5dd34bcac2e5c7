"""Missing is not empty, end to end on the shared data (a data scientist combining sources of other coverage).

Each test checks the library against an independent reference: cell centres and cell polygons against the
coverage polygon with shapely, statistics with NumPy's NaN-aware means and variances (unknown values as NaN).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geos2vec import FeatureStats
from geos2vec import cells as C
from geos2vec.features import combine_counts, count_features
from geos2vec.raster import rasterize


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _city(shared_data, city):
    """The shared city's POIs and roads (roads reach 0.02 degrees past the POI box) and the POI box."""
    pois = gpd.read_parquet(shared_data / "pois" / f"{city}.parquet")
    roads = gpd.read_parquet(shared_data / "roads" / f"{city}.parquet")
    return pois, roads, shapely.box(*pois.total_bounds)


def _detached(cells, geom):
    """Reference: cells whose polygon does not meet ``geom`` at all (shapely)."""
    return np.array([not p.intersects(geom) for p in C.cell_polygons(cells).values], dtype=bool)


def _nan_reference(table, unavailable):
    """NumPy: mean, population variance and count of log1p(values), unknown values as NaN."""
    x = np.log1p(table.to_numpy(dtype=np.float64))
    x[unavailable] = np.nan
    return np.nanmean(x, axis=0), np.nanvar(x, axis=0), (~np.isnan(x)).sum(axis=0)


def test_road_only_cells_beyond_the_poi_box_are_not_cells_without_pois(shared_data):
    """San José: 28 of the 144 rows are cells that only roads reach, wholly outside the POI box (the roads file is
    clipped to the box + 0.02 degrees). They were covered for every channel, so 28 cells nobody surveyed for POIs
    counted as cells without any: the restaurant channel's mean of log(1 + count) fell from 1.33 to 1.07."""
    pois, roads, box = _city(shared_data, "san_jose")
    table = _quiet(count_features, pois, roads, coverage=box)
    cells = table.index.to_numpy(np.uint64)
    far = _detached(cells, box)
    assert far.sum() >= 20 and (table.loc[far, "road"] > 0).all()  # road-only cells beyond the box
    poi_cols = np.array([c != "road" for c in table.columns])
    unavailable = far[:, None] & poi_cols[None, :]
    mean, var, count = _nan_reference(table, unavailable)
    stats = FeatureStats.fit(table, log1p=True)
    np.testing.assert_array_equal(stats.count, count)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(stats.var, var, rtol=1e-9, atol=1e-15)
    k = list(table.columns).index("restaurant")
    assert stats.mean[k] > np.log1p(table["restaurant"].to_numpy()).mean() + 0.2  # every row: 1.07
    # the images say the same: those pixels are covered (roads are known there), their POI channels are not
    da = rasterize(table)
    ids = da["cell_id"].values.ravel()
    lat, lng = C.cell_to_latlng(ids)
    in_box = shapely.contains_xy(box, lng, lat)
    has_row = np.isin(ids, cells)
    np.testing.assert_array_equal(da["covered"].values.ravel(), in_box | has_row)
    avail = da["available"].values.reshape(ids.size, -1)
    np.testing.assert_array_equal(avail[:, k], (in_box | has_row) & ~np.isin(ids, cells[far]))
    np.testing.assert_array_equal(avail[:, -1], in_box | has_row)  # road: known wherever covered
    from_images = FeatureStats.fit(da, log1p=True)
    np.testing.assert_array_equal(from_images.count, stats.count)
    np.testing.assert_allclose(from_images.mean, stats.mean, rtol=1e-12)


def test_a_poi_cell_beyond_an_extract_box_does_not_know_its_roads(shared_data):
    """Andorra's extract (coverage: its header box): a POI at an area's representative point in a cell wholly
    outside the box says nothing about that cell's roads; a cell straddling the box's edge keeps both."""
    pytest.importorskip("osmium")
    from geos2vec.io import read_osm

    pbf = shared_data / "osm" / "andorra-latest.osm.pbf"
    osm = _quiet(read_osm, pbf)
    table = _quiet(count_features, osm.pois, osm.roads, coverage=str(pbf))
    box = shapely.box(1.412368, 42.4276, 1.787481, 42.65717)
    cells = table.index.to_numpy(np.uint64)
    far = _detached(cells, box)
    no_road = far & (table["road"].to_numpy() == 0)
    no_poi = far & (table.drop(columns="road").to_numpy().sum(axis=1) == 0)
    assert no_road.any() and no_poi.any()
    unavailable = np.zeros(table.shape, bool)
    unavailable[no_road, -1] = True
    unavailable[no_poi, :-1] = True
    mean, var, count = _nan_reference(table, unavailable)
    stats = FeatureStats.fit(table, log1p=True)
    np.testing.assert_array_equal(stats.count, count)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(stats.var, var, rtol=1e-9, atol=1e-15)


def test_statistics_of_sources_merge_to_those_of_their_sum(shared_data):
    """Los Angeles (POIs and roads, POI box) + Rhode Island's venues (no roads): the parts' statistics merge to
    those of ``combine_counts`` of the parts, road-only cells beyond the box left out of the POI channels."""
    from geos2vec.io import read_wof

    pois, roads, box = _city(shared_data, "los_angeles")
    la = _quiet(count_features, pois, roads, coverage=box)
    ri = _quiet(count_features, _quiet(read_wof, shared_data / "wof", states=["ri"]), coverage="infer")
    both = _quiet(combine_counts, [la, ri])
    merged = FeatureStats.fit(la, log1p=True).merge(FeatureStats.fit(ri, log1p=True))
    whole = FeatureStats.fit(both, log1p=True)
    np.testing.assert_array_equal(merged.count, whole.count)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(merged.var, whole.var, rtol=1e-9, atol=1e-15)
    k = list(both.columns).index("restaurant")
    far = _detached(la.index.to_numpy(np.uint64), box)
    assert far.sum() >= 20 and whole.count[k] == len(both) - far.sum()


def test_dask_counts_record_the_same_coverage(shared_data):
    """The partitioned path records the same layers, so its table's statistics are the in-memory ones."""
    dgpd = pytest.importorskip("dask_geopandas")
    pois, roads, box = _city(shared_data, "los_angeles")
    ref = _quiet(count_features, pois, roads, coverage=box)
    got = _quiet(count_features, dgpd.from_geopandas(pois, npartitions=3), roads, coverage=box)
    assert got.attrs["coverage"] == ref.attrs["coverage"]
    assert FeatureStats.fit(got, log1p=True) == FeatureStats.fit(ref, log1p=True)


def test_training_images_with_nan_fill_are_refused_before_training():
    """``rasterize(..., fill=np.nan)`` puts NaN in every pixel without a row, covered (known empty) or not. The
    pipeline fed them to the model: the loss became NaN (a NaN times a zero loss weight is NaN) and ``fit``
    reported after the epoch that training diverged, blaming the learning rate."""
    pytest.importorskip("tensorflow")
    from geos2vec.errors import InvalidInputError
    from geos2vec.model.data import make_dataset

    pois = gpd.GeoDataFrame({"fclass": ["restaurant", "cafe", "bar"]}, crs=4326,
                            geometry=gpd.points_from_xy([9.52, 9.53, 9.54], [47.14, 47.15, 47.16]))
    table = _quiet(count_features, pois, coverage=(9.5, 47.1, 9.6, 47.2)).astype(np.float64)
    da = rasterize(table, fill=np.nan)
    n_fill = int((~da["observed"]).sum())
    assert np.isnan(da.values).any(axis=-1).sum() == n_fill > 0  # NumPy: the fill pixels, and only they
    stats = FeatureStats.fit(da)  # the observed pixels are finite
    with pytest.raises(InvalidInputError, match=rf"NaN/inf values in {n_fill} pixel\(s\), 0 of them observed.*fill=0"):
        make_dataset(da, stats)
    make_dataset(rasterize(table), stats)  # fill=0: an empty cell, fine
