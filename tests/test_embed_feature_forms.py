"""The forms of ``features`` that ``embed`` takes (``read_osm``'s result, dask tables with in-memory rows), and
missing-geometry messages that name only options that exist."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec
from geos2vec.errors import InvalidInputError


@pytest.fixture(scope="module")
def osm(shared_data):
    pytest.importorskip("osmium")
    from geos2vec.io import read_osm

    return read_osm(shared_data / "osm" / "andorra-latest.osm.pbf")


def test_embed_takes_read_osm_result_like_its_dict(osm):
    homes = osm.pois.sample(40, random_state=1)[["geometry"]]
    homes.index = [f"h{i}" for i in range(len(homes))][::-1]            # string labels, not sorted
    got = homes.s2vec.embed(features=osm)
    ref = homes.s2vec.embed(features={"pois": osm.pois, "roads": osm.roads})
    pd.testing.assert_frame_equal(got, ref)
    assert list(got.index) == list(homes.index)
    assert np.isfinite(got.filter(like="s2vec_").to_numpy()).all()      # every home is in a cell with features
    cells = geos2vec.embed_cells(got["s2_cell"].to_numpy(np.uint64), osm)
    np.testing.assert_allclose(cells.to_numpy(np.float64), got.filter(like="s2vec_").to_numpy(np.float64),
                               rtol=1e-6, atol=1e-7)


def test_missing_geometry_messages_name_options_that_exist():
    pois = gpd.GeoDataFrame({"category": ["cafe", "bar"]}, geometry=[shapely.Point(1.5, 42.5), None],
                            crs="EPSG:4326", index=["a", "b"])
    # count_features' coerce leaves rows out of the counts (it has no rows to give <NA>)
    with pytest.raises(InvalidInputError, match=r"index \['b'\].*drop them .*errors='coerce' to leave those rows "
                                                r"out of the counts"):
        geos2vec.count_features(pois)
    table = geos2vec.count_features(pois, errors="coerce")
    assert table.to_numpy().sum() == 1                                  # the cafe alone
    # the accessor's cell ids do give <NA>
    with pytest.raises(InvalidInputError, match="errors='coerce' to get <NA> for those rows"):
        pois.s2vec.cell_ids()
    assert pois.s2vec.cell_ids(errors="coerce").isna().tolist() == [False, True]


def test_label_functions_without_a_coerce_option_do_not_offer_one():
    from geos2vec.evaluate.labels import join_labels, polygon_pooling

    labels = gpd.GeoDataFrame({"y": [1.0, 2.0]}, geometry=[shapely.Point(1.5, 42.5), shapely.Point()],
                              crs="EPSG:4326", index=[10, 11])
    for call in (lambda: join_labels(labels, "y"), lambda: polygon_pooling(labels)):
        with pytest.raises(InvalidInputError, match=r"index \[11\]; drop them \(gdf\[") as info:
            call()
        assert "coerce" not in str(info.value)


def test_in_memory_rows_with_dask_features_match_in_memory_features():
    """A count table read back with ``dd.read_parquet`` (or dask POIs) next to in-memory cell ids: the message
    said "a count_features table ... got DataFrame" (dask's class has the same name)."""
    dd = pytest.importorskip("dask.dataframe")
    dask_geopandas = pytest.importorskip("dask_geopandas")
    pois, roads = geos2vec.demo.load_sample()
    table = geos2vec.count_features(pois, roads)
    ids = table.index.to_numpy()[[5, 0, 5, 3]]                          # unsorted, repeated
    ref = geos2vec.embed_cells(ids, table, progress=False)
    got = geos2vec.embed_cells(ids, dd.from_pandas(table, npartitions=3), progress=False)
    pd.testing.assert_frame_equal(got, ref)
    counted = geos2vec.embed_cells(ids, {"pois": dask_geopandas.from_geopandas(pois, npartitions=2),
                                         "roads": roads}, progress=False)
    pd.testing.assert_frame_equal(counted, ref)
    homes = pois.iloc[[7, 3, 9]]
    pd.testing.assert_frame_equal(homes.s2vec.embed(features=dd.from_pandas(table, npartitions=2), progress=False),
                                  homes.s2vec.embed(features=table, progress=False))
