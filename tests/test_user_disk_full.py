"""A user whose disk fills up (or whose output folder is read-only) while geos2vec writes.

Measured on a 2 MiB tmpfs: every writer either leaves the previous complete file or raises, with no temporary
file left. Here the full disk is simulated: GDAL (C code) is made to behave as it did on the tmpfs, and Python's
writes raise ``OSError(ENOSPC)`` part-way.
"""

from __future__ import annotations

import errno
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec import cli_features
from geos2vec.errors import InvalidInputError


def _rows(n, seed=0):
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame({"name": [f"poi {i}" for i in range(n)], "v": rng.normal(size=n)},
                            geometry=shapely.points(rng.uniform(-118, -117, (n, 2))), crs="EPSG:4326")


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _full_disk(monkeypatch, room: int):
    """GDAL's writers on a disk with ``room`` bytes left, as measured on a tmpfs, and Python's writes too.

    GDAL's CSV and GeoJSON writers lost their last buffer at close without an error (the file cut at a block
    boundary, e.g. 487,424 of 489,335 bytes), the GeoPackage writer raised pyogrio's DataSourceError ("Failed to
    commit transaction"); a Python write raises ENOSPC once ``room`` is used up.
    """
    import pyogrio.errors

    real_to_file = gpd.GeoDataFrame.to_file

    def to_file(gdf, target, *args, **kwargs):
        real_to_file(gdf, target, *args, **kwargs)
        if isinstance(target, (str, Path)):  # GDAL wrote the file itself
            if Path(target).suffix == ".gpkg":
                raise pyogrio.errors.DataSourceError("Failed to commit transaction")
            data = Path(target).read_bytes()
            Path(target).write_bytes(data[:room])  # the tail GDAL could not flush is lost, silently

    def write_bytes(self, data):
        with open(self, "wb") as f:
            f.write(bytes(data)[:room])
        if len(data) > room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return len(data)

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", to_file)
    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    import shutil

    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real_usage(p)._replace(free=0))  # the device is full


@pytest.mark.parametrize("name", ["out.csv", "out.geojson", "out.gpkg"])
def test_a_gdal_output_that_does_not_fit_leaves_the_previous_file(tmp_path, monkeypatch, name):
    # a CSV cut short replaced the previous file and read back with a half row (101 NaN columns in pandas);
    # a GeoPackage failed with a raw pyogrio DataSourceError (a traceback in the command line)
    out = tmp_path / name
    cli_features._write_geo(_rows(3), out)
    before = out.read_bytes()
    big = _rows(400, 1)
    _full_disk(monkeypatch, room=10_007)  # the new file (400 rows, > 20 kB) does not fit
    with pytest.raises(InvalidInputError, match=rf"could not write it \(\[Errno 28\] cannot write {out} \(No space "
                                                rf"left on device\): .*; the previous {name} is unchanged"):
        cli_features._write_geo(big, out)
    monkeypatch.undo()
    assert out.read_bytes() == before  # the previous file, whole
    assert _files(tmp_path) == [name]  # and no temporary file
    back = pd.read_csv(out) if name.endswith(".csv") else gpd.read_file(out)
    assert back["name"].tolist() == ["poi 0", "poi 1", "poi 2"]

    cli_features._write_geo(big, out)  # with room again: written whole (GDAL's file is checked whole)
    back = pd.read_csv(out) if name.endswith(".csv") else gpd.read_file(out)
    assert back["name"].tolist() == big["name"].tolist()
    np.testing.assert_allclose(back["v"].to_numpy(), big["v"].to_numpy(), rtol=1e-14)
    assert _files(tmp_path) == [name]


# --------------------------------------------------------------------------- the library's own files
@pytest.fixture(scope="module")
def model():
    from geos2vec.model import load_model

    return load_model("default")  # compact (NumPy weights): saved with compact=True without Keras


def _enospc_part_way(monkeypatch, cls, method):
    """``cls.method`` writes half of what it is given (of the first call), then the disk is full."""
    real = getattr(cls, method)

    def half(self, *args, **kwargs):
        if isinstance(self, Path) and method == "write_text":  # Path.write_text(data)
            with open(self, "w", encoding="utf-8") as f:
                f.write(args[0][: len(args[0]) // 2])
        else:
            real(self, *args, **kwargs)
            target = Path(args[0]) if method == "copy2" else Path(self.filename)  # copy2(src, dst)
            if target.is_file():
                with open(target, "r+b") as f:
                    f.truncate(target.stat().st_size // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cls, method, half)


@pytest.mark.parametrize("what", ["stats.json", "config.json"])
def test_a_json_file_that_does_not_fit_names_itself_and_keeps_the_previous_one(tmp_path, monkeypatch, model, what):
    # was "[Errno 28] No space left on device", naming no file
    from geos2vec import FeatureStats
    from geos2vec.model import S2VecConfig

    obj, cls = (model.stats, FeatureStats) if what == "stats.json" else (model.config, S2VecConfig)
    path = tmp_path / what
    obj.save(path)
    before = path.read_bytes()
    _enospc_part_way(monkeypatch, Path, "write_text")
    with pytest.raises(OSError, match=rf"cannot write {path} \(No space left on device\): free some space on the "
                                      rf"device of {tmp_path}, or write elsewhere; the previous {what} is unchanged"
                       ) as err:
        obj.save(path)
    assert err.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == before and _files(tmp_path) == [what]
    assert cls.load(path) == obj


def test_a_read_only_folder_names_the_file_not_the_temporary_one(tmp_path, monkeypatch, model):
    # a read-only file system refuses the open and even the unlink of the missing temporary file: the unlink's
    # error, naming the hidden temporary file, replaced the write's
    def refused(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "write_text", refused)
    monkeypatch.setattr(Path, "unlink", refused)
    path = tmp_path / "stats.json"
    with pytest.raises(OSError, match=rf"cannot write {path} \(Read-only file system\): {tmp_path} is on a "
                                      r"read-only file system: write elsewhere; no stats.json was written") as err:
        model.stats.save(path)
    assert err.value.errno == errno.EROFS


@pytest.mark.parametrize("name", ["m.zip", "m"])
def test_a_model_that_does_not_fit_names_the_path_and_keeps_the_previous_model(tmp_path, monkeypatch, model, name):
    # a zip: "[Errno 28] No space left on device", no path; a folder: the hidden .m.<pid>@host.partial and the
    # system's temporary folder, not the model's path
    import shutil
    import zipfile

    from geos2vec.model import load_model

    path = tmp_path / name
    model.save(path, compact=True)
    before = {p.name: p.read_bytes() for p in ([path] if path.is_file() else path.iterdir())}
    _enospc_part_way(monkeypatch, *((zipfile.ZipFile, "write") if name.endswith(".zip") else (shutil, "copy2")))
    with pytest.raises(OSError, match=rf"cannot write {path} \(No space left on device\): free some space on "
                                      rf"the device of {tmp_path}, or write elsewhere; the previous {name} is "
                                      "unchanged"):
        model.save(path, compact=True)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in ([path] if path.is_file() else path.iterdir())} == before
    assert _files(tmp_path) == [name]
    np.testing.assert_array_equal(load_model(path).stats.mean, model.stats.mean)


def test_a_numba_cache_that_does_not_fit_does_not_stop_the_kernel(tmp_path, monkeypatch):
    # a full disk under NUMBA_CACHE_DIR (or ~/.cache/numba): `geos2vec features` stopped with "geos2vec: error:
    # [Errno 28] No space left on device" after compiling, though the kernel had nothing left to do but run
    import importlib.util

    import numba  # noqa: F401  (geos2vec's cache classes are in place once geos2vec is imported)
    from numba.core import caching

    import geos2vec  # noqa: F401
    from geos2vec import _numba_cache

    src = tmp_path / "probe_kernel.py"  # a kernel of a geos2vec module, as numba's cache sees it (its __module__)
    src.write_text('__name__ = "geos2vec._disk_full_probe"\nimport numba\n\n\n'
                   "@numba.njit(cache=True)\ndef twice_plus_one(x):\n    return 2 * x + 1\n")
    spec = importlib.util.spec_from_file_location("probe_kernel", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def full(self, name, data):  # numba's data file: part of it, then the disk is full
        with open(Path(self._cache_path) / name, "wb") as f:
            f.write(b"\x80\x04")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(caching.IndexDataCacheFile, "_save_data", full)
    monkeypatch.setattr(_numba_cache, "_UNSAVED", [], raising=False)  # warned once a process
    with pytest.warns(RuntimeWarning, match=r"numba could not write a compiled kernel of geos2vec to its cache in "
                                            r".*No space left on device.*set NUMBA_CACHE_DIR to another folder"):
        assert mod.twice_plus_one(20) == 41
    assert mod.twice_plus_one(3) == 7


def test_a_zarr_store_that_does_not_fit_names_the_store_and_does_not_open(tmp_path, monkeypatch):
    # was "[Errno 28] No space left on device", naming no store
    pytest.importorskip("zarr")
    import zarr.storage._local as local

    from geos2vec import count_features, rasterize
    from geos2vec.raster import open_zarr, to_zarr

    rng = np.random.default_rng(3)
    where = shapely.points(rng.uniform(-118.5, -117.5, 300), rng.uniform(33.5, 34.5, 300))
    pts = gpd.GeoDataFrame({"fclass": ["restaurant", "school", "park"] * 100}, geometry=where, crs="EPSG:4326")
    da = rasterize(count_features(pois=pts, level=12))
    store = tmp_path / "r.zarr"
    to_zarr(da, store)
    real, calls = local._put, []

    def put(path, value, exclusive=False):  # zarr's lowest write: the disk fills at the 4th file (written to a
        calls.append(path)                  # temporary name by zarr, removed when the write fails)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, value, exclusive=exclusive)

    monkeypatch.setattr(local, "_put", put)
    with pytest.raises(OSError, match=rf"cannot write {store} \(No space left on device\): free some space on the "
                                      rf"device of {tmp_path}, or write elsewhere; a store it had begun to write "
                                      r"is left marked unfinished \(open_zarr refuses it\)") as err:
        to_zarr(da, store)
    assert err.value.errno == errno.ENOSPC
    monkeypatch.undo()
    with pytest.raises(InvalidInputError, match="not completely written"):
        open_zarr(store)


def test_a_full_disk_at_the_checkpoint_lock_leaves_no_lock_behind(tmp_path, monkeypatch):
    # the lock file was created, its record not written: every later fit into that folder, with room again, was
    # refused ("in use by another fit (an unknown owner)") until the user deleted .lock by hand
    import os

    from geos2vec.model.lock import LOCK_NAME, checkpoint_lock

    real = os.fdopen

    class Full:
        def __init__(self, fd):
            self.f = real(fd, "w")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: Full(fd))
    ck = tmp_path / "ck"
    with pytest.raises(OSError, match=rf"cannot write {ck / LOCK_NAME} \(No space left on device\): free some space "
                                      rf"on the device of {ck}, or write elsewhere; the fit did not start"):
        with checkpoint_lock(ck):
            pass
    monkeypatch.undo()
    assert _files(ck) == []
    with checkpoint_lock(ck):  # the next fit, with room again, takes the folder
        assert _files(ck) == [LOCK_NAME]
    assert _files(ck) == []


def test_a_checkpoint_that_does_not_fit_is_refused_before_hdf5_writes(tmp_path, monkeypatch):
    # h5py writing into a disk that filled up crashed the process: a segmentation fault (exit 139) after "Can't
    # decrement id ref count ... No space left on device", its lock and temporary file left behind
    keras = pytest.importorskip("keras")
    h5py = pytest.importorskip("h5py")
    import collections
    import shutil

    from geos2vec.model._resume_callbacks import _atomic_weights

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    path = tmp_path / "last.weights.h5"
    with _atomic_weights(model):
        model.save_weights(path)
    before = path.read_bytes()

    def no_hdf5(*args, **kwargs):
        raise AssertionError("HDF5 was asked to write into a full disk")

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - len(before) // 2, len(before) // 2))
    monkeypatch.setattr(h5py, "File", no_hdf5)
    with pytest.raises(OSError, match=rf"cannot write {path} \(No space left on device\): free some space on the "
                                      rf"device of {tmp_path}, or write elsewhere; the previous last.weights.h5 is "
                                      "unchanged") as err, _atomic_weights(model):
        model.save_weights(path)
    assert err.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == before and _files(tmp_path) == ["last.weights.h5"]


@pytest.mark.parametrize("option", ["--out", "--checkpoint-dir", "--log-dir"])
def test_train_refuses_a_read_only_folder_before_training(tmp_path, monkeypatch, capsys, option):
    # `geos2vec train --out <read-only folder>` trained the whole model, then failed at the save
    import os

    from geos2vec.cli import main
    from geos2vec.model import S2VecModel

    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: not str(p).startswith(str(ro)) and real(p, mode))

    def no_fit(*args, **kwargs):
        raise AssertionError("trained before the output folders were checked")

    monkeypatch.setattr(S2VecModel, "fit", no_fit)
    data = tmp_path / "features.parquet"
    cells = [5221390303682691072 + i * 2**40 for i in range(4)]  # never read: the check comes first
    pd.DataFrame({"restaurant": [1, 2, 3, 4]}, index=pd.Index(cells, name="cell_id", dtype="uint64")).to_parquet(data)
    paths = {"--out": tmp_path / "m", "--checkpoint-dir": tmp_path / "ck", "--log-dir": tmp_path / "log"}
    paths[option] = ro / "sub"
    argv = ["train", "--data", str(data), "--quiet"] + [str(a) for kv in paths.items() for a in kv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"geos2vec: error: {option} {ro / 'sub'}: the folder {ro} is not writable" in err
    assert not (tmp_path / "m").exists()


def test_an_evaluation_cache_that_does_not_fit_does_not_stop_the_run(tmp_path, monkeypatch, model):
    # run_suite(cache_dir=) / evaluate --cache on a full disk stopped after computing the embeddings
    from geos2vec.errors import Geos2VecWarning
    from geos2vec.evaluate import suite

    cells = np.array([5221390303682691072 + i * 2**40 for i in range(3)], dtype=np.uint64)
    tables = {"S2Vec (patch)": pd.DataFrame({"e0": [0.5, 1.5, 2.5]}, index=pd.Index(cells, name="cell_id"))}
    monkeypatch.setattr(suite, "model_embeddings", lambda *a, **k: tables)
    counts = pd.DataFrame({"restaurant": [1.0, 2.0, 3.0]}, index=pd.Index(cells, name="cell_id"))
    real = pd.DataFrame.to_parquet

    def full(df, path, *args, **kwargs):  # half a file, then the disk is full
        real(df, path, *args, **kwargs)
        Path(path).write_bytes(Path(path).read_bytes()[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    with pytest.warns(Geos2VecWarning, match=r"the evaluation cache entry was not written \(\[Errno 28\] cannot "
                                             r"write .*embeddings-.*\.parquet \(No space left on device\).*; the "
                                             "evaluation goes on without it"):
        got = suite._embeddings(cells, counts, model, ["patch"], "S2Vec", tmp_path / "cache")
    assert got is tables
    assert _files(tmp_path / "cache") == []  # no entry, whole or partial
