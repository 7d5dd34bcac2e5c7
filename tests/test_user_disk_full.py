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


@pytest.mark.parametrize("name", ["out.csv", "out.geojson", "out.gpkg"])
def test_a_gdal_output_that_does_not_fit_leaves_the_previous_file(tmp_path, monkeypatch, name):
    # a CSV cut short replaced the previous file and read back with a half row (101 NaN columns in pandas);
    # a GeoPackage failed with a raw pyogrio DataSourceError (a traceback in the command line)
    out = tmp_path / name
    cli_features._write_geo(_rows(3), out)
    before = out.read_bytes()
    big = _rows(400, 1)
    _full_disk(monkeypatch, room=10_007)  # the new file (400 rows, > 20 kB) does not fit
    with pytest.raises(InvalidInputError, match=r"could not write it \(\[Errno 28\] No space left on device"):
        cli_features._write_geo(big, out)
    monkeypatch.undo()
    assert out.read_bytes() == before  # the previous file, whole
    assert _files(tmp_path) == [name]  # and no temporary file
    back = pd.read_csv(out) if name.endswith(".csv") else gpd.read_file(out)
    assert back["name"].tolist() == ["poi 0", "poi 1", "poi 2"]

    cli_features._write_geo(big, out)  # with room again: written whole (GDAL writes into memory now)
    back = pd.read_csv(out) if name.endswith(".csv") else gpd.read_file(out)
    assert back["name"].tolist() == big["name"].tolist()
    np.testing.assert_allclose(back["v"].to_numpy(), big["v"].to_numpy(), rtol=1e-14)
    assert _files(tmp_path) == [name]
