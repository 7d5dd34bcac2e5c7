"""A user fetching OpenStreetMap data through a local mirror (tests/_http.py; no network): awkward inputs."""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec.errors import DownloadError, InvalidInputError, InvalidTypeError, NoExtractError
from geos2vec.io import download_osm, osm_features, read_osm
from geos2vec.io.download import read_index

from _http import Server, mirror

pytest.importorskip("osmium")

BOX = (9.45, 47.03, 9.66, 47.28)  # around the Liechtenstein extract's data
AREA = (9.50, 47.10, 9.56, 47.18)


@pytest.fixture()
def real(shared_data):
    body = (shared_data / "osm" / "liechtenstein-latest.osm.pbf").read_bytes()
    srv = mirror(body, BOX)
    srv.body = body
    yield srv
    srv.close()


def _kw(srv, tmp_path):
    return {"cache_dir": tmp_path / "cache", "index_url": srv.url + "/index-v1.json", "progress": False,
            "backoff": 0.01}


def test_osm_features_of_a_projected_frame_match_reading_the_file_by_hand(real, tmp_path, shared_data):
    import geopandas as gpd

    from geos2vec.features import count_features

    homes = gpd.GeoDataFrame(geometry=gpd.points_from_xy([9.521, 9.532], [47.141, 47.16]), crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # categories outside the ontology
        table = osm_features(homes.to_crs(2056), **_kw(real, tmp_path))
        region = shapely.from_wkt(table.attrs["coverage"]["geometry"])
        pad = 16 * 90.0 / (1 << 12) * 1.2  # 16 average level-12 cells, in degrees
        expected = shapely.box(9.521 - pad, 47.141 - pad, 9.532 + pad, 47.16 + pad).intersection(shapely.box(*BOX))
        assert region.equals_exact(expected, 1e-6)
        path = shared_data / "osm" / "liechtenstein-latest.osm.pbf"
        pois, roads = read_osm(path, area=expected)
        ref = count_features(pois, roads, coverage=expected)
    pd.testing.assert_frame_equal(table, ref)
    assert table.attrs["source"]["osm_extract"] == "liechtenstein"


def test_a_polygon_in_metres_is_named_as_such_not_as_no_extract(real, tmp_path):
    with pytest.raises(InvalidInputError, match="not longitude/latitude degrees.*transform") as info:
        download_osm(shapely.box(1_050_000, 5_950_000, 1_060_000, 5_960_000), **_kw(real, tmp_path))
    assert not isinstance(info.value, NoExtractError)


@pytest.mark.parametrize("kw, err, match", [
    ({"margin": float("nan")}, InvalidInputError, "margin"),   # read the whole file with no coverage
    ({"margin": -0.05}, InvalidInputError, "margin"),          # shrank the region inside the area
    ({"level": "12"}, InvalidTypeError, "level"),              # a raw TypeError, after the download
    ({"level": -1}, InvalidInputError, "level"),
    ({"retries": -1}, InvalidInputError, "retries"),
])
def test_bad_options_are_clear_errors_before_any_download(real, tmp_path, kw, err, match):
    with pytest.raises(err, match=match):
        osm_features(AREA, **_kw(real, tmp_path), **kw)
    assert [p for p, _ in real.log if p.endswith(".pbf")] == []


def test_a_point_with_margin_zero_says_to_widen_it(real, tmp_path):
    with pytest.raises(InvalidInputError, match="margin > 0"):
        osm_features(shapely.Point(9.52, 47.14), margin=0, **_kw(real, tmp_path))


def test_an_index_given_as_a_local_path(real, tmp_path):
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "li.osm.pbf").write_bytes(real.body)
    (folder / "li.osm.pbf.md5").write_text(hashlib.md5(real.body).hexdigest() + "  li.osm.pbf\n")
    index = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "li", "urls": {"pbf": (folder / "li.osm.pbf").as_uri()}},
         "geometry": shapely.geometry.mapping(shapely.box(*BOX))}]}
    (folder / "index-v1.json").write_text(json.dumps(index))
    path = download_osm(AREA, cache_dir=tmp_path / "cache", index_url=str(folder / "index-v1.json"), progress=False)
    assert path.read_bytes() == real.body
    with pytest.raises(InvalidInputError, match="http"):
        download_osm(AREA, cache_dir=tmp_path / "cache2", index_url="htps://example.org/index-v1.json")


def test_an_empty_verification_mark_is_not_trusted(real, tmp_path):
    path = download_osm(AREA, **_kw(real, tmp_path))
    mark = path.with_name(path.name + ".md5")
    mark.write_text("")  # a damaged cache (killed while writing, a full disk)
    assert download_osm(AREA, **_kw(real, tmp_path)).read_bytes() == real.body
    assert mark.read_text().split()[0] == hashlib.md5(real.body).hexdigest()


@pytest.mark.parametrize("doc", [[], {"features": [{"type": "Feature", "properties": None, "geometry": None}]},
                                 {"features": [{"properties": {"urls": {"pbf": "http://x/y.osm.pbf"}},
                                                "geometry": {"type": "Polygon", "coordinates": "no"}}]}])
def test_an_index_in_another_format_is_a_download_error(tmp_path, doc):
    srv = Server({"/index-v1.json": json.dumps(doc).encode()})
    try:
        with pytest.raises(DownloadError, match="index-v1.json format"):
            read_index(srv.url + "/index-v1.json", cache_dir=tmp_path)
    finally:
        srv.close()


def test_a_cut_off_real_extract_leaves_only_a_part_file(real, tmp_path):
    real.cut = len(real.body) // 2
    with pytest.raises(DownloadError, match="try again later"):
        download_osm(AREA, **_kw(real, tmp_path), retries=0)
    left = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file() and "index" not in p.parts)
    assert left == ["liechtenstein-latest.osm.pbf.part"]
    path = download_osm(AREA, **_kw(real, tmp_path))
    assert path.read_bytes() == real.body
    assert np.array_equal(sorted(p.name for p in path.parent.iterdir()),
                          ["liechtenstein-latest.osm.pbf", "liechtenstein-latest.osm.pbf.md5"])


def test_an_area_across_two_extracts_names_them(tmp_path):
    srv = Server({})
    feats = [{"type": "Feature", "properties": {"id": i, "urls": {"pbf": f"{srv.url}/{i}.osm.pbf"}},
              "geometry": shapely.geometry.mapping(shapely.box(x0, 47, x1, 48))}
             for i, x0, x1 in (("west", 9.0, 9.55), ("east", 9.55, 10.0), ("far", 20.0, 21.0))]
    srv.files = {"/index-v1.json": json.dumps({"type": "FeatureCollection", "features": feats}).encode()}
    try:
        with pytest.raises(NoExtractError, match=r"overlaps west, east\. Split the area"):
            download_osm((9.5, 47.1, 9.6, 47.2), cache_dir=tmp_path, index_url=srv.url + "/index-v1.json")
    finally:
        srv.close()


def test_a_cut_off_pbf_passed_to_read_osm_says_to_download_it_again(real, tmp_path):
    half = tmp_path / "half.osm.pbf"
    half.write_bytes(real.body[: len(real.body) // 2])
    with pytest.raises(InvalidInputError, match="cut short.*Download it again"):
        read_osm(half)
