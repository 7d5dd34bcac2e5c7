"""Dask ``count_features`` warns and reports as the in-memory one: header boxes, roads of custom ontologies."""

from __future__ import annotations

import warnings

import geopandas as gpd
import pytest

from geos2vec.errors import CoverageWarning
from geos2vec.features import count_features

dask_geopandas = pytest.importorskip("dask_geopandas")


def test_a_placeholder_pbf_header_box_warns_on_dask_too(shared_data):
    pbf = shared_data / "osm" / "heidelberg.test.pbf"  # header box (0, 0, 180, 90): a placeholder
    pois = gpd.GeoDataFrame({"fclass": ["cafe", "school", "bank", "cafe"]},
                            geometry=gpd.points_from_xy([8.69, 8.70, 8.71, 8.72], [49.40, 49.41, 49.42, 49.43]),
                            crs=4326)
    with pytest.warns(CoverageWarning, match=r"header box of .*heidelberg.test.pbf is \(0.0, 0.0, 180.0, 90.0\)"):
        want = count_features(pois, coverage=pbf)
    with pytest.warns(CoverageWarning, match=r"header box of .*heidelberg.test.pbf is \(0.0, 0.0, 180.0, 90.0\)"):
        got = count_features(dask_geopandas.from_geopandas(pois, npartitions=2), coverage=pbf)
    assert got.sort_index().equals(want.sort_index())

    good = shared_data / "osm" / "liechtenstein-latest.osm.pbf"
    inside = gpd.GeoDataFrame({"fclass": ["cafe", "school"]}, geometry=gpd.points_from_xy([9.52, 9.55], [47.1, 47.2]),
                              crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)
        count_features(dask_geopandas.from_geopandas(inside, npartitions=2), coverage=good)


def test_non_road_highways_of_every_partition_are_reported(shared_data):
    roads = gpd.read_parquet(shared_data / "roads" / "los_angeles.parquet")
    with pytest.warns(UserWarning, match="not a road class"):
        want = count_features(roads=roads, ontology={"restaurant": "food"})
    # sorted so that the lines the default ontology drops sit in the last partitions only
    order = roads.assign(odd=roads["highway"].isin(want.attrs["report"]["non_road_highways"])).sort_values("odd")
    with pytest.warns(UserWarning, match="not a road class"):  # was silent: only the first partition's report
        got = count_features(roads=dask_geopandas.from_geopandas(order.drop(columns="odd"), npartitions=4,
                                                                 sort=False),
                             ontology={"restaurant": "food"})
    assert got.attrs["report"]["non_road_highways"] == want.attrs["report"]["non_road_highways"]
