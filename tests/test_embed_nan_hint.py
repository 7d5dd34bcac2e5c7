"""embed's NaN warning suggests outside='embed' only when it would change something."""

import warnings

import geopandas as gpd
import pytest
import shapely

import geos2vec


@pytest.fixture(scope="module")
def table(shared_data):
    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")
    box = shapely.box(-118.30, 34.03, -118.22, 34.08)
    pois = pois[pois.intersects(box)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return geos2vec.count_features(pois=pois, coverage=shapely.box(-118.5, 33.8, -118.0, 34.3))


def _warning(points, table):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = points.s2vec.embed(features=table)
    texts = [str(w.message) for w in caught if "NaN embeddings" in str(w.message)]
    assert len(texts) == 1
    return out, texts[0]


def test_no_hint_when_every_nan_row_is_outside_the_coverage_or_has_no_geometry(table):
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(5.0, 5.0), None, shapely.Point(6.0, 6.0)], crs=4326)
    out, text = _warning(pts, table)
    assert out["s2vec_0"].isna().all()
    assert "outside='embed'" not in text and "3 of 3 rows" in text


def test_hint_when_a_covered_empty_cell_is_nan(table):
    # a point inside the coverage, 10 km from any POI (all lie in -118.30..-118.22, 34.03..34.08)
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(-118.40, 33.90), shapely.Point(5.0, 5.0)], crs=4326)
    out, text = _warning(pts, table)
    assert out["s2vec_0"].isna().all()
    assert "Pass outside='embed' (CLI: --outside embed)" in text
