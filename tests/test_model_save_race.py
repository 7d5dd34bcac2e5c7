"""Two processes saving one model path, and leftovers of killed saves (model/io.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import cells as C
from geos2vec import raster as R
from geos2vec.model import S2VecModel
from geos2vec.model import io as mio

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    cells = np.unique(C.latlng_to_cell(40.75 + rng.uniform(-0.2, 0.2, 60), -73.98 + rng.uniform(-0.2, 0.2, 60), 12))
    table = pd.DataFrame(rng.integers(0, 9, (cells.size, 3)), index=pd.Index(cells, name="cell_id"),
                         columns=["a", "b", "c"])
    da = R.rasterize(table, image_level=10)
    tiny = dict(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2)
    return S2VecModel(seed=1, **tiny).build(da), S2VecModel(seed=2, **tiny).build(da)


def _weights(path):
    return dict(np.load(path / "weights.npz"))


@pytest.mark.parametrize("existing", [False, True])
def test_a_save_that_lands_in_between_is_replaced_whole(pair, tmp_path, monkeypatch, existing):
    """Another process's save reaching the folder between our check and our rename: was a raw
    'Directory not empty' after the training, with the partial folder left behind."""
    ours, theirs = pair
    target = tmp_path / "m"
    if existing:
        ours.save(target, compact=True)
    real = os.replace
    done = []

    def racing(src, dst):
        if str(dst) == str(target) and not done:
            done.append(1)
            monkeypatch.setattr(mio.os, "replace", real)
            theirs.save(target, compact=True)       # the other job's save lands now
            monkeypatch.setattr(mio.os, "replace", racing)
        return real(src, dst)

    monkeypatch.setattr(mio.os, "replace", racing)
    ours.save(target, compact=True)
    monkeypatch.undo()
    assert done
    ref = tmp_path / "ref"
    ours.save(ref, compact=True)
    got, want = _weights(target), _weights(ref)
    assert sorted(got) == sorted(want) and all(np.array_equal(got[k], want[k]) for k in want)  # ours, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "ref"]                          # nothing hidden left
    geos2vec.load_model(target)


def test_a_failed_rename_puts_the_previous_model_back(pair, tmp_path, monkeypatch):
    ours, theirs = pair
    target = tmp_path / "m"
    theirs.save(target, compact=True)
    before = _weights(target)
    real = os.replace

    def fails(src, dst):
        if str(dst) == str(target) and ".partial" in str(src):
            raise PermissionError(13, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(mio.os, "replace", fails)
    with pytest.raises(PermissionError):
        ours.save(target, compact=True)
    monkeypatch.undo()
    after = _weights(target)
    assert all(np.array_equal(after[k], before[k]) for k in before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_leftovers_of_killed_saves_are_removed_by_the_next_save(pair, tmp_path):
    ours, _ = pair
    target, zipped = tmp_path / "m", tmp_path / "m.zip"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          timeout=60).stdout.strip()
    gone = [mio.temporary_name(target, ".partial"), mio.temporary_name(target, ".old"),
            mio.temporary_name(zipped, ".zip")]
    gone = [p.with_name(p.name.replace(f".{os.getpid()}@", f".{dead}@")) for p in gone]
    for p in gone[:2]:
        p.mkdir()
        (p / "weights.npz").write_bytes(b"half")
    gone[2].write_bytes(b"PK half")
    alive = mio.temporary_name(target, ".partial")       # this process's own: another thread's save in progress
    alive.mkdir()
    ours.save(target, compact=True)
    ours.save(zipped, compact=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m", "m.zip", alive.name])
