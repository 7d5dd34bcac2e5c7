"""Fixes from a review of the 2026-11-29 (second) commits: each test failed on the code before them."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import LineString, Point, box

from geos2vec import latlng_to_cell
from geos2vec.coverage import as_coverage
from geos2vec.errors import CoverageError, InvalidInputError
from geos2vec.evaluate import covered_mask, log1p_counts


@pytest.fixture
def three():
    cells = latlng_to_cell([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], 12)
    return cells, pd.DataFrame({"cafe": [2.0]}, index=pd.Index(cells[:1], name="cell_id"))


@pytest.mark.parametrize("area", [Point(0.2, 0.2), LineString([(0, 0), (1, 1)])])
def test_a_shapely_point_or_line_as_coverage_is_refused_not_an_empty_area(three, area):
    """A shapely point or line as ``coverage=`` made every cell uncovered, and ``log1p_counts`` kept only the
    cells with a row (one of three here), silently; a GeoSeries of it was already refused."""
    cells, counts = three
    np.testing.assert_allclose(log1p_counts(counts, cells, coverage=box(0, 0, 1, 1)).to_numpy().ravel(),
                               [np.log1p(2.0), 0.0, 0.0])  # an area: every cell in it kept
    with pytest.raises(InvalidInputError, match=f"coverage must be a polygon.*got a {area.geom_type}"):
        log1p_counts(counts, cells, coverage=area)
    with pytest.raises(InvalidInputError, match="buffer points or lines"):
        covered_mask(cells, area)


def test_a_collection_as_coverage_counts_by_its_polygons(three):
    cells, _ = three
    gc = shapely.GeometryCollection([box(0, 0, 0.25, 0.25), Point(3, 3)])
    assert covered_mask(cells, gc).tolist() == [True, True, False]


def test_a_coverage_geoseries_mixing_polygons_and_points_is_refused_everywhere(three):
    """``as_coverage`` (so ``count_features(coverage=)``) kept the polygons and dropped the points unseen, where
    ``evaluate``'s coverage refused the same GeoSeries."""
    cells, _ = three
    mixed = gpd.GeoSeries([box(0, 0, 1, 1), Point(5, 5)], crs=4326)
    for call in (lambda: as_coverage(mixed), lambda: covered_mask(cells, mixed)):
        with pytest.raises(CoverageError, match=r"must be polygons.*1 of its geometries.*Point; first at index 1"):
            call()
    assert as_coverage(mixed.iloc[:1]).equals(box(0, 0, 1, 1))


@pytest.mark.parametrize("second", [box(-190, -18, -185, -16), box(-180, -18, -178, -16)])
def test_a_geographic_geoseries_with_parts_either_side_of_180_is_one_area(second):
    """Each polygon alone worked; together their union was over 360 degrees wide and refused as "not degrees"."""
    gs = gpd.GeoSeries([box(178, -18, 182, -16), second], crs=4326)
    lon = np.array([179.0, -179.0, 172.5, 10.0, -179.5])
    c = latlng_to_cell(np.full(5, -17.0), lon, 12)
    expected = [shapely.contains_xy(shapely.union_all([as_coverage(g) for g in gs]), x, -17.0) for x in lon]
    assert covered_mask(c, gs).tolist() == expected
    assert expected[:2] == [True, True] and not expected[3]
    assert as_coverage(gs).equals(shapely.union_all([as_coverage(g) for g in gs]))


def test_a_multilinestring_across_180_with_an_empty_part_gets_the_cells_of_its_line():
    """``shapely.linestrings(xy, indices=owner)`` cannot rebuild an EMPTY part: a bare NumPy-style ValueError
    ("Index 1 is missing from the input indices")."""
    from geos2vec.geometry_cells import row_cells

    multi = gpd.GeoSeries([shapely.from_wkt("MULTILINESTRING ((179 0, -179 0), EMPTY)")], crs=4326)
    line = gpd.GeoSeries([shapely.from_wkt("LINESTRING (179 0, -179 0)")], crs=4326)
    got, ref = row_cells(multi, 12, "weighted"), row_cells(line, 12, "weighted")
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    assert len(np.unique(ref[1])) > 10 and np.isclose(ref[2].sum(), 1.0)  # the short way across 180


def test_missing_geometries_among_coverage_polygons_are_skipped_not_refused():
    gs = gpd.GeoSeries([None, box(0, 0, 1, 1), shapely.Polygon()], crs=4326)
    assert as_coverage(gs).equals(box(0, 0, 1, 1))


def test_holdout_mask_takes_a_geometry_collection_by_its_polygons(three):
    """``covered_mask`` took a GeometryCollection by its polygons; ``holdout_mask(polygon=)`` refused it."""
    from geos2vec.evaluate import holdout_mask

    cells, _ = three
    gc = shapely.GeometryCollection([box(0, 0, 0.25, 0.25), LineString([(0, 0), (5, 5)])])
    assert holdout_mask(cells, polygon=gc).tolist() == [True, True, False]
    assert holdout_mask(cells, polygon=gc).tolist() == covered_mask(cells, gc).tolist()


def test_a_categorical_holdout_of_0_and_1_is_read_as_the_numbers():
    from geos2vec.evaluate.protocol import _holdout_flags

    values = pd.Series([0, 1, np.nan, 1]).astype("category")
    pd.testing.assert_series_equal(_holdout_flags(values), pd.Series([False, True, False, True]))
    with pytest.raises(TypeError, match="holdout must be a boolean Series"):
        _holdout_flags(pd.Series([0, 2, 1]).astype("category"))


def test_a_point_only_collection_among_coverage_polygons_is_still_refused():
    """8f2988a re-read ``is_empty`` after taking each collection's polygons: a collection of points became an
    empty geometry and passed silently (test_user_review_fixes' check of it failed)."""
    from geos2vec.evaluate._coverage_arg import lnglat_area

    gs = gpd.GeoSeries([shapely.GeometryCollection([Point(0, 0)]), box(0, 0, 1, 1)], crs=4326)
    for call in (lambda: lnglat_area(gs, "coverage"), lambda: as_coverage(gs)):
        with pytest.raises(CoverageError, match="must be polygons.*GeometryCollection; first at index 0"):
            call()


def test_a_semicolon_csv_with_decimal_commas_reads_dots_as_thousands(tmp_path):
    """Excel's CSV in Germany: '45.000' is 45 thousand next to '6,96'; it was read as 45.0, silently. A dotted
    column that is no thousands column in such a file stays text; a file without decimal commas is pandas'."""
    from geos2vec._textfile import read_csv_utf8

    de = tmp_path / "de.csv"
    de.write_text("Name;lon;lat;Einkommen;n\nKoeln;6,96;50,94;45.000;3\nBonn;7,10;50,73;1.038.500,5;\n")
    got = read_csv_utf8(de, "labels")
    assert got["Einkommen"].tolist() == [45000.0, 1038500.5] and got["lon"].tolist() == [6.96, 7.1]
    assert got["n"].iloc[0] == 3 and np.isnan(got["n"].iloc[1])
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("Name;lon;lat;v\nA;6,96;50,94;6.96\nB;7,10;50,73;38.5\n")
    assert read_csv_utf8(mixed, "labels")["v"].tolist() == ["6.96", "38.5"]
    dots = tmp_path / "dots.csv"
    dots.write_text("Name;lon;lat;v\nA;6.96;50.94;45.000\nB;7.10;50.73;38.5\n")
    pd.testing.assert_frame_equal(read_csv_utf8(dots, "labels"), pd.read_csv(dots, sep=";"))


def _latin1_shapefile(tmp_path):
    import os

    g = gpd.GeoDataFrame({"name": ["Café", "crêperie"], "n": [1, 2]},
                         geometry=[Point(13.4, 52.5), Point(13.5, 52.6)], crs=4326)
    path = tmp_path / "lat1.shp"
    g.to_file(path, encoding="latin1")
    os.remove(tmp_path / "lat1.cpg")  # a legacy shapefile: its .dbf says nothing of UTF-8
    return g, path


def test_a_latin1_shapefile_without_cpg_is_read_with_its_text_decoded(tmp_path):
    """0bb2db7 read every GDAL input through pyogrio's Arrow path, which hands back undecoded Latin-1 bytes: the
    GeoParquet output held invalid UTF-8, a .gpkg/.csv output ended in "Wrapping Caf\ufffd failed"."""
    from geos2vec.cli_features import _read_geo

    g, path = _latin1_shapefile(tmp_path)
    got = _read_geo(path)
    assert got["name"].tolist() == ["Café", "crêperie"] and got["n"].tolist() == [1, 2]
    np.testing.assert_allclose(got.geometry.x, g.geometry.x)


def test_a_gpx_file_of_waypoints_is_one_layer_of_rows(tmp_path):
    """GDAL opens every GPX file as five layers (waypoints, routes, tracks, route_points, track_points): the
    empty ones made 69e888e refuse a file of two waypoints that was read before."""
    from geos2vec.cli_features import _read_geo

    gpx = tmp_path / "wp.gpx"
    gpx.write_text('<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
                   '<wpt lat="52.5" lon="13.4"><name>a</name></wpt><wpt lat="52.6" lon="13.5"><name>b</name></wpt>'
                   "</gpx>")
    got = _read_geo(gpx)
    assert len(got) == 2 and got["name"].tolist() == ["a", "b"]
    np.testing.assert_allclose(got.geometry.y, [52.5, 52.6])


def test_images_relabelled_without_attrs_are_not_read_as_level_30_images():
    """c51cb8e read an image label as a cell id when the attrs were gone: images relabelled 1..n (odd labels are
    valid level-30 cells) were refused as "level-30 images of level-12 cells" by the bundled model."""
    import geos2vec

    rng = np.random.default_rng(3)
    pois = pd.DataFrame({"lon": rng.uniform(-74.0, -73.9, 400), "lat": rng.uniform(40.7, 40.8, 400),
                         "fclass": rng.choice(["cafe", "restaurant", "school"], 400)})
    da = geos2vec.rasterize(geos2vec.count_features(pois))
    model = geos2vec.load_model("default")
    ref = model.embed(da, mode="patch", as_frame=True, verbose=False)
    relabelled = da.assign_coords(image=np.arange(1, da.sizes["image"] + 1))
    relabelled.attrs = {}
    got = model.embed(relabelled, mode="patch", as_frame=True, verbose=False)
    np.testing.assert_allclose(got.loc[ref.index].to_numpy(), ref.to_numpy(), rtol=0, atol=1e-6)


def test_a_geojson_id_field_that_gdal_takes_as_fid_is_kept(tmp_path):
    """4861bb5 read GeoJSON with ``fid_as_index=True`` and the fields: GDAL takes negative top-level ids as a fid
    column named like the field, pyogrio built an index of tuples, and the ``id`` column was lost, silently."""
    import json

    from geos2vec.cli_features import _read_geo

    feats = [{"type": "Feature", "id": i, "properties": {"a": k}, "geometry": {"type": "Point", "coordinates": [k, k]}}
             for k, i in enumerate([0, -5, 3])]
    path = tmp_path / "neg.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    got = _read_geo(path)
    assert got["id"].tolist() == [0, -5, 3] and got["a"].tolist() == [0, 1, 2]


def test_read_wof_keeps_the_current_copy_of_a_venue_in_two_files_whatever_their_order(tmp_path):
    """36f6d27 marked the later copy as the repeat before the status checks: a closed copy in the first file and a
    current one in the second dropped the venue, and the result depended on the order of the files."""
    import warnings
    from pathlib import Path

    import geos2vec

    wof = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wof" / "us-ri.parquet"
    if not wof.is_file():
        pytest.skip("shared WOF data not available")
    raw = pd.read_parquet(wof)
    raw = raw[raw["is_current"] == 1].head(80).reset_index(drop=True)
    closed = raw.iloc[:1].assign(is_current=0)
    pd.concat([raw.iloc[1:40], closed]).to_parquet(tmp_path / "us-aa.parquet")
    raw.iloc[:1].to_parquet(tmp_path / "us-bb.parquet")  # the same venue, current in the other state's file
    raw.iloc[:40].to_parquet(tmp_path / "us-cc.parquet")  # the reference: each venue once, current
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ab = geos2vec.io.read_wof([tmp_path / "us-aa.parquet", tmp_path / "us-bb.parquet"], min_stack=None)
        ba = geos2vec.io.read_wof([tmp_path / "us-bb.parquet", tmp_path / "us-aa.parquet"], min_stack=None)
        ref = geos2vec.io.read_wof(tmp_path / "us-cc.parquet", min_stack=None)
    assert raw["wof_id"].iloc[0] in set(ref["wof_id"])
    for got in (ab, ba):
        assert sorted(got["wof_id"]) == sorted(ref["wof_id"])  # the venue kept (its current copy), in any order
        rep = got.attrs["wof_report"]
        assert rep["n_returned"] == len(ref) and rep["n_returned"] + sum(rep["dropped"].values()) == rep["n_read"]


def test_a_stored_set_options_entered_after_another_set_sets_its_options():
    """``quiet = set_options(progress=False)``, then ``set_options(progress=True)``, then ``with quiet:`` set
    nothing (quiet was still "open" from its making), where the docstring says each block sets them again."""
    import geos2vec

    before = geos2vec.get_options()
    try:
        quiet = geos2vec.set_options(progress=False)
        geos2vec.set_options(progress=True)
        with quiet:
            assert geos2vec.get_options()["progress"] is False
        assert geos2vec.get_options()["progress"] is True  # what was there when the block began
        with quiet:  # again (a notebook cell run twice)
            assert geos2vec.get_options()["progress"] is False
        assert geos2vec.get_options()["progress"] is True
        with geos2vec.set_options(threads=2):  # the usual idiom: restores what was there before it was made
            assert geos2vec.get_options()["threads"] == 2
        assert geos2vec.get_options()["threads"] == before["threads"]
    finally:
        geos2vec.set_options(**before)


def test_evaluate_refuses_images_of_another_level_as_embed_does():
    """``S2VecModel.evaluate`` scored 16 x 16 level-10 images of level-14 cells with the level-12 model (the grid
    matched); ``embed`` refuses them since c51cb8e."""
    import geos2vec
    from geos2vec.errors import InvalidInputError

    rng = np.random.default_rng(5)
    pois = pd.DataFrame({"lon": rng.uniform(-74.0, -73.99, 300), "lat": rng.uniform(40.70, 40.71, 300),
                         "fclass": rng.choice(["cafe", "restaurant", "school"], 300)})
    da14 = geos2vec.rasterize(geos2vec.count_features(pois, level=14), image_level=10)
    model = geos2vec.load_model("default")
    with pytest.raises(InvalidInputError, match="these images hold level-14 cells, but the model embeds level-12"):
        model.evaluate(da14, n_masks=1)
    with pytest.raises(InvalidInputError, match="these images hold level-14 cells"):
        model.embed(da14, mode="patch", verbose=False)
