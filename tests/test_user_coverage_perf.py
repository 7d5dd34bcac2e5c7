"""A ``coverage=`` GeoSeries in EPSG:4326 with longitudes past ±180 (``box(178, -18, 182, -16)``: Fiji across
the antimeridian, as a shapely geometry reads in ``geos2vec.evaluate`` and ``image_cells``) raised a
``CoverageError`` in ``count_features`` ("bounds are not longitude/latitude degrees"): the wrap past ±180 lived
only in the evaluate module. It is now the area it draws, split at ±180. References: s2sphere cell centres and
shapely boxes in [0, 360) longitudes.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely
from pyproj import Transformer

from geos2vec.coverage import as_coverage, covered_mask
from geos2vec.errors import CoverageError
from geos2vec.features import count_features

FIJI = shapely.box(178, -18, 182, -16)
SPLIT = shapely.union_all([shapely.box(178, -18, 180, -16), shapely.box(-180, -18, -178, -16)])


def _s2_centre(cell: int) -> tuple[float, float]:
    ll = s2sphere.CellId(int(cell)).to_lat_lng()
    return ll.lng().degrees, ll.lat().degrees


def _in_fiji_box(lng, lat):
    """Inside box(178, -18, 182, -16) read in [0, 360) longitudes (shapely, independently of geos2vec)."""
    return shapely.contains_xy(FIJI, np.where(lng < 0, lng + 360.0, lng), lat)


def test_as_coverage_of_a_geoseries_past_180_is_the_area_across_the_antimeridian():
    got = as_coverage(gpd.GeoSeries([FIJI], crs=4326))
    assert got.bounds == (-180.0, -18.0, 180.0, -16.0)
    assert got.symmetric_difference(SPLIT).area == 0.0
    # the same area from the west (-182 to -178) and from a GeoDataFrame
    west = as_coverage(gpd.GeoDataFrame(geometry=[shapely.box(-182, -18, -178, -16)], crs="EPSG:4326"))
    assert west.symmetric_difference(SPLIT).area == 0.0


def test_count_features_coverage_past_180_covers_fiji_not_the_rest():
    rng = np.random.default_rng(0)
    lng = np.concatenate([rng.uniform(178.2, 179.9, 40), rng.uniform(-179.9, -178.2, 40)])
    pois = pd.DataFrame({"lon": lng, "lat": rng.uniform(-17.8, -16.2, 80), "fclass": "restaurant"})
    table = count_features(pois, coverage=gpd.GeoSeries([FIJI], crs=4326), level=12)
    qlng = np.concatenate([rng.uniform(177, 180, 300), rng.uniform(-180, -177, 300), rng.uniform(-170, 170, 100)])
    qlat = rng.uniform(-19, -15, qlng.size)
    cells = np.array([s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, o)).parent(12).id()
                      for a, o in zip(qlat, qlng)], dtype=np.uint64)
    covered, _ = covered_mask(cells, table)
    centres = np.array([_s2_centre(c) for c in cells])
    ref = _in_fiji_box(centres[:, 0], centres[:, 1])
    assert 150 < ref.sum() < 500  # both sides of ±180, and cells outside
    assert (ref[qlng < 0] & (qlng[qlng < 0] > -179)).any() and ref[qlng > 179].any()
    np.testing.assert_array_equal(covered, ref)


def test_geographic_bounds_that_are_not_degrees_still_raise():
    with pytest.raises(CoverageError, match="not longitude/latitude degrees"):
        as_coverage(gpd.GeoSeries([shapely.box(400_000, 3_700_000, 410_000, 3_710_000)], crs=4326))
    with pytest.raises(CoverageError, match="not longitude/latitude degrees"):
        as_coverage(gpd.GeoSeries([shapely.box(-170, -18, 200, -16)], crs=4326))  # 370 degrees wide


def test_projected_coverage_mixing_parts_across_and_away_from_180():
    """Only the geometries across ±180 are unwrapped one by one, the rest in one union: the area is the same.

    EPSG:3832 (Mercator about 150 E) boxes, one across ±180, one east of it, one overlapping the first, one near
    150 E; reference: points sampled in EPSG:3832, transformed with pyproj, well inside a box or well outside all.
    (A guard of the vectorised path: the old code, one part at a time, gave the same area.)
    """
    edge = 3_339_584.7  # x of ±180 in EPSG:3832
    boxes = [shapely.box(edge - 20_000, -1_950_000, edge + 20_000, -1_900_000),   # across ±180
             shapely.box(edge + 50_000, -1_950_000, edge + 90_000, -1_900_000),   # east of it: -179.x
             shapely.box(edge - 40_000, -1_940_000, edge - 10_000, -1_890_000),   # overlaps the first
             shapely.box(-30_000, -1_000_000, 30_000, -950_000)]                  # at 150 E
    got = as_coverage(gpd.GeoSeries(boxes, crs=3832))
    assert -180 <= got.bounds[0] and got.bounds[2] <= 180
    rng = np.random.default_rng(3)
    xy = np.column_stack([rng.uniform(edge - 60_000, edge + 110_000, 3000), rng.uniform(-1_970_000, -1_870_000, 3000)])
    near_150 = np.column_stack([rng.uniform(-50_000, 50_000, 500), rng.uniform(-1_020_000, -930_000, 500)])
    xy = np.concatenate([xy, near_150])
    shrunk = [b.buffer(-300) for b in boxes]  # 300 m: clear of the densified edges' error
    grown = [b.buffer(300) for b in boxes]
    inside = np.any([shapely.contains_xy(b, xy[:, 0], xy[:, 1]) for b in shrunk], axis=0)
    outside = ~np.any([shapely.contains_xy(b, xy[:, 0], xy[:, 1]) for b in grown], axis=0)
    lng, lat = Transformer.from_crs(3832, 4326, always_xy=True).transform(xy[:, 0], xy[:, 1])
    hit = shapely.contains_xy(got, lng, lat)
    assert inside.sum() > 800 and outside.sum() > 800 and (inside & (lng < 0)).any() and (inside & (lng > 0)).any()
    assert hit[inside].all() and not hit[outside].any()
