"""Review of the second-wave I/O robustness fixes: what they cost and where they refused valid writes.

- ``embed --out`` of .csv / .geojson / .gpkg held the whole output in memory (1e0ce2b wrote it into a BytesIO, then
  to the file): 20,000 rows x 256 floats took 424 / 560 / 363 MiB more than the write before it (128 / 128 / 99),
  3-4 times the file, a dozen GB for 10^6 rows. GDAL writes the temporary file again, checked whole before the rename.
- a checkpoint into a mount that reports no sizes (``statvfs``: 0 of 0 bytes free, some FUSE / network mounts) was
  refused as a full disk (8fb6dbb).
- ``write_lock`` where ``flock`` fails (a file system without locks) left its empty lock file in the user's folder.
"""

from __future__ import annotations

import collections
import errno
import shutil
import tracemalloc
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec import cli_features
from geos2vec.errors import InvalidInputError


def _rows(n, cols=64, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, cols)).astype("float32"), columns=[f"e{i}" for i in range(cols)])
    frame.insert(0, "name", [f"poi {i}" for i in range(n)])
    return gpd.GeoDataFrame(frame, geometry=shapely.points(rng.uniform(-118, -117, (n, 2))), crs="EPSG:4326")


@pytest.mark.parametrize("name", ["out.csv", "out.geojson"])
def test_a_gdal_output_is_not_held_in_memory(tmp_path, name):
    gdf = _rows(6000)
    out = tmp_path / name
    tracemalloc.start()
    try:
        cli_features._write_geo(gdf, out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = out.stat().st_size  # 7-12 MB of text; through a BytesIO its Python copies alone were twice that
    assert peak < size, (peak, size)
    back = pd.read_csv(out) if name.endswith(".csv") else gpd.read_file(out)
    assert back["name"].tolist() == gdf["name"].tolist()
    np.testing.assert_array_equal(back["e5"].to_numpy(np.float32), gdf["e5"].to_numpy())


@pytest.mark.parametrize(("name", "cut"), [("out.csv", "row"), ("out.csv", "line"), ("out.csv", "line break"),
                                           ("out.geojson", "row")])
def test_a_gdal_file_cut_short_is_refused_and_leaves_the_previous_file(tmp_path, monkeypatch, name, cut):
    out = tmp_path / name
    cli_features._write_geo(_rows(3), out)
    before = out.read_bytes()
    real = gpd.GeoDataFrame.to_file

    def to_file(gdf, target, *args, **kwargs):  # GDAL lost its tail without an error (a full disk or quota)
        real(gdf, target, *args, **kwargs)
        data = Path(target).read_bytes()
        end = data.rindex(b"\n", 0, len(data) - 1) + 1 if cut != "row" else len(data) * 2 // 3  # whole rows lost
        Path(target).write_bytes(data[:end])

    big = _rows(200, seed=1)
    if cut == "line break":  # texts with line breaks: GDAL counts the rows
        big["name"] = [f"poi\n{i}" for i in range(200)]
    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", to_file)
    with pytest.raises(InvalidInputError, match=r"could not write it \(\[Errno 5\] GDAL wrote it cut short"):
        cli_features._write_geo(big, out)
    usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(p)._replace(free=0))
    with pytest.raises(InvalidInputError, match=r"could not write it \(\[Errno 28\] cannot write .*No space left"):
        cli_features._write_geo(big, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_an_empty_table_and_texts_with_line_breaks_are_written(tmp_path):
    for name in ("out.csv", "out.geojson", "out.gpkg"):
        cli_features._write_geo(_rows(0), tmp_path / name)
        assert len(gpd.read_file(tmp_path / name)) == 0
    gdf = _rows(50, cols=2)
    gdf["name"] = [f'a,"b"\n{i}\r' for i in range(50)]
    cli_features._write_geo(gdf, tmp_path / "out.csv")
    assert pd.read_csv(tmp_path / "out.csv")["name"].tolist() == gdf["name"].tolist()


def test_a_checkpoint_is_not_refused_on_a_mount_that_reports_no_sizes(tmp_path, monkeypatch):
    keras = pytest.importorskip("keras")
    from geos2vec.model._resume_callbacks import _atomic_weights

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(0, 0, 0))  # statvfs of some FUSE mounts
    path = tmp_path / "last.weights.h5"
    with _atomic_weights(model):
        model.save_weights(path)
    fresh = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.get_weights()[0], model.get_weights()[0])
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 0))  # a full disk is still refused
    with pytest.raises(OSError, match="No space left on device"), _atomic_weights(model):
        model.save_weights(path)


def test_a_lock_that_cannot_be_taken_leaves_no_file(tmp_path, monkeypatch):
    import fcntl

    from geos2vec._jsonfile import write_lock

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with write_lock(tmp_path / ".report.lock"):
        (tmp_path / "report.md").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
