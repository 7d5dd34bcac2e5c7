"""Evaluating around Fiji: a coverage or hold-out area across ±180 selects the cells where it is.

``coverage.to_crs(4326).union_all()`` (what ``covered_mask`` told a GeoSeries' user to pass) of an area across the
antimeridian in a projected CRS (EPSG:3460, EPSG:3832) is a band round the globe the other way: the baselines took
the wrong cells for covered, ``holdout_mask`` and ``geos2vec evaluate --holdout-polygon`` held out the wrong ones.
References: s2sphere cell centres, the two halves of each area built by hand with shapely in degrees, and pyproj.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import s2sphere
import shapely

from geos2vec import latlng_to_cell
from geos2vec.cli import main
from geos2vec.errors import InvalidInputError
from geos2vec.evaluate import covered_mask, holdout_mask, log1p_counts

# level-12 cells on a 0.2-degree grid from 176.05 E to 176.05 W (across ±180), 19 S to 15.1 S
_LNG, _LAT = np.meshgrid(np.arange(176.05, 184.0, 0.2), np.arange(-19.0, -15.0, 0.2))
CELLS = np.unique(latlng_to_cell(_LAT.ravel(), ((_LNG.ravel() + 180) % 360) - 180, 12))


def _centres(cells):
    """(lat, lng) of each cell's centre, from s2sphere."""
    ll = [s2sphere.CellId(int(c)).to_lat_lng() for c in cells]
    return np.array([p.lat().degrees for p in ll]), np.array([p.lng().degrees for p in ll])


LAT, LNG = _centres(CELLS)


def _halves(west, south, east, north):
    """The area ``west``..``east`` (east past 180) as its two halves either side of ±180, built by hand."""
    return shapely.union_all([shapely.box(west, south, 180.0, north), shapely.box(-180.0, south, east - 360.0, north)])


def _projected(west, south, east, north, crs):
    """The area as a polygon in ``crs``: its (densified) lon/lat ring transformed by pyproj."""
    ring = shapely.get_coordinates(shapely.segmentize(shapely.box(west, south, east, north), 0.01))
    x, y = pyproj.Transformer.from_crs(4326, crs, always_xy=True).transform(ring[:, 0], ring[:, 1])
    return shapely.Polygon(np.c_[x, y])


def _inside(geom):
    """Reference: the cells whose s2sphere centre lies in ``geom`` (none of them within 1e-4 degrees of its edge)."""
    assert shapely.distance(geom.boundary, shapely.points(LNG, LAT)).min() > 1e-4
    inside = shapely.contains_xy(geom, LNG, LAT)
    assert (inside & (LNG > 0)).any() and (inside & (LNG < 0)).any()  # cells on both sides of ±180
    assert (~inside).any()
    return inside


FIJI = (178.02, -18.03, 181.97, -16.04)  # 178.02 E to 178.03 W
FIJI_3460 = gpd.GeoSeries([_projected(*FIJI, 3460)], crs="EPSG:3460")
PARTS = [(178.52, -17.83, 180.73, -16.96), (179.28, -17.47, 181.51, -16.24)]  # each across ±180
PARTS_3832 = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[_projected(*p, 3832) for p in PARTS], crs="EPSG:3832")


def test_covered_mask_of_a_projected_area_across_the_antimeridian_is_its_two_halves():
    ref = _inside(_halves(*FIJI))
    # what the old message told the user to pass: the rest of the globe's band, the wrong cells
    assert not np.array_equal(covered_mask(CELLS, FIJI_3460.to_crs(4326).union_all()), ref)
    np.testing.assert_array_equal(covered_mask(CELLS, FIJI_3460), ref)
    np.testing.assert_array_equal(covered_mask(CELLS, FIJI_3460.to_frame("geometry")), ref)
    # a GeoDataFrame of two parts, each across ±180, in EPSG:3832
    ref2 = _inside(shapely.union_all([_halves(*p) for p in PARTS]))
    np.testing.assert_array_equal(covered_mask(CELLS, PARTS_3832), ref2)
    # a shapely area in degrees with longitudes past 180 is the area it draws (as image_cells takes it)
    np.testing.assert_array_equal(covered_mask(CELLS, shapely.box(*FIJI)), ref)


def test_count_baselines_take_the_cells_of_a_projected_coverage_across_the_antimeridian():
    ref = _inside(_halves(*FIJI))
    rng = np.random.default_rng(3)
    some = CELLS[rng.choice(len(CELLS), 40, replace=False)]  # rows anywhere, covered or not
    counts = pd.DataFrame({"cafe": rng.integers(1, 5, len(some)).astype(float)}, index=pd.Index(some, name="cell_id"))
    got = log1p_counts(counts, CELLS, coverage=FIJI_3460)
    known = np.sort(CELLS[ref | np.isin(CELLS, some)])  # a row of the table, or covered: empty (log1p 0)
    np.testing.assert_array_equal(got.index.to_numpy(), known)
    want = np.log1p(counts["cafe"].reindex(known, fill_value=0.0).to_numpy())
    np.testing.assert_allclose(got["cafe"].to_numpy(), want)


def test_holdout_mask_of_an_area_across_the_antimeridian():
    ref = _inside(_halves(*FIJI))
    np.testing.assert_array_equal(holdout_mask(CELLS, polygon=FIJI_3460), ref)
    np.testing.assert_array_equal(holdout_mask(CELLS, polygon=shapely.box(*FIJI)), ref)  # was the east half only
    ref2 = _inside(shapely.union_all([_halves(*p) for p in PARTS]))
    np.testing.assert_array_equal(holdout_mask(CELLS, polygon=PARTS_3832), ref2)
    # metres read as degrees held out nothing, silently; a GeoSeries without a CRS cannot be placed
    with pytest.raises(InvalidInputError, match="not longitude/latitude degrees"):
        holdout_mask(CELLS, polygon=FIJI_3460.iloc[0])
    with pytest.raises(InvalidInputError, match="polygon has no CRS"):
        holdout_mask(CELLS, polygon=gpd.GeoSeries([shapely.box(*FIJI)]))


def test_cli_holdout_polygon_across_the_antimeridian(tmp_path):
    rng = np.random.default_rng(0)
    sig = rng.standard_normal((len(CELLS), 2))
    y = 3 * sig[:, 0] - 2 * sig[:, 1] + 0.1 * rng.standard_normal(len(CELLS))
    pd.DataFrame({"latitude": LAT, "longitude": LNG, "v": y}).to_csv(tmp_path / "labels.csv", index=False)
    pd.DataFrame({"cell_id": CELLS, "s0": sig[:, 0], "s1": sig[:, 1]}).to_parquet(tmp_path / "emb.parquet")
    # a GeoJSON drawn across ±180 (longitudes past 180), and the same area in EPSG:3460 (GeoParquet)
    gpd.GeoDataFrame(geometry=[shapely.box(*FIJI)], crs="EPSG:4326").to_file(tmp_path / "zone.geojson")
    FIJI_3460.to_frame("geometry").to_parquet(tmp_path / "zone.parquet")
    ref = _inside(_halves(*FIJI))
    for zone in ("zone.geojson", "zone.parquet"):
        out = tmp_path / zone.replace(".", "_")
        argv = ["evaluate", "--labels", str(tmp_path / "labels.csv"), "--target", "v", "--embedding",
                f"sig={tmp_path / 'emb.parquet'}", "--model", "none", "--probes", "ridge", "--n-splits", "2",
                "--location-scales", "2", "--quiet", "--out", str(out), "--holdout-polygon", str(tmp_path / zone)]
        assert main(argv) == 0, zone
        scores = pd.read_csv(out / "scores.csv")
        config = json.loads((out / "config.json").read_text())
        assert set(scores.split) == {"holdout"}
        assert (scores.n_test == ref.sum()).all(), (zone, scores.n_test.unique(), ref.sum())
        assert config["split_sizes"]["holdout"][2] == ref.sum()
        held = shapely.from_wkt(config["holdout"]["polygon"])
        np.testing.assert_array_equal(shapely.contains_xy(held, LNG, LAT), ref)
