"""Fixes of the lead's reviews of the helpers' commits (each test failed on the code before its fix)."""
from pathlib import Path

import pytest

from geos2vec import io
from geos2vec.errors import InvalidInputError

PBF = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm" / "andorra-latest.osm.pbf"


@pytest.mark.skipif(not PBF.exists(), reason="needs ../shared/data")
@pytest.mark.parametrize(("reader", "name"), [(io.read_pois, "pois"), (io.read_roads, "roads")])
def test_an_osm_file_is_pointed_to_read_osm_at_once(reader, name, monkeypatch):
    """3f42cf7 refused a GeoPackage of several layers, and so an ``.osm.pbf`` (GDAL opens it as five layers), after
    counting every layer's features (minutes for a country), with no word of ``read_osm``."""
    import pyogrio

    def no_listing(*args, **kwargs):
        raise AssertionError("the layers were listed and counted")

    monkeypatch.setattr(pyogrio, "list_layers", no_listing)
    with pytest.raises(InvalidInputError, match=rf"OpenStreetMap file: read it with geos2vec\.io\.read_osm\(.*\)"
                                                rf"\.{name}"):
        reader(str(PBF))
    monkeypatch.undo()
    assert len(getattr(io.read_osm(PBF), name)) > 0          # where the message points: the file's rows are there


def test_to_zarr_writes_a_folder_that_holds_only_a_file_managers_files(tmp_path):
    """5f23bb3 refused a folder of other files (right), and so an empty folder a file manager had opened: macOS
    leaves ``.DS_Store`` there, Windows ``Thumbs.db`` / ``desktop.ini``."""
    import numpy as np
    import pandas as pd

    from geos2vec import latlng_to_cell
    from geos2vec.raster import open_zarr, rasterize, to_zarr

    cells = np.unique(latlng_to_cell(np.array([40.70, 40.71, 40.75]), np.array([-74.0, -73.99, -73.95]), 12))
    da = rasterize(pd.DataFrame({"a": np.arange(1, len(cells) + 1, dtype=np.int32)}, index=pd.Index(cells,
                                                                                               name="cell_id")))
    store = tmp_path / "images.zarr"
    store.mkdir()
    (store / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    to_zarr(da, store)
    np.testing.assert_array_equal(open_zarr(store).values, da.values)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / ".DS_Store").write_bytes(b"x")
    (tmp_path / "docs" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="folder of other files"):
        to_zarr(da, tmp_path / "docs")                       # still refused: a file of the user's is there
    assert (tmp_path / "docs" / "notes.txt").read_text() == "mine"


def test_model_evaluate_refuses_a_bad_progress_before_any_work(monkeypatch):
    """``S2VecModel.evaluate(progress="no")`` was refused only once the image loop started, after the model and the
    masked dataset were prepared (minutes on a state's images)."""
    import geos2vec.model._evaluate_run as run
    from geos2vec.model import load_model

    def prepared(*args, **kwargs):
        raise AssertionError("evaluate_model ran")

    monkeypatch.setattr(run, "evaluate_model", prepared)
    with pytest.raises(InvalidInputError, match="progress must be True, False or None"):
        load_model("default").evaluate(None, progress="no")
