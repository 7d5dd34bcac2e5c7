"""A GIS analyst moving geos2vec's inputs and outputs through files: GeoJSON, CSV, GeoPackage, Feather, GeoParquet.

References: the in-memory ``embed`` result, and s2sphere's cell ids of the rows' points.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere

import geos2vec
from geos2vec.cli import main
from geos2vec.cli_features import _read_geo, _write_geo
from geos2vec.errors import InvalidInputError
from geos2vec.io import read_pois, read_roads


@pytest.fixture(scope="module")
def la(tmp_path_factory):
    """The bundled LA sample, its feature table on disk, 12 rows in EPSG:4326 and their in-memory embedding."""
    d = tmp_path_factory.mktemp("formats")
    pois, roads = geos2vec.demo.load_sample()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = geos2vec.count_features(pois, roads, level=12)
    table.to_parquet(d / "table.parquet")
    rows = pois.sample(12, random_state=1)[["osm_id", "name", "geometry"]].to_crs(4326)
    rows.index = np.arange(40, 52)[::-1]  # an index that is not 0..n-1, in descending order
    ref = rows.s2vec.embed(features=table, progress=False)
    return d, pois, roads, table, rows, ref


def _s2sphere_ids(points):
    return [s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(p.y, p.x)).parent(12).id() for p in points]


def _cli(*argv):
    assert main([*map(str, argv), *(["--quiet"] if argv[0] == "embed" else [])]) == 0


def test_cli_outputs_in_every_format_read_back_exactly(la):
    """GeoJSON and CSV wrote the float32 embeddings with 8 significant digits (GDAL's float32 format; a float32
    needs 9): about 2 % of the values read back one float32 step off. Every format now reads back exactly."""
    d, _, _, _, rows, ref = la
    rows.to_parquet(d / "rows.parquet")
    emb = ref.filter(like="s2vec_").to_numpy("float32")
    ids = _s2sphere_ids(rows.geometry)
    assert ref["s2_cell"].astype("uint64").tolist() == ids
    assert max(ids) >= 2**63  # Los Angeles: S2 face 4, ids a signed int64 cannot hold
    for ext in ("geojson", "parquet", "gpkg", "csv"):
        out = d / f"out.{ext}"
        if ext == "geojson":  # end to end once; the other formats through the same writer, of the same frame
            _cli("embed", d / "rows.parquet", "--features", d / "table.parquet", "--out", out)
        else:
            _write_geo(ref, out)
        back = pd.read_csv(out) if ext == "csv" else gpd.read_file(out) if ext != "parquet" else gpd.read_parquet(out)
        assert len(back) == 12 and back["osm_id"].tolist() == rows["osm_id"].tolist(), ext  # rows, in order
        assert [c for c in back.columns if c.startswith("s2vec_")] == [f"s2vec_{k}" for k in range(256)], ext
        got = back.filter(like="s2vec_").to_numpy("float64")
        np.testing.assert_array_equal(got.astype("float32"), emb, err_msg=ext)
        assert [int(v) for v in back["s2_cell"]] == ids, ext  # decimal strings in the GDAL formats: exact
        if ext == "csv":  # EPSG:4326 rows: their WKT is in degrees
            pts = gpd.GeoSeries.from_wkt(back["WKT"])
            np.testing.assert_allclose(np.c_[pts.x, pts.y], np.c_[rows.geometry.x, rows.geometry.y], atol=1e-9)
        else:
            assert back.crs.equals(rows.crs), ext
    # to_file of the frame itself, as docs/embed.md says: s2_cell as decimal text (a uint64 id >= 2**63 fails)
    ref.assign(s2_cell=ref["s2_cell"].astype("string")).to_file(d / "doc.gpkg")
    assert [int(v) for v in gpd.read_file(d / "doc.gpkg")["s2_cell"]] == ids


def test_cli_csv_output_of_projected_rows_is_refused_before_the_work(la, capsys):
    """A CSV file records no CRS: rows in EPSG:3857 were written as WKT in metres with no CRS anywhere."""
    d, _, _, _, rows, _ = la
    rows.to_crs(3857).to_parquet(d / "rows3857.parquet")
    out = d / "rows3857.csv"
    # a feature table that is not one: the refusal must come before it is read
    assert main(["embed", str(d / "rows3857.parquet"), "--features", str(d / "missing.parquet"), "--out",
                 str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "records no coordinate reference system" in err and "EPSG:3857" in err and ".gpkg" in err
    assert not out.exists()
    from geos2vec.cli_embed import _check_csv_crs

    # rows in CRS84 (lon/lat, as EPSG:4326 writes them) pass; a GeoPackage keeps EPSG:3857
    _check_csv_crs(rows.to_crs("OGC:CRS84"), "CSV", out)
    _check_csv_crs(rows.to_crs(3857), "GPKG", d / "rows3857.gpkg")


def test_feather_files_are_read_by_the_readers_and_the_command_line(la):
    """GeoPandas' to_feather files: read_pois/read_roads said 'not recognized as being in a supported file format'
    (GDAL of pyogrio's wheels has no Arrow driver), and the command line printed a traceback."""
    d, pois, roads, table, rows, ref = la
    pois.to_crs(3310).to_feather(d / "pois.feather")
    roads.to_crs(3310).to_feather(d / "roads.arrow")
    p = read_pois(d / "pois.feather", columns=["fclass"])
    assert p.crs.to_epsg() == 4326 and list(p.columns) == ["fclass", "geometry"]
    np.testing.assert_allclose(np.c_[p.geometry.x, p.geometry.y], np.c_[pois.geometry.x, pois.geometry.y],
                               atol=1e-7)
    r = read_roads(d / "roads.arrow")
    assert len(r) == len(roads) and r.crs.to_epsg() == 4326 and r["highway"].tolist() == roads["highway"].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _cli("features", d / "pois.feather", d / "roads.arrow", "--out", d / "t.parquet")
    t = pd.read_parquet(d / "t.parquet")
    pd.testing.assert_frame_equal(t[table.columns].astype("float64"), table.astype("float64"), check_names=False)
    rows.to_crs(3857).to_feather(d / "rows.feather")  # `geos2vec embed rows.feather`'s reader: CRS and index kept
    pd.testing.assert_frame_equal(_read_geo(d / "rows.feather"), rows.to_crs(3857))


def test_a_plain_feather_file_is_refused_with_what_it_lacks(la, capsys):
    d, pois, *_ = la
    plain = pd.DataFrame({"fclass": pois["fclass"], "wkb": pois.geometry.to_wkb()})
    plain.to_feather(d / "plain.feather")
    with pytest.raises(InvalidInputError, match="plain Feather .* no GeoParquet 'geo' metadata"):
        read_pois(d / "plain.feather")
    assert main(["features", str(d / "plain.feather"), "--out", str(d / "t2.parquet")]) == 1
    assert "plain Feather" in capsys.readouterr().err


def test_a_feature_table_saved_as_csv_or_feather_is_read_as_a_table(la):
    """`--features table.csv` (table.to_csv) said "a CSV file needs lon/lat columns", and a Feather table "a plain
    Feather file has no 'geo' metadata": both were read as files of POIs. Signed ids (BigQuery's INT64) too."""
    from geos2vec.cli_embed import _load_features

    d, _, _, table, _, _ = la
    signed = table.reset_index()
    signed["cell_id"] = signed["cell_id"].to_numpy("uint64").view("int64")
    assert (signed["cell_id"] < 0).all()  # Los Angeles: face 4, negative as signed 64-bit integers
    signed.to_csv(d / "table_signed.csv", index=False)
    table.reset_index().to_feather(d / "table.feather")
    for name in ("table_signed.csv", "table.feather"):
        got = _load_features([d / name], 12)  # what `geos2vec embed --features FILE` embeds with
        assert got.index.dtype == "uint64" and got.index.name == "cell_id"
        np.testing.assert_array_equal(got.index, table.index)
        np.testing.assert_array_equal(got[table.columns].to_numpy("float64"), table.to_numpy("float64"))


def test_command_line_reads_integer_and_boolean_fields_with_missing_values_exactly(la, tmp_path):
    """pyogrio reads an integer field with missing values as float64: a 64-bit parcel id 2**53 + 1 came back as
    2**53 (and was written so by `geos2vec embed`), a boolean with a missing value as 1.0/0.0."""
    _, _, _, _, rows, _ = la
    rows = rows.head(3).copy()
    rows["parcel"] = pd.array([2**62 + 1, None, 2**53 + 1], dtype="Int64")
    rows["vacant"] = pd.array([True, None, False], dtype="boolean")
    rows["n"] = np.array([1, 2, 3], dtype="int32")  # no missing value: numpy dtype, as before
    for ext in ("gpkg", "geojson", "shp"):
        path = tmp_path / f"rows.{ext}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # shapefile: 'osm_id' and friends are short enough; nothing to say
            rows.to_file(path)
        got = _read_geo(path)
        assert str(got["vacant"].dtype) == "boolean" and got["vacant"].tolist() == [True, pd.NA, False], ext
        assert got["n"].dtype == np.int32 and got["n"].tolist() == [1, 2, 3], ext
        assert got["osm_id"].dtype.kind == "i" and got["osm_id"].tolist() == rows["osm_id"].tolist(), ext
        if ext != "shp":  # a shapefile stores 64-bit integers as text numbers of 18 digits at most: not tried
            assert str(got["parcel"].dtype) == "Int64" and got["parcel"].tolist() == [2**62 + 1, pd.NA, 2**53 + 1], ext


def test_a_file_without_a_crs_is_refused_naming_it(la, tmp_path, capsys):
    """A shapefile without its .prj said "gdf has no CRS ... call .set_crs('EPSG:4326')": no file, no fix a
    command-line user can apply. Now the file, the missing .prj and the fix; --coverage files too."""
    d, _, _, _, rows, _ = la
    rows.to_file(tmp_path / "homes.shp")
    (tmp_path / "homes.prj").unlink()
    rows.set_crs(None, allow_override=True).to_parquet(tmp_path / "area.parquet")
    rows.to_parquet(tmp_path / "pts.parquet")
    runs = (["embed", tmp_path / "homes.shp", "--features", d / "table.parquet", "--out", tmp_path / "o.parquet"],
            ["features", tmp_path / "pts.parquet", "--coverage", tmp_path / "area.parquet", "--out",
             tmp_path / "t.parquet"])
    for argv, name in zip(runs, ("homes.shp", "area.parquet")):
        assert main([str(a) for a in argv]) == 1
        err = capsys.readouterr().err
        assert f"{name} records no coordinate reference system" in err and "ogr2ogr -a_srs EPSG:4326" in err
        assert (".prj file" in err) == name.endswith(".shp")
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "t.parquet").exists()


def test_a_geopackage_of_several_layers_is_refused_and_a_style_table_is_no_layer(la, tmp_path, capsys):
    """`geos2vec embed city.gpkg` of a GeoPackage with layers 'schools' and 'homes' embedded the schools, with
    pyogrio's "Specify layer parameter" warning that the command line has no option for."""
    d, _, _, _, rows, _ = la
    rows.head(3).to_file(tmp_path / "city.gpkg", layer="schools")
    rows.to_file(tmp_path / "city.gpkg", layer="homes")
    out = tmp_path / "o.parquet"
    assert main(["embed", str(tmp_path / "city.gpkg"), "--features", str(d / "table.parquet"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "2 layers with geometries ['schools', 'homes']" in err and "ogr2ogr schools.gpkg" in err
    assert not out.exists()
    # one layer of rows and QGIS's layer_styles table (no geometries): the rows, without a warning
    import pyogrio

    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["homes"]}), tmp_path / "styled.gpkg", layer="layer_styles")
    rows.to_file(tmp_path / "styled.gpkg", layer="homes")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _read_geo(tmp_path / "styled.gpkg")
    assert got["osm_id"].tolist() == rows["osm_id"].tolist() and got.crs.equals(rows.crs)


def test_a_named_index_of_cell_ids_is_written_to_gdal_formats_as_decimal_text(la, tmp_path):
    """Rows indexed by their own (level-14) cell ids, index named: `geos2vec embed --out x.gpkg` failed after the
    work with a traceback, "OverflowError: Python int too large to convert to C long" (ids >= 2**63)."""
    *_, rows, ref = la
    ids = geos2vec.latlng_to_cell(rows.geometry.y.to_numpy(), rows.geometry.x.to_numpy(), 14)
    assert ids.min() >= 2**63
    out = ref.set_axis(pd.Index(ids, name="cell14"))
    for ext in ("gpkg", "csv"):
        _write_geo(out, tmp_path / f"o.{ext}")
        back = pd.read_csv(tmp_path / "o.csv") if ext == "csv" else gpd.read_file(tmp_path / "o.gpkg")
        assert back.columns[0 if ext == "gpkg" else 1] == "cell14", ext  # the CSV's WKT comes first
        assert [int(v) for v in back["cell14"]] == ids.tolist() and back["osm_id"].tolist() == rows["osm_id"].tolist()


def test_rows_with_two_geometry_columns_are_refused_for_a_gdal_file_before_the_work(la, tmp_path, capsys):
    """GeoParquet rows with a second geometry column (a buffer, a parcel outline) embedded, then failed to write:
    "GeoDataFrame.to_file supports only a single geometry column ... Use GeoDataFrame.to_parquet"."""
    *_, rows, _ = la
    two = rows.head(3).assign(zone=rows.head(3).geometry.to_crs(3310).buffer(50).to_crs(4326))
    two.to_parquet(tmp_path / "two.parquet")
    for ext in ("gpkg", "csv"):
        out = tmp_path / f"o.{ext}"
        # a --features file that does not exist: the refusal comes before it is looked at
        assert main(["embed", str(tmp_path / "two.parquet"), "--features", str(tmp_path / "none.parquet"),
                     "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert "geometry columns ['zone'] besides 'geometry'" in err and "write .parquet" in err, ext
        assert not out.exists()


def test_an_existing_geopackage_with_other_layers_is_not_replaced(la, tmp_path, capsys):
    """`geos2vec embed ... --out city.gpkg` into the analyst's GeoPackage of parcels and schools replaced the file
    with one layer 'city': the parcels and schools were deleted without a word. An earlier run's output (only the
    layer 'city') is still replaced."""
    import pyogrio

    d, _, _, _, rows, ref = la
    rows.to_parquet(tmp_path / "rows.parquet")
    city = tmp_path / "city.gpkg"
    rows.to_file(city, layer="parcels")
    rows.head(2).to_file(city, layer="schools")
    assert main(["embed", str(tmp_path / "rows.parquet"), "--features", str(tmp_path / "none.parquet"), "--out",
                 str(city)]) == 1
    err = capsys.readouterr().err
    assert "holds layer(s) ['parcels', 'schools'], which writing it would delete" in err
    assert pyogrio.list_layers(city)[:, 0].tolist() == ["parcels", "schools"]
    assert gpd.read_file(city, layer="parcels")["osm_id"].tolist() == rows["osm_id"].tolist()
    from geos2vec.cli_embed import _check_other_layers

    _write_geo(ref, tmp_path / "again.gpkg")  # a file of the output's one layer, an earlier output: written over
    _check_other_layers(tmp_path / "again.gpkg", "GPKG")


def test_geojson_feature_ids_are_kept(la, tmp_path):
    """A GeoJSON file's integer feature ids (top-level "id", as Overpass and most web tools write them) are read by
    GDAL as feature ids, not columns: `geos2vec embed` wrote its rows without them."""
    import json

    *_, rows, _ = la
    features = [{"type": "Feature", "id": int(i), "properties": {"name": n},
                 "geometry": {"type": "Point", "coordinates": [p.x, p.y]}}
                for i, n, p in zip(rows["osm_id"], rows["name"], rows.geometry)]
    (tmp_path / "ids.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    got = _read_geo(tmp_path / "ids.geojson")
    assert list(got.columns[:2]) == ["id", "name"] and got["id"].tolist() == rows["osm_id"].tolist()
    _write_geo(got, tmp_path / "out.geojson")  # and written out as a property
    assert [f["properties"]["id"] for f in json.loads((tmp_path / "out.geojson").read_text())["features"]] == \
        rows["osm_id"].tolist()
    rows.to_file(tmp_path / "plain.geojson")  # no ids (GDAL numbers them 0 ... n-1): no column added
    assert "id" not in _read_geo(tmp_path / "plain.geojson").columns


def test_a_csv_of_wkt_geometries_is_refused_with_its_conversion(la, tmp_path, capsys):
    """A CSV with a WKT column (what `geos2vec embed --out x.csv` and GDAL write) was told only that it lacks
    lon/lat columns; now the column and the conversion (WKT records no CRS, so none is guessed)."""
    *_, rows, _ = la
    _write_geo(rows, tmp_path / "rows.csv")
    assert main(["embed", str(tmp_path / "rows.csv"), "--features", str(tmp_path / "t.parquet"), "--out",
                 str(tmp_path / "o.parquet")]) == 1
    err = capsys.readouterr().err
    assert "its column 'WKT' holds WKT geometries, which record no CRS" in err
    assert "geometry=gpd.GeoSeries.from_wkt(df['WKT'])" in err
    # the conversion it gives reads the rows back
    df = pd.read_csv(tmp_path / "rows.csv")
    back = gpd.GeoDataFrame(df.drop(columns="WKT"), geometry=gpd.GeoSeries.from_wkt(df["WKT"]), crs="EPSG:4326")
    assert back["osm_id"].tolist() == rows["osm_id"].tolist()
    np.testing.assert_allclose(back.geometry.x, rows.geometry.x, atol=1e-9)


def test_a_shapefile_category_column_cut_to_10_characters_is_named(la, tmp_path, capsys):
    """A shapefile cuts 'category_name' to 'category_n': `--category category_name` and
    read_pois(category_column='category_name') said only that the column is missing."""
    _, pois, *_ = la
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL's "Normalized/laundered field name" warning
        pois.head(30).rename(columns={"fclass": "category_name"}).to_file(tmp_path / "pois.shp")
    assert main(["features", str(tmp_path / "pois.shp"), "--category", "category_name", "--out",
                 str(tmp_path / "t.parquet")]) == 1
    assert "pass --category category_n" in capsys.readouterr().err
    with pytest.raises(InvalidInputError, match="pass category_column='category_n'"):
        read_pois(tmp_path / "pois.shp", category_column="category_name")
    got = read_pois(tmp_path / "pois.shp", category_column="category_n")
    assert got["category_n"].tolist() == pois["fclass"].head(30).tolist()
