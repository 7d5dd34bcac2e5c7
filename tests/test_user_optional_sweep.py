"""Optional extras missing: every public entry point names the extra at once (no bare No module named ...)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import latlng_to_cell

MODEL = r"pip install 'geos2vec\[model\]' \(TensorFlow and Keras 3"
DASK = r"pip install 'geos2vec\[dask\]' \(dask, dask-geopandas, distributed and zarr\)"
OSM = r"pip install 'geos2vec\[osm\]' \(pyosmium\)"


def _hide(monkeypatch, *names):
    """As if ``names`` were not installed (an entry of None blocks the import), Keras' layer modules imported anew."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)
    for mod in ("geos2vec.fusion_layers", "geos2vec.location_layers", "geos2vec.evaluate.mlp_layers"):
        monkeypatch.delitem(sys.modules, mod, raising=False)


@pytest.fixture(scope="module")
def sample():
    pois, roads = geos2vec.demo.load_sample()
    return pois.iloc[:4][["geometry"]], geos2vec.count_features(pois.iloc[:300], roads.iloc[:100])


# -- keras: the fusion layers, the location encoder layer, the MLP probe -------------------------------------------

def test_fusion_and_location_layers_without_keras_name_the_model_extra(monkeypatch):
    from geos2vec import fusion, location

    monkeypatch.setattr(fusion, "_KERAS", {})  # the classes are cached after a first use
    monkeypatch.setattr(location, "_KERAS", {})
    _hide(monkeypatch, "keras")
    calls = {"geos2vec.fusion.fusion_layer": lambda: fusion.fusion_layer("concat"),
             "geos2vec.fusion.ProjectAdd": lambda: fusion.ProjectAdd,
             "geos2vec.location.LocationEncoder": lambda: location.LocationEncoder}
    for what, call in calls.items():
        with pytest.raises(ImportError, match=rf"^{what} needs keras, which is not installed: {MODEL}") as err:
            call()
        assert err.value.name == "keras"
    with pytest.raises(ValueError, match="unknown fusion"):  # a wrong name is still said first, without Keras
        fusion.fusion_layer("bogus")


def _task(n=60):
    rng = np.random.default_rng(3)
    lat, lng = rng.uniform(37.3, 37.6, n), rng.uniform(-122.2, -121.8, n)
    cells = np.unique(latlng_to_cell(lat, lng, 12))
    x = rng.standard_normal((len(cells), 3))
    idx = pd.Index(cells, name="cell_id")
    return pd.Series(x @ [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal(len(cells)), index=idx, name="y"), \
        pd.DataFrame(x, index=idx)


def test_the_mlp_probe_without_keras_names_the_extra_before_anything_is_fitted(monkeypatch):
    from geos2vec import evaluate as E
    from geos2vec.evaluate import protocol

    target, table = _task()
    ridge_only = E.evaluate(target, {"x": table}, n_splits=1, probes=["ridge"], progress=False)
    fitted = []
    real = protocol.ridge_probe
    monkeypatch.setattr(protocol, "ridge_probe", lambda *a, **k: fitted.append(1) or real(*a, **k))
    _hide(monkeypatch, "keras", "tensorflow")
    with pytest.raises(ImportError, match=rf"^evaluate's MLP probe \(probes=\['ridge'\] runs without it\) needs "
                                          rf"keras, which is not installed: {MODEL}") as err:
        E.evaluate(target, {"x": table}, n_splits=1, probes=["ridge", "mlp"], progress=False)
    assert err.value.name == "keras"
    assert fitted == []  # before, the ridge probe of the first split ran, then TensorFlow's import failed
    with pytest.raises(ImportError, match=rf"^geos2vec\.evaluate\.build_mlp needs keras, which is not installed: "
                                          rf"{MODEL}"):
        E.build_mlp([3])
    # the ridge probe needs neither: the same scores as with Keras installed
    again = E.evaluate(target, {"x": table}, n_splits=1, probes=["ridge"], progress=False)
    assert fitted == [1]
    pd.testing.assert_frame_equal(again.scores, ridge_only.scores)


def test_run_suite_with_the_mlp_probe_without_keras_names_the_extra_before_loading_tasks(monkeypatch):
    from geos2vec.evaluate import suite

    loaded = []
    monkeypatch.setattr(suite, "load_task", lambda *a, **k: loaded.append(a) or pytest.fail("task loaded"))
    _hide(monkeypatch, "keras", "tensorflow")
    with pytest.raises(ImportError, match=rf"^evaluate's MLP probe .* needs keras, which is not installed: {MODEL}"):
        suite.run_suite(["ca-housing"], probes=["ridge", "mlp"], model=None, progress=False, log=None)
    assert loaded == []  # before, every task was loaded and embedded (minutes) before the first MLP failed


# -- dask: rasterize(chunks=...), the dask accessor ----------------------------------------------------------------

def test_rasterize_with_chunks_without_dask_names_the_dask_extra(monkeypatch, sample):
    table = sample[1]
    eager = geos2vec.rasterize(table)
    _hide(monkeypatch, "dask", "dask.array")
    with pytest.raises(ImportError, match=rf"^rasterize\(chunks=\.\.\.\) needs dask, which is not installed: "
                                          rf"{DASK}") as err:
        geos2vec.rasterize(table, chunks=2)
    assert err.value.name == "dask"
    again = geos2vec.rasterize(table)  # without chunks= NumPy only, as before
    np.testing.assert_array_equal(again.values, eager.values)


def test_register_dask_accessor_without_dask_names_the_dask_extra(monkeypatch):
    _hide(monkeypatch, "dask", "dask.dataframe", "dask.dataframe.extensions")
    with pytest.raises(ImportError, match=rf"^register_dask_accessor needs dask, which is not installed: "
                                          rf"{DASK}") as err:
        geos2vec.register_dask_accessor()
    assert err.value.name == "dask"


# -- osmium: features="osm" checks pyosmium before it downloads anything -------------------------------------------

def test_features_osm_without_pyosmium_names_the_extra_and_downloads_nothing(monkeypatch, sample, tmp_path):
    from geos2vec.io import download

    attempts = []

    def record(name):
        def fake(*args, **kwargs):
            attempts.append(name)
            raise RuntimeError(f"{name} was called: a download was attempted")
        return fake

    for name in ("_get", "read_index", "find_extract", "_download_extract", "download_osm"):
        monkeypatch.setattr(download, name, record(name))
    monkeypatch.setenv("GEOS2VEC_CACHE", str(tmp_path))
    _hide(monkeypatch, "osmium", "osmium.geom")
    points = sample[0]
    calls = {'embed\\(features="osm"\\)': lambda: points.s2vec.embed(features="osm", level=12, progress=False),
             r"geos2vec\.io\.osm_features": lambda: geos2vec.io.osm_features(points, progress=False)}
    for what, call in calls.items():
        with pytest.raises(ImportError, match=rf"^{what} needs osmium, which is not installed: {OSM}") as err:
            call()
        assert err.value.name == "osmium"
    assert attempts == []
    assert not any(tmp_path.iterdir())


# -- the command line: one table of extras -------------------------------------------------------------------------

def test_the_cli_hint_reads_the_extras_of_optional(monkeypatch):
    from geos2vec import _optional, cli

    monkeypatch.setitem(_optional.EXTRAS, "some_new_module", "osm")  # a module added to the one table
    hint = cli._extra_hint(ModuleNotFoundError("No module named 'some_new_module'", name="some_new_module"))
    assert hint == " (an optional dependency; install it with pip install 'geos2vec[osm]')"
    for module, extra in _optional.EXTRAS.items():
        assert cli._extra_hint(ModuleNotFoundError(name=f"{module}.sub")).endswith(f"'geos2vec[{extra}]')")
