"""download_osm against a local HTTP server (127.0.0.1): no network. read_osm(area=...) clipping."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import shapely

from geos2vec.errors import ChecksumError, DownloadError, NoExtractError
from geos2vec.io import download_osm, read_osm
from geos2vec.io.download import find_extract, read_index

from _http import Server as _Server

osmium = pytest.importorskip("osmium")


def _write_pbf(path):
    """A tiny sorted .osm.pbf: 4 café nodes, one road of 3 nodes crossing x=9.55."""
    with osmium.SimpleWriter(str(path)) as w:
        pts = [(1, 9.50, 47.10, {"amenity": "cafe"}), (2, 9.52, 47.12, {"amenity": "cafe"}),
               (3, 9.58, 47.15, {"amenity": "cafe"}), (4, 9.60, 47.20, {"amenity": "cafe"}),
               (10, 9.50, 47.16, {}), (11, 9.55, 47.16, {}), (12, 9.60, 47.16, {})]
        for nid, lon, lat, tags in pts:
            w.add_node(osmium.osm.mutable.Node(id=nid, location=(lon, lat), tags=tags, version=1))
        w.add_way(osmium.osm.mutable.Way(id=20, nodes=[10, 11, 12], tags={"highway": "residential"}, version=1))


@pytest.fixture()
def server(tmp_path):
    pbf = tmp_path / "tiny.osm.pbf"
    _write_pbf(pbf)
    body = pbf.read_bytes()
    srv = _Server({})
    big = shapely.box(0, 40, 20, 55)
    small = shapely.box(9.4, 47.0, 9.7, 47.3)
    index = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "europe", "name": "Europe",
                                           "urls": {"pbf": srv.url + "/europe-latest.osm.pbf"}},
         "geometry": shapely.geometry.mapping(big)},
        {"type": "Feature", "properties": {"id": "liechtenstein", "parent": "europe", "name": "Liechtenstein",
                                           "urls": {"pbf": srv.url + "/europe/liechtenstein-latest.osm.pbf"}},
         "geometry": shapely.geometry.mapping(small)},
        {"type": "Feature", "properties": {"id": "no-url", "name": "broken"}, "geometry": None},
    ]}
    srv.files = {
        "/index-v1.json": json.dumps(index).encode(),
        "/europe/liechtenstein-latest.osm.pbf": body,
        "/europe/liechtenstein-latest.osm.pbf.md5":
            (hashlib.md5(body).hexdigest() + "  liechtenstein-latest.osm.pbf\n").encode(),
        "/europe-latest.osm.pbf": b"not used",
    }
    srv.body = body
    yield srv
    srv.close()


def _dl(server, tmp_path, area=(9.5, 47.1, 9.6, 47.2), **kw):
    return download_osm(area, cache_dir=tmp_path / "cache", index_url=server.url + "/index-v1.json",
                        progress=False, backoff=0.01, **kw)


def test_smallest_covering_extract_downloaded_verified_and_cached(server, tmp_path):
    path = _dl(server, tmp_path)
    assert path.read_bytes() == server.body and path.name == "liechtenstein-latest.osm.pbf"
    assert (path.parent / (path.name + ".md5")).read_text().split()[0] == hashlib.md5(server.body).hexdigest()
    assert not list(path.parent.glob("*.part"))
    n = len(server.log)
    assert _dl(server, tmp_path) == path  # cache hit: no request at all (index cached too)
    assert len(server.log) == n
    # an area only the continent covers picks the continent
    extracts = read_index(server.url + "/index-v1.json", cache_dir=tmp_path / "cache")
    assert [e["id"] for e in extracts] == ["europe", "liechtenstein"]  # the entry without a URL is skipped
    assert find_extract((5, 45, 10, 50), extracts)["id"] == "europe"
    assert find_extract(shapely.Point(9.55, 47.15), extracts)["id"] == "liechtenstein"


def test_corrupted_cache_is_fetched_again(server, tmp_path):
    path = _dl(server, tmp_path)
    path.write_bytes(path.read_bytes()[:-10])  # damaged after verification
    assert _dl(server, tmp_path).read_bytes() == server.body


def test_no_extract_covers_the_area(server, tmp_path):
    with pytest.raises(NoExtractError, match="no extract of the index covers") as info:
        _dl(server, tmp_path, area=(30, 0, 31, 1))
    assert isinstance(info.value, ValueError)


def test_bad_checksum_leaves_no_file(server, tmp_path):
    server.files["/europe/liechtenstein-latest.osm.pbf.md5"] = b"0" * 32 + b"  x\n"
    with pytest.raises(ChecksumError, match="MD5"):
        _dl(server, tmp_path)
    files = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.suffix != ".json"]
    assert files == []  # neither the extract, nor a .part, nor a verification mark


def test_interrupted_download_is_resumed_and_never_accepted_half(server, tmp_path):
    server.cut = 100
    # with no retry left the cut-off body is an error, and only a .part remains
    with pytest.raises(DownloadError, match="kept breaking off"):
        _dl(server, tmp_path, retries=0)
    cached = [p for p in (tmp_path / "cache").rglob("*.pbf*")]
    assert [p.name for p in cached] == ["liechtenstein-latest.osm.pbf.part"]
    assert cached[0].stat().st_size == 100
    # the next call resumes from byte 100 with a Range request and verifies the whole file
    path = _dl(server, tmp_path)
    assert path.read_bytes() == server.body
    assert ("/europe/liechtenstein-latest.osm.pbf", "bytes=100-") in server.log
    # within one call, a cut-off body is retried
    server.cut = 50
    assert _dl(server, tmp_path, refresh=True).read_bytes() == server.body


def test_a_damaged_cached_index_names_the_fix(server, tmp_path):
    url = server.url + "/index-v1.json"
    assert len(read_index(url, cache_dir=tmp_path / "cache")) == 2
    cached, = (tmp_path / "cache" / "index").iterdir()
    cached.write_bytes(cached.read_bytes()[:50])          # cut short (a full disk, a killed copy)
    with pytest.raises(DownloadError, match="damaged.*refresh=True"):
        read_index(url, cache_dir=tmp_path / "cache")
    assert len(read_index(url, cache_dir=tmp_path / "cache", refresh=True)) == 2


def test_a_local_write_error_is_not_retried_as_a_broken_download(server, tmp_path, monkeypatch):
    import errno

    import geos2vec.io.download as dl

    real_open = open

    class DiskFull:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        return DiskFull(f) if str(path).endswith(".part") else f

    monkeypatch.setattr(dl, "open", fake_open, raising=False)
    with pytest.raises(DownloadError, match="could not write .*No space left on device.*GEOS2VEC_CACHE"):
        _dl(server, tmp_path)
    assert [p for p, _ in server.log].count("/europe/liechtenstein-latest.osm.pbf") == 1  # not retried


def test_server_errors_are_retried(server, tmp_path):
    server.fail = 2
    assert _dl(server, tmp_path, retries=3).read_bytes() == server.body
    server.fail = 10
    with pytest.raises(DownloadError, match="after 2 tries: HTTP 503"):
        _dl(server, tmp_path, retries=1, refresh=True)


def test_not_found_fails_at_once(server, tmp_path):
    del server.files["/europe/liechtenstein-latest.osm.pbf.md5"]
    with pytest.raises(DownloadError, match="HTTP 404"):
        _dl(server, tmp_path)
    assert sum(p.endswith(".md5") for p, _ in server.log) == 1


def test_offline_is_a_clear_error(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    with pytest.raises(DownloadError, match="could not download .* after 2 tries") as info:
        download_osm((9.5, 47.1, 9.6, 47.2), cache_dir=tmp_path, index_url=f"http://127.0.0.1:{port}/index.json",
                     retries=1, backoff=0.01)
    assert isinstance(info.value, OSError) and "network" in str(info.value)


def test_read_osm_clips_to_the_area(tmp_path):
    pbf = tmp_path / "tiny.osm.pbf"
    _write_pbf(pbf)
    full = read_osm(pbf)
    assert len(full.pois) == 4 and len(full.roads) == 1
    area = (9.49, 47.05, 9.555, 47.17)
    pois, roads = read_osm(pbf, area=area)
    assert sorted(pois["osm_id"]) == [1, 2]
    assert len(roads) == 1
    np.testing.assert_allclose(shapely.get_coordinates(roads.geometry.values),
                                                       [[9.50, 47.16], [9.55, 47.16], [9.555, 47.16]])
    # a polygon area that cuts the road twice keeps both pieces in one row; one that misses it drops the row
    u = shapely.Polygon([(9.49, 47.0), (9.515, 47.0), (9.515, 47.2), (9.49, 47.2)]).union(
        shapely.box(9.59, 47.0, 9.61, 47.2))
    pois, roads = read_osm(pbf, area=u)
    assert sorted(pois["osm_id"]) == [1, 4]  # 4 lies on the boundary: kept
    assert len(roads) == 1 and roads.geometry.iloc[0].geom_type == "MultiLineString"
    assert shapely.get_num_geometries(roads.geometry.iloc[0]) == 2
    pois, roads = read_osm(pbf, area=(9.49, 47.0, 9.53, 47.15))
    assert sorted(pois["osm_id"]) == [1, 2] and len(roads) == 0


def test_embed_features_osm_downloads_counts_and_records_coverage(server, tmp_path, monkeypatch):
    import geopandas as gpd

    from geos2vec.features import count_features
    from geos2vec.io.download import osm_features

    monkeypatch.setenv("GEOS2VEC_OSM_INDEX", server.url + "/index-v1.json")
    monkeypatch.setenv("GEOS2VEC_CACHE", str(tmp_path / "cache"))
    homes = gpd.GeoDataFrame({"v": [1, 2]}, geometry=gpd.points_from_xy([9.51, 9.59], [47.11, 47.19]), crs=4326,
                             index=[10, 3])
    table = osm_features(homes, progress=False)
    region = shapely.from_wkt(table.attrs["coverage"]["geometry"])
    assert region.equals(shapely.box(9.4, 47.0, 9.7, 47.3))  # the margin reaches past the extract: clipped to it
    assert table.attrs["source"]["osm_extract"] == "liechtenstein"
    pois, roads = read_osm(next((tmp_path / "cache").rglob("liechtenstein-latest.osm.pbf")))
    ref = count_features(pois, roads)  # everything in the tiny file lies inside the region
    assert table.index.equals(ref.index) and (table.to_numpy() == ref.to_numpy()).all()
    assert table["cafe"].sum() == 4 and table["road"].sum() >= 1
    out = homes.s2vec.embed(features="osm")
    assert list(out.index) == [10, 3] and out["v"].tolist() == [1, 2]
    assert out.filter(like="s2vec_").notna().all().all()


@pytest.mark.parametrize("extra", [b"", b"junk after the end"])
def test_a_leftover_part_as_long_as_the_file_is_fetched_again(server, tmp_path, extra):
    """A .part as long as the extract or longer (a run killed after its last byte, a changed upstream file):
    the server answers the Range request with 416; the download starts over and is verified."""
    _dl(server, tmp_path / "first")  # learn where the .part goes
    final, = [p for p in (tmp_path / "first" / "cache").rglob("*.osm.pbf")]
    part = tmp_path / "cache" / final.relative_to(tmp_path / "first" / "cache")
    part = part.with_name(part.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"\0" * len(server.body) + extra)  # the right length (or longer), wrong bytes
    server.log.clear()
    path = _dl(server, tmp_path)
    assert path.read_bytes() == server.body and not part.exists()
    pbf_requests = [r for p, r in server.log if p.endswith(".pbf")]
    assert pbf_requests == [f"bytes={len(server.body) + len(extra)}-", None]  # 416, then the whole file


@pytest.mark.parametrize("area, match", [
    ((10, 47, 9, 48), "min_lon, min_lat, max_lon, max_lat"),
    ((9, 47, 10, float("nan")), "min_lon, min_lat, max_lon, max_lat"),
    (shapely.Polygon(), "empty geometry"),
    ("Liechtenstein", "area must be a GeoDataFrame"),
])
def test_bad_areas_are_clear_errors(server, tmp_path, area, match):
    from geos2vec.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=match):
        _dl(server, tmp_path, area=area)


def test_areas_as_frames(server, tmp_path):
    """A GeoDataFrame in any CRS is reprojected; one without a CRS, or with only empty rows, is an error."""
    import geopandas as gpd

    from geos2vec.errors import InvalidInputError

    pts = gpd.GeoDataFrame(geometry=[shapely.Point(9.52, 47.12), shapely.Point(9.58, 47.15), None], crs=4326)
    assert _dl(server, tmp_path, area=pts.to_crs(3857)).read_bytes() == server.body
    with pytest.raises(InvalidInputError, match="no CRS"):
        _dl(server, tmp_path, area=pts.set_crs(None, allow_override=True))
    with pytest.raises(InvalidInputError, match="no geometry"):
        _dl(server, tmp_path, area=gpd.GeoSeries([None, shapely.Point()], crs=4326))
