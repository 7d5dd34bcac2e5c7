"""Read-only installs: numba's cache falls back to a temporary folder instead of breaking the import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from geos2vec import _numba_cache


def test_falls_back_to_a_temporary_folder_when_nothing_else_is_writable(monkeypatch, tmp_path):
    from numba.core import config

    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(_numba_cache.tempfile, "tempdir", str(tmp_path))
    real = _numba_cache._writable
    monkeypatch.setattr(_numba_cache, "_writable", lambda d: str(d).startswith(str(tmp_path)) and real(d))
    with pytest.warns(RuntimeWarning, match="read-only; compiled kernels are cached in"):
        folder = _numba_cache.ensure_cache_location(Path("/read-only/site-packages/geos2vec"))
    assert folder is not None and folder.parent == tmp_path and config.CACHE_DIR == str(folder)


def test_leaves_numba_alone_when_its_own_locations_work(monkeypatch, tmp_path):
    from numba.core import config

    monkeypatch.setattr(config, "CACHE_DIR", "")
    assert _numba_cache.ensure_cache_location(tmp_path / "pkg") is None  # tmp_path is writable
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "mine"))
    assert _numba_cache.ensure_cache_location(Path("/nonexistent/ro")) is None  # the user's choice wins


def test_import_and_a_kernel_work_without_a_home(tmp_path):
    code = ("import geos2vec, numpy as np\n"
            "print(geos2vec.latlng_to_cell(np.array([40.0]), np.array([-74.0]), 12)[0])\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "missing-home"), "NUMBA_CACHE_DIR": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) > 0
