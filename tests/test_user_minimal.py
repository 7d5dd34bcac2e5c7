"""A minimal install and global state: missing extras, options across threads, numba's cache, entry points."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import geos2vec
from geos2vec.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[1]

# hides packages from the import system (and their metadata), as if they were not installed
_HIDE = '''
import sys
BLOCK = set(sys.argv[1].split(","))
class _Hide:
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path=None, target=None):
        return None if name.split(".")[0] in BLOCK else self.inner.find_spec(name, path, target)
    def find_distributions(self, context=None, **kw):
        from importlib.metadata import DistributionFinder
        context = context or DistributionFinder.Context(**kw)
        if (context.name or "").replace("-", "_").lower() in BLOCK:
            return iter(())
        return getattr(self.inner, "find_distributions", lambda c: iter(()))(context)
    def invalidate_caches(self):
        getattr(self.inner, "invalidate_caches", lambda: None)()
sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]
'''


def _run(code: str, *args: str, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                         cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out


def _extras() -> set[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")

    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def test_without_the_extras_import_works_and_each_feature_names_its_extra(tmp_path):
    """No dask, zarr, TensorFlow, Keras, JAX, torch, pyosmium: the core runs, the rest names what to install."""
    code = _HIDE + '''
import numpy as np, geos2vec
from geos2vec import partitioned
from geos2vec.io import read_osm
pois, roads = geos2vec.demo.load_sample()
table = geos2vec.count_features(pois.iloc[:300], roads.iloc[:100])
rows = pois.iloc[:4][["geometry"]].s2vec.embed(features=table, level=12, progress=False, mode="patch")
assert rows.filter(like="s2vec_").shape == (4, 256)
for call in (lambda: read_osm(sys.argv[2]), lambda: geos2vec.count_features(pois.iloc[:5], coverage=sys.argv[2]),
             lambda: partitioned.count_features_dask(pois.iloc[:5])):
    try:
        call()
    except ImportError as e:
        print("MESSAGE", e)
    else:
        raise SystemExit("no ImportError")
missing = sorted(m for m in ("dask", "zarr", "keras", "tensorflow", "osmium", "jax", "torch") if m in sys.modules)
print("LOADED", missing)
'''
    pbf = tmp_path / "x.osm.pbf"  # never read: the missing extra is reported first
    pbf.write_bytes(b"")
    out = _run(code, "dask,dask_geopandas,distributed,zarr,tensorflow,keras,jax,torch,osmium,requests", str(pbf))
    messages = re.findall(r"MESSAGE (.*)", out.stdout)
    assert len(messages) == 3
    named = [re.findall(r"geos2vec\[([\w-]+)\]", m) for m in messages]
    assert named == [["osm"], ["osm"], ["dask"]], messages
    assert {"osm", "dask"} <= _extras()
    assert "LOADED []" in out.stdout


def test_every_extra_a_message_names_exists():
    named = set()
    for path in (ROOT / "geos2vec").rglob("*.py"):
        named |= set(re.findall(r"geos2vec\[([\w-]+)\]", path.read_text()))
    assert named and named <= _extras(), named - _extras()


def test_import_and_use_leave_global_state_alone_and_submodules_load_on_first_use():
    code = '''
import logging, os, random, sys, warnings
import numpy as np
import matplotlib
import threadpoolctl  # sets KMP_DUPLICATE_LIB_OK at its import (its own choice, a hard dependency's), not ours
try:  # scipy adds warning filters at its import (SpecialFunctionWarning, numpy.matrix); a dependency of a
    import scipy.sparse  # dependency imports it during embed: its choice, not ours (embed itself no longer
    import scipy.special  # swaps the filters: warnings.catch_warnings is not thread-safe)
except ImportError:
    pass
np.random.seed(5); random.seed(5)
def snap():
    return (np.get_printoptions(), np.geterr(), list(warnings.filters), dict(os.environ), logging.root.level,
            matplotlib.get_backend(), np.random.get_state()[1][:4].tolist(), random.getstate()[1][:4])
before = snap()
import geos2vec
assert "geos2vec.model" not in sys.modules and "geos2vec.evaluate" not in sys.modules
assert geos2vec.model.S2VecModel.__name__ == "S2VecModel"  # no AttributeError after a plain import
assert callable(geos2vec.io.read_osm) and callable(geos2vec.evaluate.evaluate)
assert callable(geos2vec.partitioned.embed_dask)
try:
    geos2vec.nonexistent
except AttributeError as e:
    assert "nonexistent" in str(e)
else:
    raise SystemExit("no AttributeError")
pois, roads = geos2vec.demo.load_sample()
table = geos2vec.count_features(pois.iloc[:300], roads.iloc[:100])
pois.iloc[:3][["geometry"]].s2vec.embed(features=table, level=12, progress=False, mode="patch")
after = snap()
names = ["printoptions", "errstate", "warnings filters", "environment", "root logger level", "backend",
         "numpy random state", "random state"]
changed = [n for n, a, b in zip(names, before, after) if a != b]
assert not changed, changed
'''
    _run(code, env={**os.environ, "MPLBACKEND": "svg"})


def test_python_dash_m_geos2vec_runs_the_command_line():
    out = subprocess.run([sys.executable, "-m", "geos2vec", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("usage: geos2vec") and "precompile" in out.stdout and "demo" in out.stdout


# -- options ------------------------------------------------------------------------------------------------------

def _blas():
    import threadpoolctl

    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


def test_overlapping_blas_blocks_in_threads_restore_the_blas_when_all_end():
    """dask's threaded scheduler embeds partitions at once: the BLAS was left at one thread for good."""
    from geos2vec.options import blas_threads

    np.ones((4, 4)) @ np.ones((4, 4))
    original = _blas()
    if not original:
        pytest.skip("no BLAS seen by threadpoolctl")
    a_in, b_in, a_out, b_out = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with blas_threads():
            a_in.set()
            b_in.wait(10)
        a_out.set()
        b_out.wait(10)  # alive while the other restores (threadpoolctl lets one thread at a time set OpenBLAS)

    def second():
        a_in.wait(10)
        with blas_threads():
            b_in.set()
            a_out.wait(10)
            seen["inside"] = _blas()
        seen["after"] = _blas()
        b_out.set()

    with geos2vec.set_options(threads=1):
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert seen["inside"] == [1] * len(original)  # still limited while the second block runs
    assert seen["after"] == original and _blas() == original


def test_overlapping_option_blocks_in_threads_restore_the_options():
    before = geos2vec.get_options()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with geos2vec.set_options(threads=2):
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def second():
        a_in.wait(10)
        with geos2vec.set_options(threads=3):
            b_in.set()
            a_out.wait(10)
            seen["inside"] = geos2vec.get_options()["threads"]

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen["inside"] == 3
    assert geos2vec.get_options() == before


def test_options_nest_and_are_restored_after_an_exception():
    before = geos2vec.get_options()
    with pytest.raises(RuntimeError, match="boom"):
        with geos2vec.set_options(progress=False):
            with geos2vec.set_options(threads=4, progress=True):
                assert geos2vec.get_options() == {"progress": True, "threads": 4}
                raise RuntimeError("boom")
    assert geos2vec.get_options() == before
    with pytest.raises(InvalidInputError, match="threads"):
        geos2vec.set_options(progress=False, threads=2.5)
    assert geos2vec.get_options() == before


def test_demo_progress_bar_follows_the_progress_option(tmp_path, monkeypatch):
    import tqdm.auto

    made = []

    class Stop(Exception):
        pass

    def spy(*args, **kwargs):
        made.append(kwargs.get("disable"))
        raise Stop

    monkeypatch.setattr(tqdm.auto, "tqdm", spy)
    for option, quiet, disabled in ((False, False, True), (True, False, False), (True, True, True)):
        with geos2vec.set_options(progress=option), pytest.raises(Stop):
            geos2vec.demo.run_demo(tmp_path / "out", quiet=quiet)
        assert made.pop() is disabled, (option, quiet)


def test_pca_rgb_of_identical_rows_has_no_variance_to_explain():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb, explained = geos2vec.demo.pca_rgb(np.ones((5, 4)))
    assert np.array_equal(explained, np.zeros(3)) and np.isfinite(rgb).all()
    with pytest.raises(InvalidInputError, match="2-D"):
        geos2vec.demo.pca_rgb([1.0, 2.0, 3.0])


# -- show_versions --------------------------------------------------------------------------------------------------

def test_show_versions_reports_the_imported_geos2vec_and_the_dask_stack(monkeypatch):
    import importlib.metadata as md
    import io

    real = md.version
    monkeypatch.setattr(md, "version", lambda name: "0.0.stale" if name == "geos2vec" else real(name))
    buf = io.StringIO()
    geos2vec.show_versions(file=buf)
    text = buf.getvalue()
    assert f"geos2vec: {geos2vec.__version__}\n" in text and "stale" not in text
    for name in ("dask-geopandas", "distributed"):
        try:
            expected = real(name)
        except md.PackageNotFoundError:
            expected = None
        assert f"{name}: {expected}\n" in text


# -- numba's cache ----------------------------------------------------------------------------------------------

def test_an_unwritable_numba_cache_dir_falls_back_instead_of_breaking(monkeypatch, tmp_path):
    from numba.core import config

    from geos2vec import _numba_cache

    monkeypatch.setattr(_numba_cache, "REJECTED", None)  # restored afterwards: precompile checks it
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(config, "CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(_numba_cache, "_user_cache", lambda: blocker / "user")
    monkeypatch.setattr(_numba_cache.tempfile, "tempdir", str(tmp_path))
    with pytest.warns(RuntimeWarning) as caught:
        folder = _numba_cache.ensure_cache_location(blocker / "site-packages" / "geos2vec")
    text = " ".join(str(w.message) for w in caught)
    assert "NUMBA_CACHE_DIR" in text and "not a writable folder" in text
    assert folder is not None and folder.parent == tmp_path and config.CACHE_DIR == str(folder)
    assert os.environ["NUMBA_CACHE_DIR"] == str(folder) and _numba_cache.REJECTED == str(blocker / "cache")


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners and modes")
def test_a_shared_temporary_folder_others_can_write_is_not_used(monkeypatch, tmp_path):
    """numba's cache index files are pickles: another user's folder could run their code in ours."""
    from numba.core import config

    from geos2vec import _numba_cache

    monkeypatch.setenv("NUMBA_CACHE_DIR", "")
    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setattr(_numba_cache, "_user_cache", lambda: None)
    monkeypatch.setattr(_numba_cache.tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / f"geos2vec-numba-cache-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)
    with pytest.warns(RuntimeWarning, match="read-only"):
        folder = _numba_cache.ensure_cache_location(Path("/proc/geos2vec-read-only"))
    assert folder is not None and folder != planted and folder.parent == tmp_path
    assert folder.stat().st_mode & 0o077 == 0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run as another user")
def test_read_only_install_with_an_unwritable_numba_cache_dir_imports(tmp_path):
    """As user nobody: the package folder, HOME and NUMBA_CACHE_DIR are all unwritable."""
    locked = tmp_path / "locked"
    locked.mkdir()
    tmp_path.chmod(0o755)
    code = "import geos2vec; print('imported', geos2vec.__version__)"  # numba refused the kernels at import
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(HOME="/nonexistent", NUMBA_CACHE_DIR=str(locked / "cache"), PYTHONPATH=str(ROOT))
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=300, env=env, cwd="/")
    if "Permission denied" in out.stderr and "Traceback" not in out.stderr:
        pytest.skip("the interpreter is not readable by another user here")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "NUMBA_CACHE_DIR" in out.stderr
    assert out.stdout.split() == ["imported", geos2vec.__version__]


# -- dask -----------------------------------------------------------------------------------------------------------

def test_dask_features_dict_with_an_unknown_key_is_refused_as_in_memory():
    dask_geopandas = pytest.importorskip("dask_geopandas")
    pois, roads = geos2vec.demo.load_sample()
    rows = pois.iloc[:3][["geometry"]]
    with pytest.raises(InvalidInputError, match=r"unknown key\(s\) \['road'\]") as in_memory:
        geos2vec.embed(rows, {"pois": pois, "road": roads}, progress=False)
    dp = dask_geopandas.from_geopandas(pois, npartitions=2)
    dr = dask_geopandas.from_geopandas(roads, npartitions=2)
    with pytest.raises(InvalidInputError, match=r"unknown key\(s\) \['road'\]") as on_dask:
        geos2vec.embed(rows, {"pois": dp, "road": dr}, progress=False)
    assert str(on_dask.value) == str(in_memory.value)


def test_precompile_refuses_an_unwritable_numba_cache_dir(monkeypatch, tmp_path):
    """It compiled into another folder and said the kernels were ready: the programs' cache stayed empty."""
    from geos2vec import _numba_cache, _precompile

    monkeypatch.setattr(_numba_cache, "REJECTED", str(tmp_path / "a-file" / "cache"))
    monkeypatch.setattr(_precompile, "compile_kernels", lambda **kw: pytest.fail("compiled anyway"))
    with pytest.raises(InvalidInputError, match="NUMBA_CACHE_DIR=.*a-file.*not a writable folder"):
        _precompile.main(["--serial-only", "--jobs", "1", "--quiet"])


def test_read_index_takes_the_local_file_its_error_message_offers(tmp_path):
    """``read_index("index.json")`` was refused with "index_url may also be the path of a local index file"."""
    import json

    from geos2vec.io.download import read_index

    box = [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "x", "name": "X", "urls": {"pbf": "https://example.org/x.osm.pbf"}},
         "geometry": {"type": "Polygon", "coordinates": box}}]}))
    extracts = read_index(str(index), cache_dir=tmp_path / "cache")
    assert [(e["id"], e["pbf"], e["geometry"].bounds) for e in extracts] == \
        [("x", "https://example.org/x.osm.pbf", (0.0, 0.0, 1.0, 1.0))]


def test_import_with_dask_blocked_by_a_none_entry():
    """``sys.modules["dask_geopandas"] = None`` (the usual way to block an import) counted as imported: ``import
    geos2vec`` then failed with "No module named 'dask.dataframe'"."""
    code = ("import sys; sys.modules['dask'] = None; sys.modules['dask_geopandas'] = None\n"
            "import geos2vec, geopandas as gpd\n"
            "print('OK', hasattr(gpd.GeoDataFrame(), 's2vec'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK True" in out.stdout
