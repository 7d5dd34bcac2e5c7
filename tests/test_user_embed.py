"""A GeoPandas user's rows through embed / features / cells: awkward indexes, CRSs and geometries.

Every expected value comes from an independent reference (shapely areas of cell polygons, s2sphere-exact
cell ids of hand-picked points, pandas).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

import geos2vec
from geos2vec import cells
from geos2vec.embedding import row_cells
from conftest import la_downtown


def _area_weights(poly, level=12):
    """Reference: the share of ``poly``'s area (x cos lat) in each cell, from shapely intersections with cells."""
    x0, y0, x1, y1 = poly.bounds
    xs, ys = np.meshgrid(np.linspace(x0, x1, 60), np.linspace(y0, y1, 60))
    ids = np.unique(cells.grid_disk(np.unique(cells.latlng_to_cell(ys.ravel(), xs.ravel(), level)), 1).ravel())
    area = shapely.area(shapely.intersection(np.asarray(cells.cell_polygons(ids).values), poly))
    area = area * np.cos(np.radians(cells.cell_to_latlng(ids)[0]))
    keep = area > 0
    return dict(zip(ids[keep].tolist(), area[keep] / area[keep].sum()))


@pytest.mark.parametrize("geom", [
    shapely.MultiPolygon([shapely.box(-118.30, 34.05, -118.285, 34.065), shapely.box(-118.25, 34.09, -118.24, 34.10)]),
    shapely.Polygon([(-118.3, 34.05), (-118.27, 34.08), (-118.3, 34.08), (-118.27, 34.05)]),  # bow-tie
], ids=["multipolygon", "bowtie"])
def test_multipolygon_weights_are_area_shares(geom):
    # get_rings of a MultiPolygon is empty: its boundary cells were missing and interior samples got whole cells
    _, cell, w = row_cells(gpd.GeoSeries([geom], crs=4326))
    ref = _area_weights(shapely.make_valid(geom))
    assert set(cell.tolist()) == set(ref)
    np.testing.assert_allclose(w, [ref[c] for c in cell.tolist()], atol=2e-3)


# ---------------------------------------------------------------------------------------------- the CLI on files
@pytest.fixture(scope="module")
def la(shared_data):
    """A small slice of the Los Angeles sample (POIs and roads near downtown) and its feature table."""
    return la_downtown(shared_data)


def _homes(pois):
    homes = pois.iloc[[5, 1, 30, 12]][["name", "geometry"]].copy()
    homes.index = ["h3", "h1", "h2", "h1"]  # strings, unsorted, a duplicate
    return homes


@pytest.mark.parametrize("suffix", [".gpkg", ".csv", ".PARQUET", ".pq"])
def test_cli_embed_writes_the_format_its_out_suffix_names(la, tmp_path, suffix):
    # the file was written under a '.partial' name, so GDAL fell back to a directory of shapefiles (.gpkg, .csv)
    # and .PARQUET / .pq went to GDAL too
    import warnings

    import pyogrio

    from geos2vec.cli import main

    pois, _, table = la
    homes = _homes(pois)
    homes.to_parquet(tmp_path / "homes.parquet")
    table.to_parquet(tmp_path / "table.parquet")
    out = tmp_path / f"out{suffix}"
    assert main(["embed", str(tmp_path / "homes.parquet"), "--features", str(tmp_path / "table.parquet"),
                 "--out", str(out), "--quiet"]) == 0
    assert out.is_file()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = homes.s2vec.embed(features=table)
    if suffix.lower() in (".parquet", ".pq"):
        got = gpd.read_parquet(out)
        assert got.index.tolist() == ["h3", "h1", "h2", "h1"]
    else:
        assert pyogrio.list_layers(out)[0][0] == "out"
        got = pyogrio.read_dataframe(out)
        assert got["s2_cell"].astype("uint64").tolist() == ref["s2_cell"].astype("uint64").tolist()
    np.testing.assert_allclose(got.filter(like="s2vec_").to_numpy(float), ref.filter(like="s2vec_").to_numpy(float),
                               rtol=1e-6)


def test_cli_embed_refuses_shapefile_and_unknown_suffix(la, tmp_path, capsys):
    from geos2vec.cli import main

    pois, _, table = la
    _homes(pois).to_parquet(tmp_path / "homes.parquet")
    table.to_parquet(tmp_path / "t.parquet")
    for name in ("out.shp", "out.xyz"):
        assert main(["embed", str(tmp_path / "homes.parquet"), "--features", str(tmp_path / "t.parquet"),
                     "--out", str(tmp_path / name), "--quiet"]) == 1
        assert ".gpkg" in capsys.readouterr().err
        assert not (tmp_path / name).exists()


def test_cli_reads_csv_with_lon_lat(la, tmp_path):
    # read_file of a CSV gave a plain DataFrame: "gdf must be a GeoDataFrame ..." with Python advice
    import pandas as pd

    from geos2vec.cli import main

    pois, _, table = la
    homes = _homes(pois)
    pd.DataFrame({"id": homes.index, "Longitude": homes.geometry.x, "Latitude": homes.geometry.y}).to_csv(
        tmp_path / "homes.csv", index=False)
    table.to_parquet(tmp_path / "table.pq")  # a .pq table is a table, not GeoParquet to count
    assert main(["embed", str(tmp_path / "homes.csv"), "--features", str(tmp_path / "table.pq"),
                 "--out", str(tmp_path / "out.parquet"), "--quiet"]) == 0
    got = gpd.read_parquet(tmp_path / "out.parquet")
    assert got["id"].tolist() == ["h3", "h1", "h2", "h1"]
    assert got["s2_cell"].tolist() == cells.latlng_to_cell(homes.geometry.y.to_numpy(),
                                                           homes.geometry.x.to_numpy(), 12).tolist()
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(geos2vec.errors.InvalidInputError, match="lon/lat"):
        main(["embed", str(tmp_path / "bad.csv"), "--features", str(tmp_path / "table.pq"),
              "--out", str(tmp_path / "o.parquet"), "--debug"])


def test_cli_features_out_must_be_parquet(la, tmp_path):
    # a Parquet table was written under any name, e.g. table.csv
    from geos2vec.cli import main

    pois, _, _ = la
    pois.head(20).to_parquet(tmp_path / "pois.parquet")
    with pytest.raises(geos2vec.errors.InvalidInputError, match=r"\.parquet"):
        main(["features", str(tmp_path / "pois.parquet"), "--out", str(tmp_path / "t.csv"), "--debug"])
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("centre", [(135.0, 35.2644), (-45.0, -35.2644), (-118.3, 34.05)],
                         ids=["kobe_cube_corner", "cube_corner_south", "los_angeles"])
def test_polygon_covers_every_interior_cell(centre):
    # the interior grid (half an average cell edge) missed ~1 % of the cells near the cube's corners, where cells
    # are narrowest and skewed: they got no weight
    cx, cy = centre
    box = shapely.box(cx - 0.4, cy - 0.4, cx + 0.4, cy + 0.4)
    _, cell, _ = row_cells(gpd.GeoSeries([box], crs=4326))
    xs, ys = np.meshgrid(np.arange(cx - 0.4 + 5e-4, cx + 0.4, 1e-3), np.arange(cy - 0.4 + 5e-4, cy + 0.4, 1e-3))
    dense = np.unique(cells.latlng_to_cell(ys.ravel(), xs.ravel(), 12))  # every cell is ~15x wider than the step
    assert np.setdiff1d(dense, cell).size == 0


# ---------------------------------------------------------------------------------------------- the accessor
def test_accessor_cells_coerce_leaves_missing_geometries_out():
    # the error told users to pass errors='coerce', which cells() did not accept (a raw TypeError)
    import pandas as pd

    la_pt = shapely.Point(-118.25, 34.05)
    pts = [la_pt, None, la_pt, shapely.Point(), shapely.Point(9.5, 47.1)]
    gdf = gpd.GeoDataFrame({"v": range(5)}, geometry=pts, crs=4326, index=["b", "a", "b", "c", "d"])
    with pytest.raises(geos2vec.errors.InvalidInputError, match="errors='coerce'"):
        gdf.s2vec.cells()
    got = gdf.s2vec.cells(errors="coerce")
    ids = cells.latlng_to_cell(np.array([34.05, 34.05, 47.1]), np.array([-118.25, -118.25, 9.5]), 12)
    ref = pd.Series(ids).value_counts().sort_index()
    assert got["cell_id"].tolist() == ref.index.tolist()
    assert got["count"].tolist() == ref.tolist()


def test_cli_features_splits_a_file_of_pois_and_roads(la, tmp_path):
    # a file mixing points and lines (an Overpass export) was counted as POIs only: every road was lost
    import warnings

    import pandas as pd

    from geos2vec.cli import main

    pois, roads, table = la
    mixed = pd.concat([pois[["fclass", "geometry"]], roads[["highway", "geometry"]]], ignore_index=True)
    mixed.to_file(tmp_path / "mixed.geojson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert main(["features", str(tmp_path / "mixed.geojson"), "--out", str(tmp_path / "t.parquet")]) == 0
    got = pd.read_parquet(tmp_path / "t.parquet")
    assert got["road"].sum() == table["road"].sum() > 0
    pd.testing.assert_frame_equal(got, table, check_names=False)
