"""The demo's files and ``--version``: an interrupted write leaves no partial file; the imported version."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from matplotlib.figure import Figure

import geos2vec
from geos2vec.cli import main
from geos2vec.demo import plot_embedding_map


def _cells():
    return gpd.GeoDataFrame({f"s2vec_{k}": np.random.default_rng(k).normal(size=4) for k in range(4)},
                            geometry=[shapely.box(i, 0, i + 1, 1) for i in range(4)], crs="EPSG:4326")


def test_a_map_write_cut_short_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.png"
    plot_embedding_map(_cells(), path)
    before = path.read_bytes()
    assert before[:4] == b"\x89PNG"
    real = Figure.savefig

    def cut(self, fname, **kw):  # a full disk: half the image reaches the file
        real(self, fname, **kw)
        data = open(fname, "rb").read()
        open(fname, "wb").write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", cut)
    with pytest.raises(OSError, match="No space"):
        plot_embedding_map(_cells().assign(s2vec_0=0.0), path)
    assert path.read_bytes() == before                      # was half of the new image
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"]
    monkeypatch.undo()
    plot_embedding_map(_cells(), tmp_path / "m.svg")          # the format still follows the extension
    assert (tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")


def test_version_is_the_imported_one(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"geos2vec {geos2vec.__version__}"  # was the install's metadata


def test_a_missing_optional_module_names_the_extra(capsys, monkeypatch):
    """``geos2vec train`` without Keras printed only "No module named 'keras'"."""
    import builtins

    import geos2vec.cli as cli

    real = builtins.__import__

    def no_keras(name, *args, **kwargs):
        if name.split(".")[0] == "keras":
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_keras)
    with pytest.raises(ModuleNotFoundError):
        import keras  # noqa: F401
    assert cli._extra_hint(ModuleNotFoundError("No module named 'keras'", name="keras")).endswith(
        "pip install 'geos2vec[model]')")
    assert cli._extra_hint(ModuleNotFoundError("No module named 'zarr.storage'", name="zarr.storage")).endswith(
        "pip install 'geos2vec[dask]')")
    assert cli._extra_hint(ModuleNotFoundError("No module named 'nope'", name="nope")) == ""
    assert cli._extra_hint(ValueError("bad")) == ""
    monkeypatch.setattr(cli, "_main", lambda argv: __import__("keras"))
    assert cli.main(["train"]) == 1
    err = capsys.readouterr().err
    assert "No module named 'keras' (an optional dependency; install it with pip install 'geos2vec[model]')" in err
