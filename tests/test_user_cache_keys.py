"""Caches keyed on everything that changes their result (the ``cache_keys`` user).

``run_suite(..., cache_dir=...)`` / ``geos2vec evaluate --cache`` keyed its embedding entries on the model, the
counts, the coverage, the cells and the mode, but not on geos2vec's code: an entry written before d5640ee (seamless
windows across cube-face edges) was read back after it, and 72 of 144 cells near the face edge at 45 degrees east
kept their old contextual vectors (max difference 0.068 from a cache-free run), under the same ``_EMBED_VERSION``
and version string. ``download_osm`` kept an extract as ``<host>/<url path>``: URLs that differ only in their
query (``extract.osm.pbf?region=a`` / ``?region=b``) shared one cache file, and region b got region a's extract.
A local index file (a path or file:// URL) was copied into the cache once: edits to it were ignored.
Checked by hand and found fine: the model's weights and normalization (also a model retrained
and saved to the same path), counts, coverage, cells and modes change the key (tests/test_suite_cache.py,
test_user_cache_coverage.py); download_osm re-verifies a cached extract's MD5 before using it; the ontology cache is
the packaged file's; numba kernels are keyed on the sources of the helpers they inline (test_numba_cache_sources.py);
an entry cut off halfway warns and is embedded and written again; two processes filling one entry at once both get
the cache-free vectors and leave one whole entry (atomic_path).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec.evaluate import suite
from geos2vec.evaluate.methods import model_embeddings
from geos2vec.options import set_options
from tests.test_suite_cache import _cells_and_counts, _Counter


@pytest.fixture(scope="module")
def model():
    return geos2vec.load_model("default")


@pytest.fixture(autouse=True)
def _no_bars():
    with set_options(progress=False):
        yield




def test_an_entry_written_by_other_code_is_not_read(model, tmp_path, monkeypatch):
    cells, counts = _cells_and_counts(model, n_side=4, seed=1)
    reference = model_embeddings(cells, counts, model, ["patch"])["S2Vec (patch)"]
    counter = _Counter()
    monkeypatch.setattr(suite, "model_embeddings", counter)
    monkeypatch.setattr(suite, "_code_digest", lambda: "0.3.0.dev0+older-code", raising=False)
    suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path)
    # the entry an older geos2vec wrote: other vectors under the same inputs' name
    (entry,) = tmp_path.glob("embeddings-*.parquet")
    stale = pd.read_parquet(entry)
    stale[stale.columns[0]] += 1.0
    stale.to_parquet(entry)
    monkeypatch.setattr(suite, "_code_digest", lambda: "0.3.0.dev0+newer-code", raising=False)  # upgrade
    got = suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path)["S2Vec (patch)"]
    assert counter.calls == 2                                            # embedded again, not read
    pd.testing.assert_frame_equal(got, reference.astype(np.float64), check_exact=True)
    assert len(list(tmp_path.glob("embeddings-*.parquet"))) == 2
    suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path)   # and its own entry is read back
    assert counter.calls == 2


def test_the_code_digest_is_the_version_and_the_sources_by_content(tmp_path):
    assert suite._code_digest().startswith(geos2vec.__version__ + "+")
    pkg = tmp_path / "pkg"
    (pkg / "model" / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "model" / "context.py").write_text("WEIGHT = 0.25\n")
    (pkg / "model" / "__pycache__" / "context.cpython-311.pyc").write_bytes(b"\0" * 10)
    (pkg / "notes.txt").write_text("a")
    first = suite._package_sources(pkg)
    assert len(first) == 16 and first == suite._package_sources(pkg)
    # bytecode and other files do not change it
    (pkg / "model" / "__pycache__" / "context.cpython-311.pyc").write_bytes(b"\1" * 10)
    (pkg / "notes.txt").write_text("b")
    assert suite._package_sources(pkg) == first
    # a source rewritten in place: the same size and modification time, another content
    path = pkg / "model" / "context.py"
    st = os.stat(path)
    path.write_text("WEIGHT = 0.50\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and suite._package_sources(pkg) != first
    path.write_text("WEIGHT = 0.25\n")
    assert suite._package_sources(pkg) == first
    # a module moved to another folder is other code
    path.rename(pkg / "context.py")
    assert suite._package_sources(pkg) != first



def test_extracts_whose_urls_differ_in_their_query_are_two_cache_files(tmp_path):
    """An index of ``extract.osm.pbf?region=a`` / ``?region=b``: both were kept as ``<host>/extract.osm.pbf``, so the
    second region's ``download_osm`` returned the first region's file (its MD5 matched its own mark)."""
    import hashlib
    import json
    import sys
    from pathlib import Path

    import shapely

    from geos2vec.io import download_osm

    sys.path.insert(0, str(Path(__file__).parent))
    from _http import Server

    srv = Server({})
    try:
        bodies = {"a": b"region A " * 50, "b": b"region B " * 50}
        boxes = {"a": shapely.box(9.0, 47.0, 9.5, 47.5), "b": shapely.box(10.0, 47.0, 10.5, 47.5)}
        index = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": r, "name": r,
                                               "urls": {"pbf": f"{srv.url}/extract.osm.pbf?region={r}"}},
             "geometry": shapely.geometry.mapping(boxes[r])} for r in "ab"]}
        srv.files = {"/index.json": json.dumps(index).encode()}
        for r, body in bodies.items():
            srv.files[f"/extract.osm.pbf?region={r}"] = body
            srv.files[f"/extract.osm.pbf?region={r}.md5"] = (hashlib.md5(body).hexdigest() + "  x\n").encode()
        kw = dict(cache_dir=tmp_path, index_url=srv.url + "/index.json", progress=False)
        pa = download_osm((9.1, 47.1, 9.2, 47.2), **kw)
        pb = download_osm((10.1, 47.1, 10.2, 47.2), **kw)
        assert pa != pb and pa.name == pb.name == "extract.osm.pbf"
        assert pa.read_bytes() == bodies["a"] and pb.read_bytes() == bodies["b"]
        assert pa.resolve().is_relative_to(tmp_path.resolve()) and pb.resolve().is_relative_to(tmp_path.resolve())
        fetched = len(srv.log)
        assert download_osm((10.1, 47.1, 10.2, 47.2), **kw).read_bytes() == bodies["b"]   # a cache hit, its own
        assert download_osm((9.1, 47.1, 9.2, 47.2), **kw).read_bytes() == bodies["a"]
        assert [p for p, _ in srv.log[fetched:]] == []                 # (the index is cached too: no request)
    finally:
        srv.close()


def test_a_local_index_edited_in_place_is_read_again(tmp_path):
    """A local index (a path or file:// URL) was copied into the cache once and that copy read ever after: the
    user's edit (an extract's URL moved to a new file) was ignored and the old extract returned."""
    import hashlib
    import json

    import shapely

    from geos2vec.io import download_osm

    folder = tmp_path / "mirror"
    folder.mkdir()
    bodies = {"old.osm.pbf": b"old extract " * 40, "new.osm.pbf": b"new extract!" * 40}   # the same size
    for name, body in bodies.items():
        (folder / name).write_bytes(body)
        (folder / f"{name}.md5").write_text(hashlib.md5(body).hexdigest() + f"  {name}\n")
    index_path = folder / "index-v1.json"

    def write_index(name):
        index = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": "li", "urls": {"pbf": (folder / name).as_uri()}},
             "geometry": shapely.geometry.mapping(shapely.box(9.0, 47.0, 10.0, 48.0))}]}
        index_path.write_text(json.dumps(index))

    kw = dict(cache_dir=tmp_path / "cache", progress=False)
    write_index("old.osm.pbf")
    st = index_path.stat()
    assert download_osm((9.1, 47.1, 9.2, 47.2), index_url=str(index_path), **kw).read_bytes() == bodies["old.osm.pbf"]
    write_index("new.osm.pbf")                                  # rewritten in place: the same size and time
    os.utime(index_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert index_path.stat().st_size == st.st_size
    for index_url in (str(index_path), index_path.as_uri()):
        got = download_osm((9.1, 47.1, 9.2, 47.2), index_url=index_url, **kw)
        assert got.name == "new.osm.pbf" and got.read_bytes() == bodies["new.osm.pbf"]
