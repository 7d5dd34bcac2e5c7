"""A user on a flaky shared machine: jobs killed mid-write, disks that fill up, two jobs writing one output.

Every write either leaves the previous complete file or one that does not load, leaves no temporary files
behind, and a resumed training run ends where the uninterrupted one ends (tiny configs, CPU).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec._jsonfile import _HOST, atomic_path, write_text_atomic

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

from geos2vec.model import S2VecModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_model import TINY, synthetic_images  # noqa: E402

# one step per epoch (10 training images): two steps run eagerly, without tracing (fast)
CFG = TINY.replace(epochs=2, learning_rate=0.02, batch_size=16)


@pytest.fixture(scope="module")
def synth():
    return synthetic_images()


@pytest.fixture(scope="module")
def uninterrupted(synth, tmp_path_factory):
    model = S2VecModel(CFG)
    hist = model.fit(synth, checkpoint_dir=tmp_path_factory.mktemp("full"), verbose=0).history
    return model, hist


def _leftovers(folder: Path) -> list[str]:
    """Temporary files a writer left: hidden names, or names of partial writes."""
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or "partial" in p.name)


def _same_weights(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.keras_model.get_weights(), b.keras_model.get_weights()))


class _DiskFull:
    """Make HDF5 writes fail after ``after`` datasets (``No space left on device``) while ``armed``."""

    def __init__(self, monkeypatch, after: int):
        self.after, self.armed, self.n = after, False, 0
        create = h5py.Group.create_dataset

        def create_dataset(group, *args, **kwargs):
            if self.armed:
                self.n += 1
                if self.n > self.after:
                    raise OSError(errno.ENOSPC, "No space left on device")
            return create(group, *args, **kwargs)

        monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)


def test_a_backup_cut_short_by_a_full_disk_resumes_like_the_uninterrupted_fit(synth, uninterrupted, tmp_path,
                                                                              monkeypatch):
    # Keras wrote latest.weights.h5 in place: the cut-short file held the second epoch's layers but only part of
    # its optimizer; the seal took it for a complete newer backup, so the resumed fit skipped that epoch's rerun
    # and went on from it with a fresh optimizer (Keras only warns): other losses, without an error. And
    # training.csv held the row of a repeated epoch twice.
    full_model, full = uninterrupted
    disk = _DiskFull(monkeypatch, after=60)
    save = keras.callbacks.BackupAndRestore._save_model

    def save_model(self):
        disk.armed = self._current_epoch == 2  # the backup after epoch 1 (the second)
        try:
            save(self)
        finally:
            disk.armed = False

    ck, log = tmp_path / "ck", tmp_path / "log"
    with monkeypatch.context() as mp:
        mp.setattr(keras.callbacks.BackupAndRestore, "_save_model", save_model)
        with pytest.raises(OSError, match="No space left"):
            S2VecModel(CFG).fit(synth, checkpoint_dir=ck, log_dir=log, verbose=0)
    assert disk.n > disk.after  # the write was cut short
    assert pd.read_csv(log / "training.csv")["epoch"].tolist() == [0, 1]  # the row of epoch 1 came before
    assert _leftovers(tmp_path) == []
    resumed = S2VecModel(CFG)
    hist = resumed.fit(synth, checkpoint_dir=ck, log_dir=log, verbose=0)
    assert hist.epoch == [1]  # epoch 1's backup never completed: epoch 1 runs again
    assert hist.history["loss"] == full["loss"][1:]
    assert _same_weights(full_model, resumed)
    table = pd.read_csv(log / "training.csv")
    assert table["epoch"].tolist() == [0, 1]  # each epoch once
    np.testing.assert_allclose(table["loss"], full["loss"], rtol=1e-6)
    assert _leftovers(tmp_path) == []


def test_a_checkpoint_cut_short_leaves_the_previous_checkpoint(synth, tmp_path, monkeypatch):
    disk = _DiskFull(monkeypatch, after=10)
    kept = {}

    class Keep(keras.callbacks.Callback):  # the weights after the first epoch, as last.weights.h5 should hold them
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                kept["weights"] = self.model.get_weights()

    save = keras.callbacks.ModelCheckpoint._save_model

    def save_model(self, epoch, batch, logs):
        disk.armed = epoch == 1 and str(self.filepath).endswith("last.weights.h5")
        try:
            return save(self, epoch, batch, logs)
        finally:
            disk.armed = False

    ck = tmp_path / "ck"
    monkeypatch.setattr(keras.callbacks.ModelCheckpoint, "_save_model", save_model)
    with pytest.raises(OSError, match="No space left"):
        S2VecModel(CFG).fit(synth, checkpoint_dir=ck, callbacks=[Keep()], verbose=0)
    assert _leftovers(ck) == []
    model = S2VecModel(CFG)
    model.build(synth)
    model.keras_model.load_weights(ck / "last.weights.h5")  # was a ValueError: 20 objects could not be loaded
    for x, y in zip(model.keras_model.get_weights(), kept["weights"]):
        np.testing.assert_array_equal(x, y)


def test_a_resumed_log_drops_a_row_cut_short_and_keeps_earlier_runs(tmp_path):
    from geos2vec.model.train import _trim_log

    log = tmp_path / "training.csv"
    earlier = "epoch,loss,val_loss\n0,3.0,2.0\n1,2.5,1.9\n2,2.4,1.8\n"
    log.write_text(earlier + "0,3.1,2.1\n1,2.6,2.2\n2,2.5")  # this run's rows, the last cut short
    _trim_log(log, 2)
    assert log.read_text() == earlier + "0,3.1,2.1\n1,2.6,2.2\n"
    _trim_log(log, 2)  # nothing more to drop
    assert log.read_text() == earlier + "0,3.1,2.1\n1,2.6,2.2\n"


_KILLED_FIT = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import h5py, keras
from test_model import TINY, synthetic_images
from geos2vec.model import S2VecModel

create, save, state = h5py.Group.create_dataset, keras.callbacks.BackupAndRestore._save_model, {{"n": -1}}

def create_dataset(group, *args, **kwargs):
    if state["n"] >= 0:
        state["n"] += 1
        if state["n"] > 30:  # killed in the middle of writing the backup of epoch 2
            os.kill(os.getpid(), signal.SIGKILL)
    return create(group, *args, **kwargs)

def save_model(self):
    state["n"] = 0 if self._current_epoch == 2 else -1
    save(self)

h5py.Group.create_dataset = create_dataset
keras.callbacks.BackupAndRestore._save_model = save_model
config = TINY.replace(epochs=2, learning_rate=0.02, batch_size=16)
S2VecModel(config).fit(synthetic_images(), checkpoint_dir={ck!r}, verbose=0)
"""


def test_a_fit_killed_while_writing_its_backup_resumes(synth, uninterrupted, tmp_path):
    # SIGKILL in the middle of Keras' backup write left a damaged latest.weights.h5: every later run was refused
    # ("delete backup/ to start afresh"), losing the finished epochs
    full_model, full = uninterrupted
    ck = tmp_path / "ck"
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_FIT.format(tests=str(Path(__file__).parent), ck=str(ck)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    resumed = S2VecModel(CFG)
    hist = resumed.fit(synth, checkpoint_dir=ck, verbose=0)
    assert hist.epoch == [1]
    np.testing.assert_allclose(hist.history["loss"], full["loss"][1:], rtol=1e-5)
    for x, y in zip(full_model.keras_model.get_weights(), resumed.keras_model.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
    # the killed writer's temporary file is gone too: the next write of the same file removed it
    assert _leftovers(ck) == []


# --------------------------------------------------------------------------- the command line's outputs
def _rows(n, seed):
    rng = np.random.default_rng(seed)
    return gpd.GeoDataFrame({"v": rng.normal(size=n)}, geometry=shapely.points(rng.uniform(-118, -117, (n, 2))),
                            crs="EPSG:4326")


@pytest.mark.parametrize("name", ["out.parquet", "out.gpkg", "out.geojson"])
def test_two_runs_writing_one_out_do_not_share_a_temporary_file(tmp_path, monkeypatch, name):
    # both runs wrote `.out.partial.parquet`: the second truncated the first's half-written file, and the first
    # then renamed it into place (here: failed with "could not write it", the file renamed away under it)
    from geos2vec import cli_features

    out = tmp_path / name
    first, second = _rows(50, 0), _rows(30, 1)
    write = gpd.GeoDataFrame.to_parquet if name.endswith(".parquet") else gpd.GeoDataFrame.to_file
    method = "to_parquet" if name.endswith(".parquet") else "to_file"
    calls = []

    def interleaved(gdf, path, *args, **kwargs):  # the other run writes the whole output meanwhile
        write(gdf, path, *args, **kwargs)
        calls.append(Path(path).name if isinstance(path, (str, Path)) else id(path))  # GDAL: a memory buffer
        if len(calls) == 1:
            cli_features._write_geo(second, out)

    monkeypatch.setattr(gpd.GeoDataFrame, method, interleaved)
    cli_features._write_geo(first, out)
    assert calls[0] != calls[1]
    got = gpd.read_file(out) if not name.endswith(".parquet") else gpd.read_parquet(out)
    assert len(got) == len(first)  # the last run to finish wins, whole
    np.testing.assert_allclose(got["v"].to_numpy(), first["v"].to_numpy())
    assert _leftovers(tmp_path) == []


def test_an_interrupted_out_write_leaves_the_previous_file(tmp_path, monkeypatch):
    from geos2vec import cli_features

    out = tmp_path / "out.parquet"
    cli_features._write_geo(_rows(20, 0), out)
    write = gpd.GeoDataFrame.to_parquet

    def cut_short(gdf, path, *args, **kwargs):
        write(gdf.iloc[:5], path, *args, **kwargs)  # part of the rows is on disk ...
        raise KeyboardInterrupt  # ... when the job is stopped

    monkeypatch.setattr(gpd.GeoDataFrame, "to_parquet", cut_short)
    with pytest.raises(KeyboardInterrupt):
        cli_features._write_geo(_rows(40, 1), out)
    assert len(gpd.read_parquet(out)) == 20
    assert _leftovers(tmp_path) == []


def test_temporary_files_of_killed_writers_do_not_pile_up(tmp_path):
    target = tmp_path / "state.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          timeout=60, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".state.json.{dead_pid}@{_HOST}.0123abcd.tmp"  # a writer killed mid-write
    live = tmp_path / f".state.json.{os.getppid()}@{_HOST}.0123abcd.tmp"  # a writer still writing
    other_host = tmp_path / f".state.json.{dead_pid}@another-host.0123abcd.tmp"  # a shared folder
    unrelated = tmp_path / ".state.json.notes.tmp"
    for p in (stale, live, other_host, unrelated):
        p.write_text("{")
    write_text_atomic(target, '{"a": 1}')
    assert target.read_text() == '{"a": 1}'
    assert not stale.exists()
    assert live.exists() and other_host.exists() and unrelated.exists()
    # a write that fails leaves the previous file and no temporary file of its own
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("{")
        raise RuntimeError("cut short")
    assert target.read_text() == '{"a": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, live.name, other_host.name, unrelated.name])
