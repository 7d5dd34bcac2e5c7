"""Unusual but common ways to install and run geos2vec.

``python -OO``; the package imported from a zip file; a read-only install or ``NUMBA_CACHE_DIR`` run by another
user (numba's compiled kernels copied where numba looks); a build with ``--no-build-isolation`` and an old
setuptools.

Checked by hand and found fine (too slow to repeat here): a wheel built with ``pip wheel``, installed with
``pip install --target`` and run from another working directory (the sample, ontology, crosswalk and model are
in the wheel and found through ``importlib.resources``); the same install made read-only and run as another
user with no writable ``HOME`` or none at all (numba's cache falls back to a private temporary folder, with one
warning); two first ``geos2vec demo`` runs at once on one ``NUMBA_CACHE_DIR``, and two as another user on one
temporary folder (the same embeddings as a lone run); two processes compiling different signatures of one
kernel into one cache at once; ``python -O`` (no validation relies on ``assert``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import geos2vec
from geos2vec import cli

PACKAGE = Path(geos2vec.__file__).resolve().parent


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONOPTIMIZE", "NUMBA_CACHE_DIR")}
    env.update(extra)
    return env


@pytest.mark.parametrize("command", sorted(cli._COMMANDS))
def test_every_command_has_help_without_docstrings(command, monkeypatch, capsys):
    # python -OO (PYTHONOPTIMIZE=2, as in some container images) strips docstrings: module.__doc__ is None.
    # geos2vec precompile built its description from __doc__.split(...): AttributeError before any help
    import importlib

    module = importlib.import_module(cli._COMMANDS[command][0])
    monkeypatch.setattr(module, "__doc__", None)
    with pytest.raises(SystemExit) as exc:
        cli._main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: geos2vec {command} ")
    assert "--help" in out


@pytest.fixture(scope="module")
def zipped(tmp_path_factory) -> Path:
    """The package's files (no caches) in one zip, as ``spark-submit --py-files geos2vec.zip`` ships it."""
    path = tmp_path_factory.mktemp("zip") / "geos2vec.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(PACKAGE.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc", ".nbi", ".nbc"):
                zf.write(f, Path("geos2vec") / f.relative_to(PACKAGE))
    return path


@pytest.fixture(scope="module")
def from_zip(zipped, tmp_path_factory) -> tuple[list[dict], str, Path]:
    """One process that imports geos2vec from the zip: ``(results, stderr, folder)``, a result per step reached."""
    tmp = tmp_path_factory.mktemp("run")
    code = ("import json, geos2vec, geos2vec.cells as c, numpy as np\n"
            "print(json.dumps({'file': geos2vec.__file__, 'token': c.cell_to_token(5764607523034234880), "
            "'cell': int(c.latlng_to_cell(np.array([34.0]), np.array([-118.0]), 12)[0])}), flush=True)\n"
            "m = geos2vec.load_model('default')\n"
            f"np.savez(r'{tmp / 'w.npz'}', **m.numpy_weights)\n"
            "print(json.dumps({'source': m.source, 'channels': list(m.channels), 'grid': list(m.grid)}))")
    # the kernels are cached in NUMBA_CACHE_DIR, a fresh folder; HOME is a file, so no user cache folder can be
    # made (numba's own ZipCacheLocator takes only ~/.cache/numba: NUMBA_CACHE_DIR was passed over, and where the
    # user cache was read-only the first kernel call stopped with OSError)
    (tmp / "home").write_text("")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True, text=True, timeout=300,
                         env=_env(PYTHONPATH=str(zipped), NUMBA_CACHE_DIR=str(tmp / "numba"), HOME=str(tmp / "home"),
                                  XDG_CACHE_HOME=str(tmp / "home" / "cache")))
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")], res.stderr[-3000:], tmp


def test_import_from_a_zip_file(zipped, from_zip):
    # key_on_sources read the kernels' helper modules with Path(module.__file__).read_bytes(): inside a zip that
    # is no file, and `import geos2vec` stopped with NotADirectoryError
    results, err, tmp = from_zip
    assert results, err
    assert results[0] == {"file": str(zipped / "geos2vec" / "__init__.py"),
                          "token": "5",  # face 0's level-0 cell (S2: id 0x5000000000000000)
                          "cell": int(geos2vec.latlng_to_cell(np.array([34.0]), np.array([-118.0]), 12)[0])}
    from numba.core.caching import _CacheLocator

    ours = _CacheLocator.get_suitable_cache_subpath(str(zipped / "geos2vec" / "_s2.py"))  # as numba names it
    assert {f.name for f in (tmp / "numba" / ours).glob("_s2.latlng_to_cell_kernel_serial-*")} >= {
        f"_s2.latlng_to_cell_kernel_serial-{geos2vec._s2.latlng_to_cell_kernel.py_func.__code__.co_firstlineno}"
        f".py{sys.version_info[0]}{sys.version_info[1]}.{ext}" for ext in ("nbi", "1.nbc")}


def test_bundled_model_loads_from_a_zip_file(from_zip):
    # load_model("default") looked for the model in a folder next to the source (Path(__file__)): from a zip it
    # said "the bundled model is missing ...; reinstall geos2vec" although the zip held it
    results, err, tmp = from_zip
    assert len(results) == 2, err
    ref = geos2vec.load_model("default")  # from the package's folder
    assert results[1] == {"source": "default", "channels": list(ref.channels), "grid": list(ref.grid)}
    with np.load(tmp / "w.npz") as got:
        assert sorted(got.files) == sorted(ref.numpy_weights)
        for name, value in ref.numpy_weights.items():
            np.testing.assert_array_equal(got[name], value)


def test_a_read_only_numba_cache_dir_is_used_through_a_private_copy(monkeypatch, tmp_path):
    # a container image: `NUMBA_CACHE_DIR=/opt/numba-cache geos2vec precompile` as root when it is built, the
    # programs run as another user, for whom the folder is read-only. numba uses a cache only in a folder it can
    # write: the kernels compiled at build time were passed over and compiled again at every start (~20 s)
    from numba.core import config
    from numba.core.caching import _CacheLocator

    from geos2vec import _numba_cache

    source = tmp_path / "opt-numba-cache"
    ours = _CacheLocator.get_suitable_cache_subpath(geos2vec.__file__)  # as numba names geos2vec's folder
    files = {f"{ours}/_s2.parent_kernel-326.py311.nbi": b"index", f"{ours}/_s2.parent_kernel-326.py311.1.nbc": b"code",
             "otherpkg_0123/f-1.py311.nbi": b"another package's"}
    for name, data in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    monkeypatch.setattr(config, "CACHE_DIR", str(source))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(source))
    monkeypatch.setattr(_numba_cache, "REJECTED", None)
    monkeypatch.setattr(_numba_cache.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    real = _numba_cache._writable
    monkeypatch.setattr(_numba_cache, "_writable", lambda d: not str(d).startswith(str(source)) and real(d))
    with pytest.warns(RuntimeWarning, match="is read-only for this user.*compiled kernels were copied to"):
        folder = _numba_cache.ensure_cache_location(Path("/read-only/site-packages/geos2vec"))
    assert folder is not None and folder.parent.parent == tmp_path / "tmp"
    assert config.CACHE_DIR == os.environ["NUMBA_CACHE_DIR"] == str(folder)
    assert _numba_cache.REJECTED == str(source)  # `geos2vec precompile` still refuses to fill another folder
    copied = {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}
    assert copied == {k: v for k, v in files.items() if k.startswith(ours)}
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    # a second process finds the copy made: files it has are kept (numba's stamps void stale ones)
    (folder / f"{ours}/_s2.parent_kernel-326.py311.nbi").write_bytes(b"index, one more overload")
    monkeypatch.setattr(config, "CACHE_DIR", str(source))
    with pytest.warns(RuntimeWarning, match="copied to"):
        assert _numba_cache.ensure_cache_location(Path("/read-only/site-packages/geos2vec")) == folder
    assert (folder / f"{ours}/_s2.parent_kernel-326.py311.nbi").read_bytes() == b"index, one more overload"


@pytest.mark.parametrize("home", ["writable", "none"])
def test_kernels_shipped_in_a_read_only_install_are_copied_where_numba_looks(home, monkeypatch, tmp_path):
    # a wheel installed by root (a container image, sudo pip install) and run by another user: numba passes the
    # package's read-only __pycache__ over and used the user cache (or a temporary folder), compiling every
    # kernel the wheel shipped compiled again (a first demo: 28.6 s instead of 11 s)
    from numba.core import config

    from geos2vec import _numba_cache

    package = tmp_path / "site-packages" / "geos2vec"
    shipped = {"_s2.parent_kernel-326.py311.nbi": b"index", "_s2.parent_kernel-326.py311.1.nbc": b"code",
               "_s2.cpython-311.pyc": b"bytecode"}
    for name, data in shipped.items():
        (package / "__pycache__").mkdir(parents=True, exist_ok=True)
        (package / "__pycache__" / name).write_bytes(data)
    monkeypatch.setattr(_numba_cache, "_kernel_folders", lambda: {"geos2vec_0123abcd": package}, raising=False)
    real = _numba_cache._writable
    monkeypatch.setattr(_numba_cache, "_writable", lambda d: not str(d).startswith(str(package)) and real(d))
    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "")
    monkeypatch.setattr(_numba_cache.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    user = tmp_path / "home" / ".cache" / "numba"
    monkeypatch.setattr(_numba_cache, "_user_cache", lambda: user if home == "writable" else None)
    if home == "writable":  # numba's own choice, the user cache: the kernels are copied there
        assert _numba_cache.ensure_cache_location(package) is None
        where = user
    else:
        with pytest.warns(RuntimeWarning, match="compiled kernels are cached in"):
            where = _numba_cache.ensure_cache_location(package)
        assert config.CACHE_DIR == str(where) and where.parent == tmp_path / "tmp"
    copied = {str(f.relative_to(where)): f.read_bytes() for f in where.rglob("*") if f.is_file()}
    assert copied == {f"geos2vec_0123abcd/{k}": v for k, v in shipped.items() if ".nb" in k}


@pytest.mark.parametrize("version", ["65.5.0", "76.1.0", "77.0.3", "80.9.0"])
def test_a_build_with_an_old_setuptools_names_the_cause(version, monkeypatch, capsys):
    # `pip wheel . --no-build-isolation` in an environment with setuptools < 77 (Python 3.11's venv has 65.5):
    # pyproject.toml's SPDX license expression stopped it with ~90 lines of JSON schema ("`project.license` must
    # be valid exactly by one definition (2 matches found)") that do not say setuptools is too old
    import runpy

    import setuptools

    seen: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: seen.update(kw))
    monkeypatch.setattr(setuptools, "__version__", version)
    setup_py = str(PACKAGE.parent / "setup.py")
    if int(version.split(".")[0]) >= 77:
        runpy.run_path(setup_py, run_name="__main__")
        assert seen["long_description_content_type"] == "text/markdown"
        return
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(setup_py, run_name="__main__")
    assert str(exc.value) == (f"geos2vec: building needs setuptools>=77 (pyproject.toml's [build-system] requires), "
                              f"this environment has {version}: pip install -U 'setuptools>=77', or build without "
                              "--no-build-isolation")
    assert seen == {}


def test_a_copied_index_never_names_a_stale_data_file(tmp_path):
    # the copy skipped files the cache folder had: a data file left there without its index (an older version's,
    # an index deleted by hand) stayed, and the copied index, stamped for the new source, named it: numba would
    # have loaded the old machine code as the new kernel's
    from geos2vec import _numba_cache

    shipped = tmp_path / "pkg" / "__pycache__"
    shipped.mkdir(parents=True)
    for name, data in {"k-10.py311.nbi": b"new index", "k-10.py311.1.nbc": b"new code",
                       "m-20.py311.nbi": b"shipped index", "m-20.py311.1.nbc": b"shipped code"}.items():
        (shipped / name).write_bytes(data)
    cache = tmp_path / "cache" / "geos2vec_0123abcd"
    cache.mkdir(parents=True)
    (cache / "k-10.py311.1.nbc").write_bytes(b"old code")  # no k index: it names nothing
    (cache / "m-20.py311.nbi").write_bytes(b"my index")  # a kernel the cache has: kept whole
    (cache / "m-20.py311.1.nbc").write_bytes(b"my code")
    pairs = [(f, Path("geos2vec_0123abcd", f.name)) for f in sorted(shipped.iterdir())]
    assert _numba_cache._copy_files(pairs, tmp_path / "cache")
    assert {f.name: f.read_bytes() for f in cache.iterdir()} == {
        "k-10.py311.nbi": b"new index", "k-10.py311.1.nbc": b"new code",
        "m-20.py311.nbi": b"my index", "m-20.py311.1.nbc": b"my code"}
