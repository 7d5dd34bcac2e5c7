"""Kernels compiled at build time: a package built by setup.py's hook runs its first calls without compiling."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import geos2vec
from geos2vec import _precompile

PKG = Path(geos2vec.__file__).resolve().parent
ROOT = PKG.parent

# typical first calls of a user, on small inputs; prints the geos2vec kernels numba had to compile
FIRST_CALLS = r'''
import sys
from numba.core import event
compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        fn = ev.data["dispatcher"].py_func
        if fn.__module__.startswith("geos2vec"):
            compiled.append(f"{fn.__module__}.{fn.__qualname__}{ev.data['args']}")
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())

import numpy as np
import geos2vec
from geos2vec import cells as C
from geos2vec.features import count_features
from geos2vec.raster import rasterize

pois, roads = geos2vec.demo.load_sample()
pois = pois.iloc[:400].copy()
pois["rating"] = np.arange(len(pois), dtype=float)
table = count_features(pois, roads.iloc[:200], extra={"rating": "mean"}, coverage="infer")
cells = np.asarray(table.index.values, dtype=np.uint64)
C.cell_to_latlng(cells); C.cell_polygons(cells[:5]); C.cell_to_parent(cells, 8); C.cell_to_children(cells[:3], 13)
C.get_level(cells); C.is_valid_cell(cells); C.cell_to_rowcol(cells, 8); C.grid_disk(cells[:10], 1)
face, i, j = C.cell_to_face_ij(cells); C.face_ij_to_cell(face, i, j, 12)
C.latlng_to_cell(pois.geometry.y.values, pois.geometry.x.values, 12)
rasterize(table)
pois.iloc[:30][["geometry"]].s2vec.embed(features=table, level=12, progress=False)
print("FILE", geos2vec.__file__)
print("COMPILED", len(compiled))
print("\n".join(compiled))
'''


def _setup_hook_args(built: Path) -> list[str]:
    """The command setup.py's build hook runs on ``built`` (setup.py is not importable: it calls setup())."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    ns: dict = {"os": os}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "_stub_code":
            exec(compile(ast.Module(body=[node], type_ignores=[]), "setup.py", "exec"), ns)
    return [sys.executable, "-c", ns["_stub_code"](str(built)), str(built), "--quiet"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH")}
    env.update(extra)
    return env


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(__import__("numba.core.caching").core.caching, "_hash_source_file"),
                    reason="numba < 0.68 stamps its cache with file times, which an install resets")
def test_a_built_copy_runs_its_first_calls_without_compiling(tmp_path):
    built = tmp_path / "build" / "geos2vec"
    shutil.copytree(PKG, built, ignore=shutil.ignore_patterns("__pycache__"))
    # what setup.py's build hook runs (serial twins only, to keep CI short; the build compiles both)
    res = subprocess.run(_setup_hook_args(built) + ["--serial-only"], env=_env(), cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert list(built.glob("__pycache__/_cover.cover_lines_kernel-*.nbi"))
    # installing writes every file anew (new times): copy without metadata, as pip extracts a wheel
    installed = tmp_path / "site" / "geos2vec"
    shutil.copytree(built, installed, copy_function=shutil.copyfile)
    res = subprocess.run([sys.executable, "-c", FIRST_CALLS], env=_env(PYTHONPATH=str(installed.parent)),
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"FILE {installed / '__init__.py'}" in res.stdout
    assert "COMPILED 0\n" in res.stdout, res.stdout  # the listener names any kernel it saw compile


def test_without_the_shipped_cache_the_same_calls_compile(tmp_path):
    """The check above can fail: with an empty cache the listener sees the kernels compile."""
    res = subprocess.run([sys.executable, "-c", FIRST_CALLS],
                         env=_env(NUMBA_CACHE_DIR=str(tmp_path / "empty-cache")), cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    n = int(res.stdout.split("COMPILED ")[1].split()[0])
    assert n >= 10 and "cover_lines_kernel" in res.stdout


def test_the_table_names_real_kernels_and_parts_split_it():
    table = _precompile._signatures()
    names = {(module, name) for module, name, _, _ in table}
    assert ("geos2vec._cover", "cover_lines_kernel") in names and ("geos2vec._s2", "latlng_to_cell_kernel") in names
    everything = [id(target) for _, target, _ in _precompile._targets(parallel=True)]
    halves = [_precompile._targets(parallel=True)[k::2] for k in range(2)]
    assert sorted(everything) == sorted(id(target) for half in halves for _, target, _ in half)
    assert len(set(everything)) == len(everything) == 2 * 11 + 5 + 1 + 1  # 11 sized, 4 _cover + 1 sums, scatter, ufuncs
    serial = [id(t) for _, t, _ in _precompile._targets(parallel=False)]
    assert len(serial) == 11 + 5 + 1 + 1 and set(serial) < set(everything)


@pytest.mark.slow
def test_the_cli_fills_numba_cache_dir(tmp_path):
    """``geos2vec precompile`` compiles into the user's NUMBA_CACHE_DIR (a container's read-only install)."""
    cache = tmp_path / "numba-cache"
    res = subprocess.run([sys.executable, "-m", "geos2vec.cli", "precompile", "--serial-only", "--jobs", "1"],
                         env=_env(NUMBA_CACHE_DIR=str(cache)), cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "geos2vec: 18 kernels ready" in res.stdout  # 11 serial twins, 4 _cover + 1 _value_sums, scatter_rows, ufuncs
    assert list(cache.rglob("_cover.cover_lines_kernel-*.nbi"))
    assert list(cache.rglob("_s2.latlng_to_cell_kernel_serial-*.nbi"))
    assert not list(cache.rglob("_s2.latlng_to_cell_kernel-*.nbi"))  # --serial-only: no parallel twin


@pytest.mark.parametrize("jobs", ["0", "-2", "two"])
def test_jobs_must_be_a_positive_number(jobs, capsys):
    """``--jobs 0`` (or -2) ran serially without a word; it is refused before any compiling."""
    import argparse

    from geos2vec import _precompile

    parser = _precompile._arguments(argparse.ArgumentParser(prog="geos2vec precompile"))
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--jobs", jobs])
    assert info.value.code == 2
    assert f"--jobs must be a positive whole number of processes, got '{jobs}'" in capsys.readouterr().err
    assert parser.parse_args(["--jobs", "3"]).jobs == 3
