"""Leftovers of earlier reviews: multi-layer GeoPackages in read_pois/read_roads, download_osm's area, GDAL Date
fields through the command line's writer, fit of a built model on images of another level, an empty coverage,
and the second parse of a semicolon CSV.

References: the layers as GeoPandas reads them, pyogrio's field types, hand-made frames and counts.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec
from geos2vec.errors import CoverageWarning, InvalidInputError


def _points(names, xy):
    return gpd.GeoDataFrame({"fclass": names}, geometry=[shapely.Point(x, y) for x, y in xy], crs=4326)


def test_read_pois_and_roads_refuse_a_geopackage_of_several_layers_naming_them(tmp_path):
    """read_pois("city.gpkg") of a GeoPackage with layers 'schools' and 'homes' read the schools (the first layer)
    with only pyogrio's "Specify layer parameter" warning; the command line refuses such files."""
    from geos2vec.io import read_pois, read_roads

    path = tmp_path / "city.gpkg"
    schools = _points(["school"], [(1, 2)])
    homes = _points(["cafe", "pub"], [(3, 4), (5, 6)])
    schools.to_file(path, layer="schools")
    homes.to_file(path, layer="homes")
    with pytest.raises(InvalidInputError, match=r"2 layers with geometries \['schools', 'homes'\]") as err:
        read_pois(path)
    assert "layer='schools'" in str(err.value)
    roads = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])], crs=4326)
    roads.to_file(tmp_path / "net.gpkg", layer="main")
    roads.to_file(tmp_path / "net.gpkg", layer="minor")
    with pytest.raises(InvalidInputError, match=r"read_roads reads a file of one layer"):
        read_roads(tmp_path / "net.gpkg")
    # the way the message names: the layer read first, then passed
    got = read_pois(gpd.read_file(path, layer="homes"))
    assert got["fclass"].tolist() == ["cafe", "pub"]
    # a GeoPackage of one layer with rows (and a table without geometries, QGIS's styles) is read as before
    one = tmp_path / "one.gpkg"
    homes.to_file(one, layer="homes")
    import pyogrio

    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["homes"]}), one, layer="layer_styles")
    assert read_pois(one)["fclass"].tolist() == ["cafe", "pub"]
    assert read_pois(one, columns=["fclass"]).geometry.x.tolist() == [3.0, 5.0]


def test_download_osm_makes_a_projected_area_lnglat_once(tmp_path, monkeypatch):
    """_get_extract checked the area (densified and transformed to lon/lat), then find_extract did it again."""
    from geos2vec.io import download as dl

    body = b"pbf bytes"
    url = "http://example.invalid/europe/liechtenstein-latest.osm.pbf"
    index = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "europe", "urls": {"pbf": "http://example.invalid/europe.osm.pbf"}},
         "geometry": shapely.geometry.mapping(shapely.box(0, 40, 20, 55))},
        {"type": "Feature", "properties": {"id": "liechtenstein", "urls": {"pbf": url}},
         "geometry": shapely.geometry.mapping(shapely.box(9.4, 47.0, 9.7, 47.3))}]}
    (tmp_path / "index-v1.json").write_text(json.dumps(index))
    cache = tmp_path / "cache"
    target = dl._cache_path(cache, url, "liechtenstein")  # a verified cached extract: no network at all
    target.parent.mkdir(parents=True)
    target.write_bytes(body)
    target.with_name(target.name + ".md5").write_text(hashlib.md5(body).hexdigest() + "  x\n")
    area = gpd.GeoSeries([shapely.box(9.5, 47.1, 9.6, 47.2)], crs=4326).to_crs(3857)
    calls = []
    union = dl._lnglat_union
    monkeypatch.setattr(dl, "_lnglat_union", lambda gs: calls.append(len(gs)) or union(gs))
    path = dl.download_osm(area, cache_dir=cache, index_url=str(tmp_path / "index-v1.json"), progress=False)
    assert path == target and path.read_bytes() == body
    assert calls == [1]
    # the public find_extract still takes a frame
    extracts = dl.read_index(str(tmp_path / "index-v1.json"), cache_dir=cache)
    assert dl.find_extract(area, extracts)["id"] == "liechtenstein"
    assert dl.find_extract(gpd.GeoDataFrame(geometry=area), extracts)["id"] == "liechtenstein"


def test_a_date_field_is_written_to_a_geopackage_as_a_date(tmp_path):
    """GDAL Date fields read through Arrow are datetime.date objects, which the writer made a TEXT field of a .gpkg
    output ('2020-01-02' strings when read back)."""
    import pyogrio

    from geos2vec.cli_features import _read_geo, _write_geo

    src = tmp_path / "rows.geojson"
    src.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"surveyed": "2020-01-02", "n": 1},
         "geometry": {"type": "Point", "coordinates": [1, 2]}},
        {"type": "Feature", "properties": {"surveyed": None, "n": 2},
         "geometry": {"type": "Point", "coordinates": [3, 4]}},
        {"type": "Feature", "properties": {"surveyed": "1999-12-31", "n": 3},
         "geometry": {"type": "Point", "coordinates": [5, 6]}}]}))
    rows = _read_geo(src)
    assert rows["surveyed"].tolist()[::2] == [datetime.date(2020, 1, 2), datetime.date(1999, 12, 31)]
    out = tmp_path / "out.gpkg"
    _write_geo(rows, out)
    info = pyogrio.read_info(out)
    assert dict(zip(info["fields"], info["dtypes"])) == {"surveyed": "datetime64[D]", "n": "int32"}
    back = _read_geo(out)
    assert back["surveyed"].tolist()[::2] == [datetime.date(2020, 1, 2), datetime.date(1999, 12, 31)]
    assert back["surveyed"].isna().tolist() == [False, True, False]
    assert back["n"].tolist() == [1, 2, 3] and back.geometry.x.tolist() == [1.0, 3.0, 5.0]
    # GeoParquet keeps them as dates; a frame without dates is written as before
    _write_geo(rows, tmp_path / "out.parquet")
    assert gpd.read_parquet(tmp_path / "out.parquet")["surveyed"].tolist()[0] == datetime.date(2020, 1, 2)
    _write_geo(rows.drop(columns="surveyed"), tmp_path / "plain.gpkg")
    assert pyogrio.read_info(tmp_path / "plain.gpkg")["fields"].tolist() == ["n"]


def _images(level, image_level):
    rng = np.random.default_rng(5)
    pois = pd.DataFrame({"lon": rng.uniform(-74.0, -73.99, 300), "lat": rng.uniform(40.70, 40.71, 300),
                         "fclass": rng.choice(["cafe", "restaurant", "school"], 300)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return geos2vec.rasterize(geos2vec.count_features(pois, level=level), image_level=image_level)


def test_fit_of_a_built_model_refuses_images_of_another_level():
    """S2VecModel.fit trained the bundled level-12 model on 16 x 16 level-10 images of level-14 cells (the grid
    matched); embed and evaluate refuse them."""
    pytest.importorskip("tensorflow")
    model = geos2vec.load_model("default")
    da14, da12 = _images(14, 10), _images(12, 8)
    with pytest.raises(InvalidInputError, match="these images hold level-14 cells, but the model embeds level-12"):
        model.fit(da14, epochs=1, verbose=0)
    with pytest.raises(InvalidInputError, match="these images hold level-14 cells, but the model embeds level-12"):
        model.fit(da12, validation_data=da14, epochs=1, verbose=0)
    assert (model.image_level, model.patch_level) == (8, 12)


def test_an_empty_coverage_warns_that_it_covers_nothing():
    """coverage=GeoSeries([]) (a clip or query with no rows) recorded 'covers nothing': every cell without counts
    unknown, with no word, or with "lie outside the coverage (bounds (nan, nan, nan, nan)); another CRS?"."""
    from geos2vec.coverage import get_coverage

    pois = pd.DataFrame({"lon": [-73.995, -73.996], "lat": [40.705, 40.706], "fclass": ["cafe", "school"]})
    for cov in (gpd.GeoSeries([], crs=4326), gpd.GeoDataFrame(geometry=gpd.GeoSeries([None], crs=3857))):
        for frame in (pois, pois.iloc[:0]):
            with pytest.warns(CoverageWarning, match="the coverage is empty") as rec:
                table = geos2vec.count_features(frame, level=12, coverage=cov)
            assert not any("bounds (nan" in str(w.message) for w in rec)
            assert get_coverage(table)[0].is_empty  # recorded as given
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)  # a real area: no warning
        table = geos2vec.count_features(pois, level=12, coverage=(-74.0, 40.7, -73.99, 40.71))
    assert table.to_numpy().sum() == 2


def test_a_semicolon_csv_without_commas_is_parsed_once(tmp_path, monkeypatch):
    """read_csv_utf8 parsed every semicolon CSV twice (the second time as text, for decimal commas)."""
    from geos2vec import _textfile

    plain = tmp_path / "plain.csv"
    plain.write_text("name;lon;lat;n\nA;-46.63;-23.55;1\nB;-46.64;-23.56;\n")
    euro = tmp_path / "euro.csv"
    euro.write_text("name;lon;lat;n\nA;-46,63;-23,55;1.000\nB;-46,64;-23,56;\n")
    calls = []
    read = pd.read_csv
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: calls.append(k.get("dtype")) or read(*a, **k))
    df = _textfile.read_csv_utf8(plain, "CSV file")
    assert calls == [None]
    pd.testing.assert_frame_equal(df, read(plain, sep=";"))
    assert df["lon"].tolist() == [-46.63, -46.64] and df["n"].isna().tolist() == [False, True]
    calls.clear()
    df = _textfile.read_csv_utf8(euro, "CSV file")  # decimal commas: read as text too, as before
    assert calls == [None, str]
    assert df["lon"].tolist() == [-46.63, -46.64] and df["lat"].tolist() == [-23.55, -23.56]
    assert df["n"].tolist()[0] == 1000.0 and np.isnan(df["n"].tolist()[1])
    assert Path(euro).read_text().count(",") == 4
