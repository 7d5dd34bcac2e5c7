"""Models, statistics and extract indexes that other people made: hostile-but-plausible files are refused.

Every hostile file is built under ``tmp_path``; a download's mirror is a server on 127.0.0.1 (tests/_http.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile

import pytest
import shapely

import geos2vec
from geos2vec.errors import DownloadError, InvalidInputError, ModelFormatError
from geos2vec.model.config import S2VecConfig
from geos2vec.normalize import FeatureStats

from _http import Server

DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON that Python's parser cannot read (RecursionError)
HUGE_INT = '{"count": ' + "9" * 5000 + "}"  # over Python's 4300-digit limit (a bare ValueError)
MODEL_FILES = ("weights.npz", "config.json", "feature_stats.json", "metadata.json")


@pytest.mark.parametrize("text", [DEEP, HUGE_INT], ids=["nested", "huge-int"])
def test_unreadable_json_is_refused_naming_the_file(tmp_path, text):
    path = tmp_path / "stats.json"
    path.write_text(text)
    for load in (FeatureStats.load, S2VecConfig.load):  # were a bare RecursionError / ValueError
        with pytest.raises(InvalidInputError, match="stats.json is not valid JSON"):
            load(path)


@pytest.mark.parametrize("name", ["metadata.json", "feature_stats.json"])
def test_deeply_nested_model_json_is_a_model_format_error(copy, name):
    (copy / name).write_text(DEEP)
    with pytest.raises(ModelFormatError, match=f"{name} is not valid JSON"):
        geos2vec.load_model(copy)


def _zip(copy, path, replace=None):
    """The model folder ``copy`` as a zip, with ``replace`` = (name, writer) streamed instead of that file."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in MODEL_FILES:
            if replace and name == replace[0]:
                with zf.open(name, "w", force_zip64=True) as fh:
                    replace[1](fh)
            else:
                zf.write(copy / name, name)
    return path


def test_deeply_nested_metadata_in_a_zip_is_a_model_format_error(copy, tmp_path):
    z = _zip(copy, tmp_path / "m.zip", ("metadata.json", lambda fh: fh.write(DEEP.encode())))
    with pytest.raises(ModelFormatError, match="metadata.json is not valid JSON"):
        geos2vec.load_model(z)


@pytest.mark.parametrize("name", ["metadata.json", "weights.npz"])
def test_a_zip_bomb_is_refused_before_it_is_inflated(copy, tmp_path, name, monkeypatch):
    def bomb(fh):  # 80 MiB of zeros: ~80 KB compressed (a real bomb is 1000x more of the same)
        block = bytes(1 << 20)
        for _ in range(80):
            fh.write(block)

    z = _zip(copy, tmp_path / "bomb.zip", (name, bomb))
    assert z.stat().st_size < 2 * sum((copy / f).stat().st_size for f in MODEL_FILES)
    with zipfile.ZipFile(z) as zf:  # the zip's directory tells the inflated size (the zipfile module stops there)
        assert zf.getinfo(name).file_size == 80 << 20
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, member, *a, **k: (
        opened.append(getattr(member, "filename", member)), real_open(self, member, *a, **k))[1])
    with pytest.raises(ModelFormatError, match=f"{name} would inflate .* to 83,886,080 bytes.*zip bomb"):
        geos2vec.load_model(z)
    assert name not in opened  # nothing of it was read (metadata.json into memory, the weights onto disk)


def test_a_zip_member_with_a_path_is_never_written_outside(copy, tmp_path):
    z = _zip(copy, tmp_path / "m.zip")
    with zipfile.ZipFile(z, "a") as zf:
        zf.writestr("../../escaped.txt", "x")
        zf.writestr("/tmp/escaped-abs.txt", "x")
    model = geos2vec.load_model(z)
    assert model.channels == json.loads((copy / "metadata.json").read_text())["channels"]
    assert not any(p.name.startswith("escaped") for p in tmp_path.rglob("*"))


def test_a_model_file_that_is_a_folder_is_a_model_format_error(copy):
    (copy / "config.json").unlink()
    (copy / "config.json").mkdir()  # was a raw IsADirectoryError
    with pytest.raises(ModelFormatError, match="config.json is not a regular file"):
        geos2vec.load_model(copy)


@pytest.mark.skipif(not os.path.exists("/dev/zero") or sys.platform == "win32", reason="needs /dev/zero")
@pytest.mark.parametrize("name", ["metadata.json", "feature_stats.json", "weights.npz"])
def test_a_model_file_linked_to_an_endless_device_is_refused_at_once(copy, name):
    (copy / name).unlink()
    (copy / name).symlink_to("/dev/zero")  # read until the memory ran out (MemoryError, or the OOM killer)
    out = _load_in_subprocess(copy)
    assert out.startswith("ModelFormatError") and "is not a regular file" in out, out


def _hostile_mirror(pbf_path, extract_id="x", index_text=None):
    srv = Server({})
    body = b"not an extract"
    url = srv.url + pbf_path
    index = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": extract_id, "urls": {"pbf": url}},
         "geometry": shapely.geometry.mapping(shapely.box(0, 0, 10, 10))}]}
    srv.files = {"/index-v1.json": (index_text or json.dumps(index)).encode(), pbf_path: body,
                 pbf_path + ".md5": hashlib.md5(body).hexdigest().encode()}
    return srv


@pytest.mark.parametrize("pbf_path, extract_id", [
    ("/europe/../../../../escaped.osm.pbf", "x"),   # wrote tmp_path/escaped.osm.pbf and its .md5
    ("", "../../../../escaped"),                     # no path in the URL: the id names the file
    ("", "ABSOLUTE"),                                # an absolute id (here one inside tmp_path)
])
def test_an_index_cannot_make_the_download_write_outside_the_cache(tmp_path, pbf_path, extract_id):
    from geos2vec.io import download_osm

    cache = tmp_path / "a" / "b" / "cache"
    if extract_id == "ABSOLUTE":
        extract_id = str(tmp_path / "escaped-abs")
    srv = _hostile_mirror(pbf_path, extract_id)
    try:
        before = time.time()
        with pytest.raises(DownloadError, match="inside the cache folder.*broken or hostile"):
            download_osm((1, 1, 2, 2), cache_dir=cache, index_url=srv.url + "/index-v1.json", progress=False,
                         backoff=0.01, retries=0)
        assert [p for p, _ in srv.log] == ["/index-v1.json"]  # refused before any request for the extract
    finally:
        srv.close()
    outside = [p for p in tmp_path.rglob("*") if cache not in p.parents and p != cache and p not in cache.parents]
    assert outside == []
    assert time.time() - before < 30


def test_a_deeply_nested_index_is_a_download_error(tmp_path):
    from geos2vec.io.download import read_index

    srv = _hostile_mirror("/x.osm.pbf", index_text=DEEP)
    try:
        with pytest.raises(DownloadError, match="did not return JSON"):  # was a raw RecursionError
            read_index(srv.url + "/index-v1.json", cache_dir=tmp_path, retries=0)
    finally:
        srv.close()


def _load_in_subprocess(folder, timeout=60):
    """``type: message`` of load_model(folder) in a child process (memory capped, killed after ``timeout``)."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); import geos2vec\n"
            "try:\n    geos2vec.load_model(sys.argv[1]); print('loaded')\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=timeout)
    return out.stdout + out.stderr[-2000:]


@pytest.mark.parametrize("sums", [[1], "abc", {"weights.npz": 5}], ids=["list", "string", "number"])
def test_a_bad_files_sha256_is_a_model_format_error(copy, sums):
    meta = json.loads((copy / "metadata.json").read_text())
    meta["files_sha256"] = sums  # a list or string raised a bare AttributeError
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="files_sha256 must map"):
        geos2vec.load_model(copy)


@pytest.mark.skipif(not os.path.exists("/dev/zero") or sys.platform == "win32", reason="needs /dev/zero")
@pytest.mark.parametrize("name", ["/dev/zero", "../../../../../../../../dev/zero", "notes.bin"])
def test_files_sha256_cannot_make_the_load_read_another_file(copy, name):
    if name == "notes.bin":  # a name beside the model's files, linked to an endless device
        (copy / name).symlink_to("/dev/zero")
    meta = json.loads((copy / "metadata.json").read_text())
    meta["files_sha256"][name] = "0" * 64  # the check read that file for ever
    (copy / "metadata.json").write_text(json.dumps(meta))
    out = _load_in_subprocess(copy)
    if name == "notes.bin":  # not a file the model reads: not checked (a newer release's file, say)
        assert out.startswith("loaded"), out
    else:
        assert out.startswith("ModelFormatError") and "files_sha256 must map" in out, out


def test_malformed_index_entries_are_skipped_like_ones_without_a_url(tmp_path):
    from geos2vec.io.download import read_index

    srv = Server({})
    good = {"id": "good", "urls": {"pbf": srv.url + "/good.osm.pbf"}}
    bad = [{"id": "a", "urls": "http://x/a.osm.pbf"}, {"id": "b", "urls": {"pbf": 5}}, [1, 2],
           {"id": "d", "urls": {"pbf": ["http://x/d.osm.pbf"]}}]  # raw AttributeError / TypeError
    box = shapely.geometry.mapping(shapely.box(0, 0, 10, 10))
    index = {"type": "FeatureCollection",
             "features": [{"type": "Feature", "properties": p, "geometry": box} for p in [*bad, good]]}
    srv.files = {"/index-v1.json": json.dumps(index).encode()}
    try:
        extracts = read_index(srv.url + "/index-v1.json", cache_dir=tmp_path, retries=0)
    finally:
        srv.close()
    assert [(e["id"], e["pbf"]) for e in extracts] == [("good", good["urls"]["pbf"])]
    assert extracts[0]["geometry"].equals(shapely.box(0, 0, 10, 10))


def _patch_member(zip_path, member, *, method=None, flags=None):
    """Set a member's compression method / flag bits in its local header and central directory entry."""
    import struct

    data = bytearray(zip_path.read_bytes())
    with zipfile.ZipFile(zip_path) as zf:
        local = zf.getinfo(member).header_offset
    central = data.find(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(member)] != member.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    for at, field in ((local + 8, central + 10), (local + 6, central + 8)):
        value = method if at == local + 8 else flags
        if value is not None:
            data[at:at + 2] = data[field:field + 2] = struct.pack("<H", value)
    zip_path.write_bytes(data)


@pytest.mark.parametrize("kw, match", [
    ({"method": 9}, "compressed with method 9.*unzip it yourself"),  # Deflate64 (Windows, 7-Zip): NotImplementedError
    ({"flags": 1}, "encrypted.*unzip it yourself"),                  # a password: a bare RuntimeError
])
@pytest.mark.parametrize("member", ["metadata.json", "weights.npz"])
def test_a_zip_that_zipfile_cannot_read_says_to_unzip_it(copy, tmp_path, kw, match, member):
    z = _zip(copy, tmp_path / "m.zip")
    _patch_member(z, member, **kw)
    with zipfile.ZipFile(z) as zf:  # what the patch made of it, read by zipfile itself
        info = zf.getinfo(member)
        assert (info.compress_type, info.flag_bits & 1) == (kw.get("method", 8), kw.get("flags", 0))
    with pytest.raises(ModelFormatError, match=f"{member} is {match}"):
        geos2vec.load_model(z)


def test_a_content_length_that_is_not_a_number_is_taken_as_unknown(tmp_path):
    import http.server
    import threading

    from geos2vec.io import download_osm

    body = bytes(range(256)) * 40

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path == "/index-v1.json":
                data = json.dumps({"type": "FeatureCollection", "features": [
                    {"type": "Feature", "properties": {"id": "x", "urls": {"pbf": url + "/x.osm.pbf"}},
                     "geometry": shapely.geometry.mapping(shapely.box(0, 0, 10, 10))}]}).encode()
            else:
                data = hashlib.md5(body).hexdigest().encode() if self.path.endswith(".md5") else body
            self.send_response(200)
            # a broken proxy's header: raised a bare ValueError from int()
            self.send_header("Content-Length", "abc" if self.path.endswith(".pbf") else str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        path = download_osm((1, 1, 2, 2), cache_dir=tmp_path, index_url=url + "/index-v1.json", progress=False,
                            retries=0, timeout=10)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert path.read_bytes() == body


@pytest.mark.parametrize("key, value, match", [
    ("channels", 5, "channels must be a list of channel names"),            # a bare TypeError
    ("channels", None, "channels must be a list of channel names"),
    ("image_level", "8", "must be S2 levels"),  # "embeds level-12 cells only ...; level 12 was asked for"
    ("patch_level", -3, "must be S2 levels"),
])
def test_metadata_fields_of_the_wrong_type_are_a_model_format_error(copy, key, value, match):
    meta = json.loads((copy / "metadata.json").read_text())
    meta[key] = value
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match=match):
        geos2vec.load_model(copy)


@pytest.mark.parametrize("bounds", [(21.0, 53.0, 21.0, 53.25), (-47.3, 12.8, -47.3, 12.8)])
def test_the_context_box_of_a_line_holds_the_cells_it_only_clips(bounds):
    """A zero-width area (a line's or a column of points' bounds): the cells along it that the edge samples missed."""
    import numpy as np

    from geos2vec import cells as C
    from geos2vec.io.download import context_box

    t = np.linspace(0.0, 1.0, 4001)  # a dense reference along the segment
    lng, lat = bounds[0] + (bounds[2] - bounds[0]) * t, bounds[1] + (bounds[3] - bounds[1]) * t
    context = np.unique(C.grid_disk(np.unique(C.latlng_to_cell(lat, lng, 12)), 16))
    verts = C.cell_to_boundary(context).reshape(-1, 2)
    box = context_box(bounds)
    assert shapely.covers(box, shapely.points(verts[:, 1], verts[:, 0])).all()  # one corner was 0.0008° outside
    assert box.bounds[0] > verts[:, 1].min() - 2 * 90 / 4096 / np.cos(np.radians(bounds[3]))  # about one cell more


def test_a_keras_file_with_a_lambda_layer_is_refused_without_running_it(copy, tmp_path):
    """Keras' safe_mode stays on: a model.keras whose Lambda layer runs code (here: writes a file) is refused."""
    keras = pytest.importorskip("keras")

    marker = tmp_path / "ran"
    payload = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # noqa: S307 - no closure to serialize
    layer = keras.layers.Lambda(payload)
    keras.Sequential([keras.Input((3,)), layer]).save(copy / "model.keras")
    marker.unlink(missing_ok=True)  # building the model here ran it once
    (copy / "weights.npz").unlink()
    meta = json.loads((copy / "metadata.json").read_text())  # what a hostile file would say (the sums match)
    meta["files_sha256"] = {"model.keras": hashlib.sha256((copy / "model.keras").read_bytes()).hexdigest(),
                            "feature_stats.json": meta["files_sha256"]["feature_stats.json"]}
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="Lambda"):
        geos2vec.load_model(copy)
    assert not marker.exists()


@pytest.mark.parametrize("planted", [".part", ".md5.tmp"])
def test_a_link_planted_in_a_shared_cache_is_not_written_through(tmp_path, planted, shared_data):
    """Another user of a shared cache links the download's fixed temporary names to a file of yours."""
    from geos2vec.io import download_osm

    from _http import mirror

    body = (shared_data / "osm" / "liechtenstein-latest.osm.pbf").read_bytes()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    srv = mirror(body, (9.45, 47.03, 9.66, 47.28))
    cache = tmp_path / "cache"
    folder = cache / srv.url.split("//")[1].replace(":", "_") / "europe"
    folder.mkdir(parents=True)
    (folder / ("liechtenstein-latest.osm.pbf" + planted)).symlink_to(victim)  # was appended to / overwritten
    try:
        path = download_osm((9.50, 47.10, 9.56, 47.18), cache_dir=cache, index_url=srv.url + "/index-v1.json",
                            progress=False, retries=0)
    finally:
        srv.close()
    assert victim.read_text() == "precious\n"
    assert hashlib.md5(path.read_bytes()).hexdigest() == hashlib.md5(body).hexdigest()
    assert (folder / "liechtenstein-latest.osm.pbf.md5").read_text().split()[0] == hashlib.md5(body).hexdigest()


def test_a_mirror_answering_the_md5_with_a_big_file_is_not_read_whole(tmp_path):
    import tracemalloc

    from geos2vec.io import download_osm

    srv = _hostile_mirror("/europe/x.osm.pbf")
    srv.files["/europe/x.osm.pbf.md5"] = bytes(48 << 20)  # e.g. a mirror that serves the extract for any suffix
    tracemalloc.start()
    try:
        with pytest.raises(DownloadError, match="does not hold an MD5 sum"):
            download_osm((1, 1, 2, 2), cache_dir=tmp_path, index_url=srv.url + "/index-v1.json", progress=False,
                         retries=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        srv.close()
    assert peak < 16 << 20  # was the whole answer (48 MiB) in memory
